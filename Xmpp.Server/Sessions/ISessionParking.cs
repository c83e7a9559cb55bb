using Xmpp.Core.Addressing;
using Xmpp.Core.Xml;

namespace Xmpp.Server.Sessions;

/// <summary>
/// Cluster mode: sessions that can leave their node without ending, to be resumed on another one (XEP-0198 is the
/// module that can). A draining node parks its accounts' resumable sessions and their home moves with them; a
/// login on another node takes the sessions of an account that all wait for resumption the same way.
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

    /// <summary>On the account's new home: the snapshots become sessions here, waiting for their clients to resume them.</summary>
    void Restore(Jid bare, IReadOnlyList<Element> snapshots);
}
