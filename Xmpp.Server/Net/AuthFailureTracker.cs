using System.Collections.Concurrent;
using System.Net;
using Xmpp.Server.Config;

namespace Xmpp.Server.Net;

/// <summary>
/// Slows down and then blocks repeated SASL failures, by address and by username.
/// <list type="bullet">
/// <item>By address: the first <see cref="FreeFailures"/> within the window are answered at once (a client
/// trying its mechanisms in turn with a mistyped password: libpurple makes six attempts); each further one
/// waits twice as long as the previous, up to a maximum. After <see cref="AuthOptions.FailuresPerIp"/> the
/// address is blocked for <see cref="AuthOptions.BlockTime"/>.</item>
/// <item>By username, from any address: after <see cref="AuthOptions.FailuresPerAccount"/> the username is
/// blocked for the same time, and the delay grows with the higher of the two counts. Usernames are tracked whether the account exists or not, and a blocked one
/// gets the same answer either way, so blocking reveals nothing about which accounts exist.</item>
/// </list>
/// In memory. In cluster mode the username counts are also kept cluster-wide (one Orleans grain per username,
/// one call per failure, none per success), and a block decided there reaches every node (<see cref="Block"/>);
/// the address counts stay per node.
/// </summary>
public sealed class AuthFailureTracker(AuthOptions options, TimeProvider time)
{
    public const int FreeFailures = 3;
    private const int MaxEntries = 100_000;
    /// <summary>Failures further apart than this start the count again.</summary>
    public static readonly TimeSpan Window = TimeSpan.FromMinutes(10);
    private readonly ConcurrentDictionary<IPAddress, Entry> _byAddress = new();
    private readonly ConcurrentDictionary<string, Entry> _byUser = new(StringComparer.Ordinal);

    /// <summary>Records a failure and returns how long to wait before answering it.</summary>
    public TimeSpan RecordFailure(IPAddress address, string? username = null)
    {
        var now = time.GetUtcNow();
        var count = Count(_byAddress, address, options.FailuresPerIp, now).Count;
        if (username is not null)
        {
            // Guesses at one account from many addresses are slowed down as well.
            count = Math.Max(count, Count(_byUser, username, options.FailuresPerAccount, now).Count);
        }

        return DelayFor(count);
    }

    /// <summary>How long to wait before answering the <paramref name="count"/>th failure in the window.</summary>
    public TimeSpan DelayFor(int count)
    {
        if (count <= FreeFailures || options.FailureDelay <= TimeSpan.Zero)
        {
            return TimeSpan.Zero;
        }

        var factor = Math.Pow(2, Math.Min(count - FreeFailures - 1, 20));
        return TimeSpan.FromTicks((long)Math.Min(options.FailureDelay.Ticks * factor, options.MaxFailureDelay.Ticks));
    }

    /// <summary>Cluster mode: failures on other nodes blocked this username until <paramref name="until"/>.</summary>
    public void Block(string username, DateTimeOffset until)
    {
        var now = time.GetUtcNow();
        _byUser.AddOrUpdate(username, _ => new Entry(options.FailuresPerAccount, now, until), (_, e) => e with { BlockedUntil = until > e.BlockedUntil ? until : e.BlockedUntil });
    }

    /// <summary>Whether attempts from this address are refused for now.</summary>
    public bool IsBlocked(IPAddress address) => IsBlocked(_byAddress, address);

    /// <summary>Whether attempts for this username are refused for now (from every address).</summary>
    public bool IsBlocked(string username) => IsBlocked(_byUser, username);

    public void RecordSuccess(IPAddress address, string username)
    {
        _byAddress.TryRemove(address, out _);
        _byUser.TryRemove(username, out _);
    }

    private bool IsBlocked<TKey>(ConcurrentDictionary<TKey, Entry> map, TKey key)
        where TKey : notnull =>
        map.TryGetValue(key, out var e) && e.BlockedUntil > time.GetUtcNow();

    private Entry Count<TKey>(ConcurrentDictionary<TKey, Entry> map, TKey key, int blockAfter, DateTimeOffset now)
        where TKey : notnull
    {
        var entry = map.AddOrUpdate(
            key,
            _ => Next(default, blockAfter, now),
            (_, e) => Next(e, blockAfter, now));
        if (map.Count > MaxEntries)
        {
            Prune(map, now);
        }

        return entry;
    }

    private Entry Next(Entry e, int blockAfter, DateTimeOffset now)
    {
        if (e.BlockedUntil > now)
        {
            // Attempts during a block do not extend it: the block ends on time even under a steady attack.
            return e;
        }

        var count = e.Count == 0 || now - e.Last > Window || e.BlockedUntil != default ? 1 : e.Count + 1;
        var blockedUntil = blockAfter > 0 && count >= blockAfter ? now + options.BlockTime : default;
        return new Entry(count, now, blockedUntil);
    }

    private static void Prune<TKey>(ConcurrentDictionary<TKey, Entry> map, DateTimeOffset now)
        where TKey : notnull
    {
        foreach (var (key, value) in map)
        {
            if (now - value.Last > Window && value.BlockedUntil <= now)
            {
                map.TryRemove(key, out _);
            }
        }
    }

    private readonly record struct Entry(int Count, DateTimeOffset Last, DateTimeOffset BlockedUntil);
}
