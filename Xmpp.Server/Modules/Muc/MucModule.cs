using Xmpp.Core.Addressing;
using Xmpp.Core.Xml;
using Xmpp.Server.Config;
using Xmpp.Server.Modules.AdHoc;
using Xmpp.Server.Routing;
using Xmpp.Server.Sessions;

namespace Xmpp.Server.Modules.Muc;

/// <summary>
/// Multi-user chat (XEP-0045) on a subdomain of every host (conference.HOST by default): the service
/// domain is claimed from the router's "route/remote" ahead of federation, so the core and the other
/// modules never see room traffic, and federation answers for the domain (remote users join rooms
/// here; the rooms write to them from conference.HOST).
/// </summary>
[Specification("XEP-0045", "1.35.1", Note = "Rooms on conference.HOST: instant and reserved creation (locked until configured), the muc#roomconfig form, persistent and temporary, public and hidden, members-only, moderated, password-protected, semi- and non-anonymous; every role and affiliation change with its permission rules and status codes (kick 307, ban 301, members-only 321/322, nick change 303, config 104/170-173); reserved nicks and conflicts; subject; history with maxstanzas/maxchars/seconds/since; private messages with allowpm; mediated invitations and declines; destroy with an alternative venue and its password; disco of service, rooms (muc#roominfo) and occupants; unique room names; ghost occupants removed on delivery errors (333); registration reserving a nick (§7.10, muc#register) and voice requests to moderators (§8.6, muc#request). muc#stable_id: messages keep their id, and the self-presence that answers a join, a nick change, a presence update or a leave carries the client's presence id. Errors as the XEP names them: forbidden to admins changing the owner or admin list (§10.5, §10.8), conflict for banning oneself (§9.1) and for removing the last owner (§10.2, §10.6), bad-request for a stranger's disco to an occupant (§6.6); the owner and admin lists are for owners in semi-anonymous rooms (§10.5, §10.8) and for occupants and members too in non-anonymous ones. The server's administrators list every room and destroy rooms with ad-hoc commands (XEP-0050) on the service's JID.")]
[Specification("XEP-0433", "0.1.0", Note = "Extended channel search on the service's JID over its public rooms: the search form (q, all, sinname, sindescription, sinaddress, min_users, types, key), keyword search in name, description and address, sorting by address or by number of users, XEP-0059 pages with the rooms' addresses as cursors, the result items with every field of §6.2, and the errors of §4.2.2 (invalid-sort-key, invalid-search-terms, conflicting-fields, no-search-conditions).")]
[Specification("XEP-0486", "0.1.0", Note = "Room avatars: rooms and the service advertise vcard-temp; owners set or remove the room's vCard (others get forbidden), anyone who may see the room reads it (an empty vCard when none is set); the photos' SHA-1 in muc#roominfo_avatarhash; a 104 to the occupants when it changes; persistent rooms keep it across restarts (max-vcard-size).")]
[Specification("XEP-0249", "1.2", Note = "Direct invitations are client-to-client messages, routed like any other (locally and over federation); the rooms accept the mediated kind too.")]
[Specification("XEP-0410", "1.1.0", Note = "Self-pings to one's own occupant JID are answered by the room (muc#self-ping-optimization); not-acceptable when not joined.")]
[Specification("XEP-0421", "0.2.0", Note = "A stable occupant id (HMAC of the real bare JID under the room's secret) on every presence and message from an occupant; ids sent by clients removed.")]
[Specification("XEP-0313", "1.1.1", Note = "Room archives: messages of persistent rooms with logging on are archived by the room and queried on the room JID (public rooms by anyone, others by members and occupants); history on entry survives a restart.")]
public sealed class MucModule : IXmppModule, IKeepsStateAcrossReload
{
    private Dictionary<string, MucService> _services = new(StringComparer.Ordinal);

    public string Name => "muc";

    /// <summary>Ahead of federation's claim of the same hook, behind external components.</summary>
    private const int RoutePriority = 50;

    public void TakeOver(IXmppModule previous)
    {
        if (previous is not MucModule old)
        {
            return;
        }

        // The rooms, with their occupants, carry on under the new generation's settings.
        foreach (var (domain, service) in _services.ToList())
        {
            if (old._services.TryGetValue(domain, out var running))
            {
                running.Context = service.Context;
                running.Settings = service.Settings;
                running.Commands = service.Commands;
                _services[domain] = running;
            }
        }
    }

