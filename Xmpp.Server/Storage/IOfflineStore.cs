namespace Xmpp.Server.Storage;

/// <summary>A message kept for an account while it had no available resource (XEP-0160).</summary>
public sealed record OfflineMessage(long Id, string Xml);

/// <summary>Offline message storage, oldest first.</summary>
public interface IOfflineStore
{
    /// <summary>Appends a message unless the account already holds <paramref name="limit"/> of them; false when full.</summary>
    Task<bool> StoreAsync(string host, string username, string xml, int limit, CancellationToken cancellationToken);

    Task<IReadOnlyList<OfflineMessage>> LoadAsync(string host, string username, CancellationToken cancellationToken);

    /// <summary>Removes the given messages (those delivered).</summary>
    Task DeleteAsync(string host, string username, IReadOnlyCollection<long> ids, CancellationToken cancellationToken);
}
