namespace Xmpp.Server.Storage;

/// <summary>One archived message (XEP-0313): its stanza id (XEP-0359), the other party, direction, time and XML.</summary>
public sealed record ArchivedMessage(string Id, string With, bool Outgoing, DateTimeOffset At, string Xml);

/// <summary>
/// A query on an account's archive. <see cref="With"/> is a bare JID (any resource) or a full JID; the
/// time bounds are inclusive; <see cref="AfterId"/> pages forward, <see cref="BeforeId"/> (or
/// <see cref="Last"/>) pages backward from the end.
/// </summary>
public sealed record ArchiveQuery
{
    public string? With { get; init; }

    public bool WithIsFull { get; init; }

    public DateTimeOffset? Start { get; init; }

    public DateTimeOffset? End { get; init; }

    public string? AfterId { get; init; }

    public string? BeforeId { get; init; }

    /// <summary>The last page (RSM's empty &lt;before/&gt;).</summary>
    public bool Last { get; init; }

    public IReadOnlyCollection<string>? Ids { get; init; }

    public int Max { get; init; } = 50;
}

/// <summary>A page of results, oldest first; <see cref="Complete"/> when nothing lies beyond it in the paging direction.</summary>
public sealed record ArchivePage(IReadOnlyList<ArchivedMessage> Messages, bool Complete);

/// <summary>Message archives, one per account, indexed for paging by id, by time and by correspondent.</summary>
public interface IArchiveStore
{
    Task AppendAsync(string host, string username, ArchivedMessage message, CancellationToken cancellationToken);

    /// <summary>A page of the archive; null when AfterId or BeforeId is not in it (XEP-0313 §6.1: item-not-found).</summary>
    Task<ArchivePage?> QueryAsync(string host, string username, ArchiveQuery query, CancellationToken cancellationToken);

    /// <summary>The first and the last archived message (XEP-0313 §5.4 metadata), null when empty.</summary>
    Task<(ArchivedMessage First, ArchivedMessage Last)?> BoundsAsync(string host, string username, CancellationToken cancellationToken);

    /// <summary>Removes an owner's whole archive (a destroyed room).</summary>
    Task ClearAsync(string host, string username, CancellationToken cancellationToken);

    /// <summary>Removes messages older than <paramref name="before"/> and, per account, all but the newest <paramref name="keepPerAccount"/> (0: no limit). Returns how many.</summary>
    Task<int> ExpireAsync(DateTimeOffset? before, int keepPerAccount, CancellationToken cancellationToken);
}