    public void Register(IModuleContext context)
    {
        var subdomain = context.Option("subdomain") ?? "conference";
        var creation = (context.Option("create") ?? "local") switch
        {
            "local" => RoomCreation.Local,
            "anyone" => RoomCreation.Anyone,
            "admins" => RoomCreation.Admins,
            var other => throw new ConfigException($"module muc: create must be local, anyone or admins, not '{other}'"),
        };
        var settings = new MucSettings(
            creation,
            LockNewRooms: context.Flag("lock-new-rooms", true),
            MaxHistory: context.Number("max-history", 50, min: 0, max: 1000),
            MaxRooms: context.Number("max-rooms", 100_000, min: 1),
            MaxVCardSize: context.Number("max-vcard-size", 256 * 1024, min: 1024, max: 16 * 1024 * 1024));
        if (subdomain.Length == 0 || subdomain.Contains('@', StringComparison.Ordinal) || subdomain.Contains('/', StringComparison.Ordinal))
        {
            throw new ConfigException($"module muc: subdomain '{subdomain}' is not a domain label");
        }

        var commands = context.Shared<AdHocCommands>();
        foreach (var host in context.Options.Hosts)
        {
            var domain = subdomain + "." + host.Name;
            if (!Xmpp.Core.Addressing.Jid.TryPrepareDomain(domain, out var prepared))
            {
                throw new ConfigException($"module muc: {domain} is not a valid domain");
            }

            context.ServeDomain(prepared);
            _services[prepared] = new MucService(prepared, host.Name) { Context = context, Settings = settings, Commands = commands };
        }

        // The services for the other modules (the web console's room pages), read there each time.
        context.Shared<MucDirectory>().Attach(() => _services.Values);

        // The administrators' room commands on each service's JID (served when the adhoc module is loaded).
        MucAdminCommands.Register(context, commands, domain => _services.GetValueOrDefault(domain));

        // Cluster mode: a room's home is the node that runs it; a copy kept from an earlier time it lived here is stale.
        context.OnAccountArrived(jid =>
        {
            if (jid.Local is not null && _services.TryGetValue(jid.Domain, out var service))
            {
                service.Arrived(jid.Local);
            }
        });
        context.OnSessionsLost(async (sessions, ct) =>
        {
            foreach (var service in _services.Values)
            {
                await service.SessionsLostAsync(sessions, ct).ConfigureAwait(false);
            }
        });
        context.KeepsHome(jid => jid.Local is not null && _services.TryGetValue(jid.Domain, out var service) && service.Occupied(jid.Local));
        context.ParksSessions(new RoomParking(() => _services));

        context.Hook(HookNames.RouteRemote, async (ctx, ct) =>
        {
            if (!_services.TryGetValue(ctx.To!.Domain, out var service))
            {
                return false;
            }

            await service.HandleAsync(ctx, ct).ConfigureAwait(false);
            return true;
        }, RoutePriority);

        // Listed in each host's disco#items, as Prosody and ejabberd list theirs (clients find the service there).
        context.Disco.AddHostItems(host => _services.Values.Where(s => s.Host == host)
            .Select(s => new Element("item", Xmpp.Core.Ns.DiscoItems).SetAttribute("jid", s.Domain).SetAttribute("name", "Chatrooms")));

        context.Metrics.Gauge("xmpp_muc_rooms", "Multi-user chat rooms in memory (persistent ones and those with occupants).", () => _services.Values.Sum(s => s.RoomCount));
        context.Metrics.Gauge("xmpp_muc_occupants", "Occupants of multi-user chat rooms.", () => _services.Values.Sum(s => s.OccupantCount));
    }
}

/// <summary>
/// Cluster mode: a drained node's rooms with occupants move to another node with their occupants, history and
/// state, so that a rolling restart does not empty them (the room's home grain carries the snapshot); and each
/// occupied room is checkpointed, so that the node taking over after a crash goes on with its surviving occupants.
/// </summary>
internal sealed class RoomParking(Func<IReadOnlyDictionary<string, MucService>> services) : ISessionParking
{
    public IReadOnlyCollection<Jid> ParkableAccounts() => services().Values.SelectMany(s => s.OccupiedRooms()).ToHashSet();

    public bool AllWaiting(Jid bare) => false;

    public async Task<IReadOnlyList<Element>> ParkAsync(Jid bare)
    {
        if (bare.Local is null || !services().TryGetValue(bare.Domain, out var service))
        {
            return [];
        }

        return await service.ParkAsync(bare.Local).ConfigureAwait(false) is { } snapshot ? [snapshot] : [];
    }

    public void Restore(Jid bare, IReadOnlyList<Element> snapshots)
    {
        if (bare.Local is null || !services().TryGetValue(bare.Domain, out var service))
        {
            return;
        }

        foreach (var snapshot in snapshots.Where(s => s.Name == "room" && s.Namespace == MucRoom.Document))
        {
            service.Restore(bare.Local, snapshot);
        }
    }

    /// <summary>Every room is checkpointed while it has occupants, so that a node's death does not empty its rooms.</summary>
    public bool Checkpoints(Jid bare) => bare.Local is not null && services().ContainsKey(bare.Domain);

    public async ValueTask<Element?> CheckpointAsync(Jid bare, bool listing = false) =>
        bare.Local is not null && services().TryGetValue(bare.Domain, out var service) ? await service.CheckpointAsync(bare.Local, listing).ConfigureAwait(false) : null;
}
