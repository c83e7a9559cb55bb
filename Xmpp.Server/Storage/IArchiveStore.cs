namespace Xmpp.Server.Storage;

/// <summary>One archived message (XEP-0313): its stanza id (XEP-0359), the other party, direction, time and XML.</summary>
public sealed record ArchivedMessage(string Id, string With, bool Outgoing, DateTimeOffset At, string Xml)
{
    /// <summary>
    /// The sender's own id for the message (XEP-0359 &lt;origin-id/&gt;), when it gave one: a message archived again
    /// with the same origin id, correspondent and direction is the same message sent again (a client that lost its
    /// session resends what the server had not acknowledged, XEP-0198 §5), and is kept once.
    /// </summary>
    public string? OriginId { get; init; }

    /// <summary>Longest origin id used to recognise a message sent again; a longer one is archived without.</summary>
    public const int MaxOriginIdLength = 256;

    /// <summary>The &lt;origin-id/&gt; of <paramref name="message"/> when it has a usable one (XEP-0359 §3.1).</summary>
    public static string? OriginIdOf(Xmpp.Core.Xml.Element message) => UsableOriginId(message.Child("origin-id", "urn:xmpp:sid:0")?.GetAttribute("id"));

    /// <summary>An origin id as found in a message, or null when it is absent, empty or too long to recognise a message by.</summary>
    public static string? UsableOriginId(string? id) => id is { Length: > 0 and <= MaxOriginIdLength } ? id : null;
}

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
    /// <summary>
    /// Archives <paramref name="message"/>; returns the stanza id it is archived under: its own, or that of the copy
    /// archived before when this is the same message again (the same stanza id, or the same <see
    /// cref="ArchivedMessage.OriginId"/> from the same correspondent in the same direction). Null when the owner does
    /// not exist (nothing is archived).
    /// </summary>
    Task<string?> AppendAsync(string host, string username, ArchivedMessage message, CancellationToken cancellationToken);

    /// <summary>A page of the archive; null when AfterId or BeforeId is not in it (XEP-0313 §6.1: item-not-found).</summary>
    Task<ArchivePage?> QueryAsync(string host, string username, ArchiveQuery query, CancellationToken cancellationToken);

    /// <summary>The first and the last archived message (XEP-0313 §5.4 metadata), null when empty.</summary>
    Task<(ArchivedMessage First, ArchivedMessage Last)?> BoundsAsync(string host, string username, CancellationToken cancellationToken);

    /// <summary>Removes an owner's whole archive (a destroyed room).</summary>
    Task ClearAsync(string host, string username, CancellationToken cancellationToken);

    /// <summary>Removes messages older than <paramref name="before"/> and, per account, all but the newest <paramref name="keepPerAccount"/> (0: no limit). Returns how many.</summary>
    Task<int> ExpireAsync(DateTimeOffset? before, int keepPerAccount, CancellationToken cancellationToken);
}
