using Xmpp.Core.Addressing;

namespace Xmpp.Server.Modules.Muc;

/// <summary>A room as a list shows it (read without the room's lock, as the administrators' list-rooms command reads it).</summary>
/// <param name="InMemory">False for a persistent room read from storage because its service has not loaded its rooms yet.</param>
internal sealed record RoomSummary(Jid Jid, RoomConfig Config, string? Subject, int Occupants, bool Locked, bool InMemory);

/// <summary>Someone in a room: the nick, the real full JIDs of its sessions, its role and affiliation.</summary>
internal sealed record RoomOccupant(string Nick, IReadOnlyList<Jid> RealJids, Role Role, Affiliation Affiliation);

/// <summary>One entry of a room's affiliation lists (§5.2), with the nick it reserves and the reason given.</summary>
internal sealed record RoomAffiliation(Jid Jid, Affiliation Affiliation, string? Nick, string? Reason);

/// <summary>A room's state at one moment, taken under its lock.</summary>
internal sealed record RoomDetails(RoomSummary Summary, string? SubjectBy, IReadOnlyList<RoomOccupant> Occupants, IReadOnlyList<RoomAffiliation> Affiliations);

/// <summary>
/// The multi-user chat services of the module generation, for the other modules (the web console):
/// <c>context.Shared&lt;MucDirectory&gt;()</c>, filled by <see cref="MucModule"/>; empty without the muc module.
/// The services read their rooms for it (<see cref="MucService.RoomPageAsync"/>, <see cref="MucService.RoomDetailsAsync"/>),
/// and destroying one is <see cref="MucService.DestroyAsync"/>, the code of the administrators' destroy command.
/// </summary>
internal sealed class MucDirectory
{
    private Func<IEnumerable<MucService>>? _services;

    /// <summary>The services, by domain (none when the muc module is not loaded).</summary>
    public IReadOnlyList<MucService> Services => _services is null ? [] : [.. _services().OrderBy(s => s.Domain, StringComparer.Ordinal)];

    /// <summary>Called by the muc module with its services (read each time: a reload hands running services over).</summary>
    public void Attach(Func<IEnumerable<MucService>> services) => _services = services;

    public MucService? Find(string domain) => Services.FirstOrDefault(s => s.Domain == domain);
}
