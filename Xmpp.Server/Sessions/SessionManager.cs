using System.Collections.Concurrent;
using Xmpp.Core.Addressing;

namespace Xmpp.Server.Sessions;

/// <summary>
/// All bound sessions of this server, by full JID and by account. Thread-safe; kept behind this one type
/// so a clustered registry can replace it.
/// </summary>
public sealed class SessionManager : ISessionRegistry
{
    private readonly ConcurrentDictionary<Jid, IClientSession> _byFull = new();
    private readonly ConcurrentDictionary<Jid, IClientSession[]> _byBare = new();

    public int Count => _byFull.Count;

    public IEnumerable<IClientSession> All => _byFull.Values;

    /// <summary>Registers a session; returns the session it replaced (same full JID), which the caller closes.</summary>
    public IClientSession? Bind(IClientSession session)
    {
        IClientSession? replaced = null;
        _byFull.AddOrUpdate(session.Jid, session, (_, old) =>
        {
            replaced = old;
            return session;
        });
        _byBare.AddOrUpdate(
            session.Jid.Bare,
            _ => [session],
            (_, list) => [.. list.Where(s => s.Jid != session.Jid), session]);
        return replaced;
    }

    /// <summary>Removes a session if it is still the one registered under its JID.</summary>
    public bool Unbind(IClientSession session)
    {
        var removed = _byFull.TryRemove(new KeyValuePair<Jid, IClientSession>(session.Jid, session));
        while (_byBare.TryGetValue(session.Jid.Bare, out var list))
        {
            if (Array.IndexOf(list, session) < 0)
            {
                break;
            }

            var rest = list.Where(s => !ReferenceEquals(s, session)).ToArray();
            var done = rest.Length == 0
                ? _byBare.TryRemove(new KeyValuePair<Jid, IClientSession[]>(session.Jid.Bare, list))
                : _byBare.TryUpdate(session.Jid.Bare, rest, list);
            if (done)
            {
                break;
            }
        }

        return removed;
    }

    public IClientSession? Find(Jid full) => _byFull.TryGetValue(full, out var s) ? s : null;

    /// <summary>The bound resources of an account (available or not).</summary>
    public IReadOnlyList<IClientSession> Resources(Jid bare) =>
        _byBare.TryGetValue(bare.Bare, out var list) ? list : [];
}
