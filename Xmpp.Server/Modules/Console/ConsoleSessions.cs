using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Xmpp.Core.Addressing;

namespace Xmpp.Server.Modules.Console;

/// <summary>A signed-in administrator: who, the form token of the session, and its clock.</summary>
internal sealed class ConsoleSession(Jid admin, string csrf, DateTimeOffset created)
{
    private long _lastSeen = created.UtcTicks;

    public Jid Admin { get; } = admin;

    /// <summary>The synchronizer token every form of this session carries (256 random bits, base64url).</summary>
    public string Csrf { get; } = csrf;

    public DateTimeOffset Created { get; } = created;

    public DateTimeOffset LastSeen
    {
        get => new(Interlocked.Read(ref _lastSeen), TimeSpan.Zero);
        set => Interlocked.Exchange(ref _lastSeen, value.UtcTicks);
    }

    /// <summary>Whether <paramref name="token"/> is this session's form token (compared in constant time).</summary>
    public bool CsrfMatches(string? token) =>
        token is not null && CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(token), Encoding.ASCII.GetBytes(Csrf));
}

/// <summary>
/// The console's sessions, in memory (a restart signs everyone out): a random 256-bit id in the cookie, kept here
/// only as its SHA-256 (so neither a memory dump nor a timing difference in the lookup gives a usable id), with an
/// idle expiry and an absolute one. Owned by the module instance and handed to the next generation on reload.
/// </summary>
internal sealed class ConsoleSessions(TimeProvider time)
{
    /// <summary>At most this many sessions at once; signing in beyond it drops the oldest.</summary>
    public const int MaxSessions = 1000;

    private readonly ConcurrentDictionary<string, ConsoleSession> _byHash = new(StringComparer.Ordinal);

    public TimeSpan IdleTimeout { get; set; } = TimeSpan.FromMinutes(30);

    public TimeSpan Lifetime { get; set; } = TimeSpan.FromHours(8);

    public int Count => _byHash.Count;

    /// <summary>Opens a session for <paramref name="admin"/>; returns the id for the cookie (never logged) and the session.</summary>
    public (string Id, ConsoleSession Session) Open(Jid admin)
    {
        Sweep();
        while (_byHash.Count >= MaxSessions && _byHash.MinBy(kv => kv.Value.Created) is { Key: { } oldest })
        {
            _byHash.TryRemove(oldest, out _);
        }

        var id = NewToken();
        var session = new ConsoleSession(admin, NewToken(), time.GetUtcNow());
        _byHash[Hash(id)] = session;
        return (id, session);
    }

    /// <summary>The live session of a cookie value, its idle clock restarted; null when unknown or expired.</summary>
    public ConsoleSession? Find(string? id)
    {
        if (id is null || id.Length is 0 or > 64)
        {
            return null;
        }

        var key = Hash(id);
        if (!_byHash.TryGetValue(key, out var session))
        {
            return null;
        }

        var now = time.GetUtcNow();
        if (Expired(session, now))
        {
            _byHash.TryRemove(key, out _);
            return null;
        }

        session.LastSeen = now;
        return session;
    }

    /// <summary>Ends the session of a cookie value (sign-out).</summary>
    public void Close(string? id)
    {
        if (id is not null)
        {
            _byHash.TryRemove(Hash(id), out _);
        }
    }

    /// <summary>Ends every session of an administrator (no longer listed in the configuration).</summary>
    public void CloseAll(Jid admin)
    {
        foreach (var (key, session) in _byHash)
        {
            if (session.Admin.Equals(admin))
            {
                _byHash.TryRemove(key, out _);
            }
        }
    }

    /// <summary>Forgets expired sessions.</summary>
    public void Sweep()
    {
        var now = time.GetUtcNow();
        foreach (var (key, session) in _byHash)
        {
            if (Expired(session, now))
            {
                _byHash.TryRemove(key, out _);
            }
        }
    }

    private bool Expired(ConsoleSession session, DateTimeOffset now) =>
        now - session.LastSeen > IdleTimeout || now - session.Created > Lifetime;

    private static string NewToken() => Base64Url(RandomNumberGenerator.GetBytes(32));

    private static string Hash(string id) => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(id)));

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
