namespace Xmpp.Server.Modules.Muc;

/// <summary>What the room shows to the server's administrators (the web console's room pages), copied out of its state.</summary>
internal sealed partial class MucRoom
{
    /// <summary>For a list: read without the lock (immutable configuration, counts), as the list-rooms command reads it.</summary>
    public RoomSummary Summary(bool inMemory) => new(Jid, Config, Subject, OccupantCount, Locked, inMemory);

    /// <summary>The occupants and affiliations, copied under the room's lock; null when the room is gone.</summary>
    public async ValueTask<RoomDetails?> DetailsAsync(CancellationToken ct)
    {
        await Lock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            return Gone ? null : Details(inMemory: true);
        }
        finally
        {
            Lock.Release();
        }
    }

    /// <summary>The copy itself (under the lock, or of a room that nothing else sees).</summary>
    public RoomDetails Details(bool inMemory) => new(
        Summary(inMemory),
        SubjectBy,
        [.. _byNick.Values.OrderBy(o => o.Nick, StringComparer.Ordinal).Select(o => new RoomOccupant(o.Nick, [.. o.Sessions.Select(s => s.Jid)], o.Role, AffiliationOf(o.Bare)))],
        [.. _affiliations.OrderByDescending(a => a.Value.Affiliation).ThenBy(a => a.Key.ToString(), StringComparer.Ordinal)
            .Select(a => new RoomAffiliation(a.Key, a.Value.Affiliation, a.Value.Nick, a.Value.Reason))]);
}
