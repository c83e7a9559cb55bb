using Xmpp.Core.Addressing;
using Xmpp.Server.Sessions;

namespace Xmpp.Server.Cluster;

/// <summary>
/// Cluster mode: this node's sessions (all of an account's sessions are on its home node), telling the
/// cluster when an account's last session here ends, so that its home may move with its next login.
/// </summary>
public sealed class ClusterSessions(ISessionRegistry local, Action<IClientSession> bound, Action<Jid> unbound, Action<Jid> lastSessionEnded) : ISessionRegistry
{
    public int Count => local.Count;

    public IEnumerable<IClientSession> All => local.All;

    public IClientSession? Bind(IClientSession session)
    {
        var replaced = local.Bind(session);
        if (replaced is null)
        {
            bound(session);
        }

        return replaced;
    }

    public bool Unbind(IClientSession session)
    {
        var removed = local.Unbind(session);
        if (removed)
        {
            unbound(session.Jid);
            if (local.Resources(session.Jid.Bare).Count == 0)
            {
                lastSessionEnded(session.Jid.Bare);
            }
        }

        return removed;
    }

    public IClientSession? Find(Jid full) => local.Find(full);

    public IReadOnlyList<IClientSession> Resources(Jid bare) => local.Resources(bare);
}
