namespace Xmpp.Server.Storage;

/// <summary>One roster item (RFC 6121 §2.1.2): contact bare JID, handle, subscription state, pending ask, groups.</summary>
public sealed record RosterItem(string Jid, string? Name, string Subscription, string? Ask, IReadOnlyList<string> Groups);

/// <summary>Rosters per account.</summary>
public interface IRosterStore
{
    Task<IReadOnlyList<RosterItem>> GetAsync(string host, string username, CancellationToken cancellationToken);

    Task<RosterItem?> FindAsync(string host, string username, string contact, CancellationToken cancellationToken);

    /// <summary>Adds or replaces an item.</summary>
    Task SetAsync(string host, string username, RosterItem item, CancellationToken cancellationToken);

    Task<bool> RemoveAsync(string host, string username, string contact, CancellationToken cancellationToken);
}
