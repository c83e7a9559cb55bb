namespace Xmpp.Server.Storage;

/// <summary>A node of an account's personal eventing service (XEP-0163), its configuration serialised by the module.</summary>
public sealed record PubSubNode(string Node, string Config);

/// <summary>A published item: its id, the serialised &lt;item/&gt; payload, when and by whom it was published.</summary>
public sealed record PubSubItem(string Id, string Xml, string Publisher, DateTimeOffset Published);

/// <summary>Nodes and items of the PEP services, one per account.</summary>
public interface IPubSubStore
{
    Task<PubSubNode?> GetNodeAsync(string host, string username, string node, CancellationToken cancellationToken);

    Task<IReadOnlyList<PubSubNode>> ListNodesAsync(string host, string username, CancellationToken cancellationToken);

    /// <summary>Creates a node; false when it already exists or the account does not.</summary>
    Task<bool> CreateNodeAsync(string host, string username, string node, string config, CancellationToken cancellationToken);

    Task SetConfigAsync(string host, string username, string node, string config, CancellationToken cancellationToken);

    /// <summary>Deletes a node with its items; false when there was none.</summary>
    Task<bool> DeleteNodeAsync(string host, string username, string node, CancellationToken cancellationToken);

    /// <summary>Stores an item (replacing one with the same id, which becomes the newest) and keeps only the newest <paramref name="maxItems"/>.</summary>
    Task PublishAsync(string host, string username, string node, PubSubItem item, int maxItems, CancellationToken cancellationToken);

    /// <summary>Removes an item; false when there was none.</summary>
    Task<bool> RetractAsync(string host, string username, string node, string itemId, CancellationToken cancellationToken);

    Task PurgeAsync(string host, string username, string node, CancellationToken cancellationToken);

    /// <summary>The newest <paramref name="max"/> items (all when null), or those with the given ids; oldest first.</summary>
    Task<IReadOnlyList<PubSubItem>> GetItemsAsync(string host, string username, string node, int? max, IReadOnlyCollection<string>? ids, CancellationToken cancellationToken);
}
