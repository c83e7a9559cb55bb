namespace Xmpp.Server.Storage;

/// <summary>A node of a publish-subscribe service (XEP-0060), its configuration serialised by the module.</summary>
public sealed record ServiceNodeRecord(string Node, string Config);

/// <summary>An entity's affiliation with a node (owner, publisher, publish-only, member, outcast).</summary>
public sealed record ServiceAffiliationRecord(string Node, string Jid, string Affiliation);

/// <summary>A subscription to a node: its id, the subscriber, its state (subscribed, pending, unconfigured) and its options, serialised by the module.</summary>
public sealed record ServiceSubscriptionRecord(string Node, string SubId, string Jid, string State, string Options);

/// <summary>Everything of a service but its items (which are read on demand).</summary>
public sealed record ServiceState(
    IReadOnlyList<ServiceNodeRecord> Nodes,
    IReadOnlyList<ServiceAffiliationRecord> Affiliations,
    IReadOnlyList<ServiceSubscriptionRecord> Subscriptions);

/// <summary>Nodes, items, affiliations and subscriptions of the publish-subscribe services (pubsub.HOST), by service domain.</summary>
public interface IPubSubServiceStore
{
    Task<ServiceState> LoadAsync(string service, CancellationToken cancellationToken);

    /// <summary>Creates a node with its first owner; false when it already exists.</summary>
    Task<bool> CreateNodeAsync(string service, string node, string config, string owner, CancellationToken cancellationToken);

    Task SetConfigAsync(string service, string node, string config, CancellationToken cancellationToken);

    /// <summary>Deletes a node with its items, affiliations and subscriptions; false when there was none.</summary>
    Task<bool> DeleteNodeAsync(string service, string node, CancellationToken cancellationToken);

    /// <summary>Sets an entity's affiliation with a node; "none" removes it.</summary>
    Task SetAffiliationAsync(string service, string node, string jid, string affiliation, CancellationToken cancellationToken);

    /// <summary>Adds or replaces a subscription (by its id).</summary>
    Task SetSubscriptionAsync(string service, ServiceSubscriptionRecord subscription, CancellationToken cancellationToken);

    /// <summary>Removes a subscription; false when there was none.</summary>
    Task<bool> RemoveSubscriptionAsync(string service, string node, string subId, CancellationToken cancellationToken);

    /// <summary>Stores an item (replacing one with the same id, which becomes the newest) and keeps only the newest <paramref name="maxItems"/>.</summary>
    Task PublishAsync(string service, string node, PubSubItem item, int maxItems, CancellationToken cancellationToken);

    /// <summary>Removes an item; false when there was none.</summary>
    Task<bool> RetractAsync(string service, string node, string itemId, CancellationToken cancellationToken);

    Task PurgeAsync(string service, string node, CancellationToken cancellationToken);

    /// <summary>The newest <paramref name="max"/> items (all when null), or those with the given ids; oldest first.</summary>
    Task<IReadOnlyList<PubSubItem>> GetItemsAsync(string service, string node, int? max, IReadOnlyCollection<string>? ids, CancellationToken cancellationToken);
}
