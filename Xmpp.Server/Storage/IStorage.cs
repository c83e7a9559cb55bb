namespace Xmpp.Server.Storage;

/// <summary>
/// The storage back end: one object per server, opened at start-up (which applies migrations) and
/// disposed at shutdown. Each store is an interface so a PostgreSQL or clustered back end can follow.
/// </summary>
public interface IStorage : IAsyncDisposable
{
    IUserStore Users { get; }

    IRosterStore Roster { get; }

    IOfflineStore Offline { get; }

    ILastActivityStore LastActivity { get; }

    /// <summary>Private XML (XEP-0049) and vCards (XEP-0054).</summary>
    IUserDocumentStore Documents { get; }

    /// <summary>Personal eventing (XEP-0163) nodes and items.</summary>
    IPubSubStore PubSub { get; }

    /// <summary>Publish-subscribe services' (XEP-0060, pubsub.HOST) nodes, items, affiliations and subscriptions.</summary>
    IPubSubServiceStore PubSubServices { get; }

    /// <summary>Message archives (XEP-0313).</summary>
    IArchiveStore Archive { get; }

    /// <summary>Multi-user chat rooms' archives (XEP-0313 on a room JID: host is the service, username the room).</summary>
    IArchiveStore RoomArchive { get; }

    /// <summary>Invitation tokens (XEP-0401, XEP-0379, XEP-0445).</summary>
    IInviteStore Invites { get; }

    /// <summary>Creates or upgrades the schema; returns the schema version now in place.</summary>
    Task<int> MigrateAsync(CancellationToken cancellationToken);

    /// <summary>A one-line description for logs and the check command.</summary>
    string Describe();
}
