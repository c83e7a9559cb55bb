using Xmpp.Core.Addressing;
using Xmpp.Core.Xml;

namespace Xmpp.Server.Cluster;

/// <summary>
/// What the router and the streams see of cluster mode (README, "Running a cluster"). Every account has one
/// home node at a time: the node its sessions are bound on, where everything that reads or writes the
/// account's state runs (its hooks, its caches). A stanza for an account homed elsewhere is forwarded there
/// after the sender's side of the routing. Null in <see cref="Hosting.ServerContext.Cluster"/> on a single node.
/// </summary>
public interface ICluster
{
    /// <summary>This node's name.</summary>
    string Node { get; }

    /// <summary>Whether this node is the account's home now (its stanzas are handled here).</summary>
    bool IsHome(Jid bare);

    /// <summary>
    /// Hands a stanza to the home of <paramref name="to"/>'s account, which routes it from its recipient's side
    /// (<see cref="Routing.Router.RouteForwardedAsync"/>); completes when that routing has (stored or delivered).
    /// </summary>
    ValueTask ForwardAsync(Element stanza, Jid from, Jid to, CancellationToken cancellationToken);

    /// <summary>
    /// Makes this node the account's home for a client that has just authenticated here. Null when it is;
    /// otherwise the address of the node whose sessions the account already has, for RFC 6120 §4.9.3.19
    /// see-other-host.
    /// </summary>
    ValueTask<string?> ClaimAsync(Jid bare, CancellationToken cancellationToken);

    /// <summary>
    /// Completes at once, unless the whole process was paused long enough to have been declared dead meanwhile
    /// (SIGSTOP, a VM freeze): then only once the membership table says this node is still a member. A node
    /// that was declared dead stops instead, so nothing its clients sent after it resumed is routed or acknowledged.
    /// </summary>
    ValueTask FenceAsync(CancellationToken cancellationToken);

    /// <summary>
    /// A rolling restart (SIGTERM in cluster mode): this node's resumable sessions (XEP-0198) leave for other
    /// nodes without ending, their accounts' homes with them, and their clients are told to reconnect and resume
    /// there. Sessions that cannot be resumed are left to end as at any shutdown. Returns the sessions parked.
    /// </summary>
    Task<int> DrainAsync(CancellationToken cancellationToken);

    /// <summary>The members as this node sees them (for the check command, the metrics and the console).</summary>
    IReadOnlyList<ClusterMember> Members();
}

/// <summary>A node of the cluster: its name, silo address and state ("Active", "Joining", "ShuttingDown", "Dead"...).</summary>
public sealed record ClusterMember(string Node, string Address, string Status, bool IsSelf);
