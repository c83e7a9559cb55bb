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
    /// A stanza is being routed to <paramref name="bare"/>'s account on this node, until the mark is disposed. A drain
    /// parks the account's sessions only once no such routing is under way (one that could still find them gone).
    /// </summary>
    RoutingMark EnterRouting(Jid bare);

    /// <summary>
    /// Hands a stanza to the home of <paramref name="to"/>'s account, which routes it from its recipient's side
    /// (<see cref="Routing.Router.RouteForwardedAsync"/>); completes when that routing has (stored or delivered).
    /// </summary>
    ValueTask ForwardAsync(Element stanza, Jid from, Jid to, CancellationToken cancellationToken);

    /// <summary>
    /// Starts noting what this flow of work hands to clients connected to other nodes (sessions whose edge is
    /// elsewhere), until disposed; <see cref="IReachScope.ReachedAsync"/> waits until that has reached those nodes.
    /// An answer waits for it, so that what a request caused is seen before the request's answer is.
    /// </summary>
    IReachScope Track();

    /// <summary>
    /// A client's message is being handled (<see cref="ForwardWindow"/>): a forward that goes into a batch for the
    /// recipient's node returns at once, what is left of it collected in the scope, until the scope is disposed.
    /// <paramref name="before"/> completes once the stream's earlier messages are done.
    /// </summary>
    PipelineScope Pipeline(Task before);

    /// <summary>
    /// Makes this node the account's home for a client that has just authenticated here, unless the account has
    /// sessions on another node: true when this node is the home now; false when it stays there (the client's
    /// session is then bound there from here, <see cref="AttachAsync"/>).
    /// </summary>
    ValueTask<bool> ClaimAsync(Jid bare, CancellationToken cancellationToken);

    /// <summary>
    /// A session is being bound here for an account homed on another node: it is bound on the home through a
    /// proxy there (conflicts and the session limit decided there, its hooks fired there), and this node keeps
    /// its stream. Returns the session's way to its home; null when the home has come here meanwhile (the session
    /// is bound here as any other). Throws the stream error for a session the home refuses.
    /// </summary>
    ValueTask<Sessions.ISessionHome?> AttachAsync(Sessions.ClientSession session, CancellationToken cancellationToken);

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

    /// <summary>
    /// A client resumes a session unknown here: a parked one whose snapshot did not arrive with its account's home
    /// (the move failed, or the node that parked it died) is taken from the shared database; null when there is
    /// none or the database cannot be read.
    /// </summary>
    ValueTask<Element?> TakeParkedAsync(Jid bare, string resumeId, CancellationToken cancellationToken);

    /// <summary>
    /// A failed authentication for <paramref name="account"/> on this node: counted with those on every node; returns
    /// the cluster-wide count in the window (0 when it could not be counted). Reaching the account limit blocks
    /// the username on every node (<see cref="Net.AuthFailureTracker.Block"/>).
    /// </summary>
    ValueTask<int> AccountFailedAsync(string account, CancellationToken cancellationToken);

    /// <summary>Every session bound on a live node (this node's, and the others' from the crash ledger) with its node's name, for the administration commands and the console.</summary>
    ValueTask<IReadOnlyList<(Jid Session, string Node)>> SessionsAsync(CancellationToken cancellationToken);

    /// <summary>Ends the sessions an address names (a full JID, or all of a bare JID's) on the node they are on; returns how many.</summary>
    ValueTask<int> EndSessionsAsync(Jid jid, CancellationToken cancellationToken);

    /// <summary>
    /// Live state of an entity homed here that a module checkpoints (a room with its occupants and history) changed:
    /// its checkpoint is written to the shared database soon after, changes in between coalesced, for the node
    /// that takes it over should this one die; at once when <paramref name="urgent"/> (who is in a room).
    /// </summary>
    void Changed(Jid entity, bool urgent);

    /// <summary>
    /// The checkpoints of the entities of <paramref name="domain"/> homed on the other live nodes (their occupied
    /// rooms), as written at most a moment ago: what a service lists of its rooms beyond those homed here.
    /// </summary>
    ValueTask<IReadOnlyList<(Jid Entity, Element Snapshot)>> CheckpointsElsewhereAsync(string domain, CancellationToken cancellationToken);

    /// <summary>
    /// A session of this node sent available presence to <paramref name="target"/> outside its roster (RFC 6121
    /// §4.6), or ended it: kept in the crash ledger, so that the target hears the session went should this node die.
    /// </summary>
    void Directed(Jid session, Jid target, bool available);

    /// <summary>The members as this node sees them (for the check command, the metrics and the console).</summary>
    IReadOnlyList<ClusterMember> Members();
}

/// <summary>
/// Routings under way to the accounts homed on a node, counted in stripes by account (no allocation, nothing to
/// clean up); a stripe at zero means no routing to any of its accounts is under way.
/// </summary>
public sealed class RoutingStripes
{
    private readonly int[] _counts = new int[1024];

    public RoutingMark Enter(Jid bare)
    {
        var index = (bare.GetHashCode() & int.MaxValue) % _counts.Length;
        Interlocked.Increment(ref _counts[index]);
        return new RoutingMark(_counts, index);
    }

    /// <summary>Completes when no routing to an account of <paramref name="bare"/>'s stripe is under way, or after <paramref name="timeout"/>: false then.</summary>
    public async Task<bool> QuietAsync(Jid bare, TimeSpan timeout)
    {
        var index = (bare.GetHashCode() & int.MaxValue) % _counts.Length;
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        while (Volatile.Read(ref _counts[index]) > 0)
        {
            if (System.Diagnostics.Stopwatch.GetElapsedTime(started) > timeout)
            {
                return false;
            }

            await Task.Delay(1).ConfigureAwait(false);
        }

        return true;
    }
}

/// <summary>One routing under way (<see cref="ICluster.EnterRouting"/>); the default one marks nothing.</summary>
public readonly struct RoutingMark(int[]? counts, int index) : IDisposable
{
    public void Dispose()
    {
        if (counts is not null)
        {
            Interlocked.Decrement(ref counts[index]);
        }
    }
}

/// <summary>What a flow of work handed to clients connected to other nodes (<see cref="ICluster.Track"/>).</summary>
public interface IReachScope : IDisposable
{
    /// <summary>Completes once all of it reached those nodes (or after a few seconds for a node that does not take it).</summary>
    Task ReachedAsync(CancellationToken cancellationToken);
}

/// <summary>A node of the cluster: its name, silo address and state ("Active", "Joining", "ShuttingDown", "Dead"...).</summary>
public sealed record ClusterMember(string Node, string Address, string Status, bool IsSelf);
