using Xmpp.Core.Addressing;
using Xmpp.Core.Xml;

namespace Xmpp.Server.Sessions;

/// <summary>
/// Cluster mode: live state that can leave its node without ending, to go on on another one: an account's XEP-0198
/// sessions (resumed there), a room with its occupants. A draining node parks what it holds and each entity's home
/// moves with it; a login on another node takes the sessions of an account that all wait for resumption the same
/// way. Each module restores only the snapshots it made (by their element).
/// </summary>
public interface ISessionParking
{
    /// <summary>Accounts with at least one session here that could be parked.</summary>
    IReadOnlyCollection<Jid> ParkableAccounts();

    /// <summary>Whether the account has sessions here and every one of them waits, without a stream, to be resumed.</summary>
    bool AllWaiting(Jid bare);

    /// <summary>
    /// Takes the account's resumable sessions off this node without ending them (no unavailable presence, nothing
    /// stored offline) and closes their streams; returns their snapshots. Sessions that cannot be resumed stay.
    /// </summary>
    Task<IReadOnlyList<Element>> ParkAsync(Jid bare);

    /// <summary>
    /// Parks one resumable session as <see cref="ParkAsync(Jid)"/> does (cluster mode: one bound here for an account
    /// homed elsewhere, which is not in this node's registry); null when it cannot be resumed.
    /// </summary>
    Task<Element?> ParkAsync(ClientSession session) => Task.FromResult<Element?>(null);

    /// <summary>
    /// Takes the session of the account with this resumption id off this node if it waits to be resumed (its client
    /// resumes it on another node); returns its snapshot, or null.
    /// </summary>
    Element? TakeWaiting(Jid bare, string resumeId) => null;

    /// <summary>
    /// On the account's home: a message that a session of the account on another node never acknowledged, that session
    /// over, is delivered to the account's other sessions, stored or bounced as for a session of this node.
    /// </summary>
    Task RedeliverAsync(Jid bare, Element message) => Task.CompletedTask;

    /// <summary>On the account's new home: the snapshots become sessions here, waiting for their clients to resume them.</summary>
    void Restore(Jid bare, IReadOnlyList<Element> snapshots);

    /// <summary>
    /// Whether this module keeps checkpoints of the entity (<see cref="CheckpointAsync"/>): a node that becomes its
    /// home without a move looks for one left by a dead node.
    /// </summary>
    bool Checkpoints(Jid bare);

    /// <summary>
    /// A copy of what this module holds live of an entity homed here, leaving it in place, for the node that takes
    /// the entity over should this one die (<see cref="Restore"/> takes it); null when it holds nothing worth keeping.
    /// With <paramref name="listing"/>, a copy for another node's lists (disco#items): it may leave out what only
    /// running the entity needs (a room's history).
    /// </summary>
    ValueTask<Element?> CheckpointAsync(Jid bare, bool listing = false);
}
