using System.Collections.Concurrent;
using Xmpp.Core;
using Xmpp.Core.Addressing;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;
using Xmpp.Server.Modules.AdHoc;
using Xmpp.Server.Routing;
using Xmpp.Server.Storage;

namespace Xmpp.Server.Modules.Muc;

/// <summary>Who may create rooms on a service.</summary>
public enum RoomCreation
{
    /// <summary>Accounts of this server's hosts.</summary>
    Local,

    /// <summary>Anyone, from any server.</summary>
    Anyone,

    /// <summary>The server's administrators only.</summary>
    Admins,
}

/// <summary>The muc module's settings (replaced whole by a reload).</summary>
internal sealed record MucSettings(RoomCreation Creation, bool LockNewRooms, int MaxHistory, int MaxRooms, int MaxVCardSize);

/// <summary>
/// One multi-user chat service (conference.HOST): its rooms, loaded from storage on first use, and the
/// stanzas addressed to the service, to rooms and to occupants.
/// </summary>
internal sealed class MucService(string domain, string host)
{
    private const string RoomKind = "muc-room";

    /// <summary>A persistent room's vCard (XEP-0486), kept apart from its document, which changes far more often.</summary>
    private const string VCardKind = "muc-vcard";

    private readonly ConcurrentDictionary<string, MucRoom> _rooms = new(StringComparer.Ordinal);

    /// <summary>Cluster mode: rooms that became homed here again, read from storage anew at their next stanza.</summary>
    private readonly ConcurrentDictionary<string, byte> _reload = new(StringComparer.Ordinal);
    private readonly Lock _loadGate = new();
    private Task? _load;

    public string Domain { get; } = domain;

    /// <summary>The host whose subdomain this is.</summary>
    public string Host { get; } = host;

    public Jid Jid { get; } = Jid.Parse(domain);

    /// <summary>The module generation in force (a reload hands the service, rooms and all, to the next one).</summary>
    public IModuleContext Context { get; set; } = null!;

    public MucSettings Settings { get; set; } = null!;

    /// <summary>The server's ad-hoc commands (the administrators' room commands are among them).</summary>
    public AdHocCommands? Commands { get; set; }

    public NLog.Logger Log => Context.Log;

    public IStorage Storage => Context.Storage;

    public int RoomCount => _rooms.Count;

    public int OccupantCount => _rooms.Values.Sum(r => r.OccupantCount);

    public async Task HandleAsync(StanzaContext ctx, CancellationToken ct)
    {
        await EnsureLoadedAsync(ct).ConfigureAwait(false);
        var to = ctx.To!;
        if (to.Local is null)
        {
            await ServiceStanzaAsync(ctx, ct).ConfigureAwait(false);
            return;
        }

        var outbox = new Outbox();
        while (true)
        {
            var room = await FindOrCreateAsync(ctx, ct).ConfigureAwait(false);
            if (room is null)
            {
                return;
            }

            await room.Lock.WaitAsync(ct).ConfigureAwait(false);
            try
            {
                if (room.Gone)
                {
                    continue; // destroyed meanwhile: look again (a join creates it anew)
                }

                await DispatchAsync(room, ctx, outbox, ct).ConfigureAwait(false);
            }
            catch (StanzaErrorException ex)
            {
                outbox.Clear();
                if (Stanza.MayReplyWithError(ctx.Stanza))
                {
                    Log.Debug("{Kind} from {From} to {To} refused: {Condition} {Text}", ctx.Kind, ctx.From, to, ex.Error.Condition, ex.Error.Text);
                    outbox.Add(ErrorReply(ctx, ex.Error));
                }
            }
            finally
            {
                room.Lock.Release();
            }

            // Who is in the room (presence: joins, leaves, nick and role changes) is written at once; messages in batches.
            Context.Changed(room.Jid, urgent: ctx.Kind == "presence");
            break;
        }

        // Sent once the room is unlocked: a bounce of what it sends comes back to the room.
        await outbox.RouteAsync(Context.Router, ct).ConfigureAwait(false);
    }

    private static async ValueTask DispatchAsync(MucRoom room, StanzaContext ctx, Outbox outbox, CancellationToken ct)
    {
        switch (ctx.Kind)
        {
            case "presence":
                await room.PresenceAsync(ctx, outbox, ct).ConfigureAwait(false);
                break;
            case "message":
                await room.MessageAsync(ctx, outbox, ct).ConfigureAwait(false);
                break;
            case "iq" when ctx.To!.Resource is { } nick:
                room.OccupantIq(ctx, nick, outbox);
                break;
            case "iq" when ctx.Type is "get" or "set" && ctx.Stanza.FirstElement() is { } payload:
                var result = await room.IqAsync(ctx, payload, outbox, ct).ConfigureAwait(false);
                outbox.Add(Stanza.IqResult(ctx.Stanza, result));
                break;
            case "iq" when ctx.Type is "get" or "set":
                throw new StanzaErrorException(StanzaErrorCondition.BadRequest, "an iq request needs a payload");
        }
    }

    /// <summary>
    /// Cluster mode: the room's home moved to this node. A copy in memory from an earlier time is dropped; the
    /// stored room (configuration, affiliations, subject, history) is read again at its next stanza.
    /// </summary>
    public void Arrived(string name)
    {
        _reload[name] = 0;
        if (_rooms.TryRemove(name, out var stale))
        {
            Log.Debug("Room {Room} is homed here again: its copy in memory is dropped ({Occupants} occupants)", stale.Jid, stale.OccupantCount);
        }
    }

    /// <summary>
    /// Cluster mode: a node died with these sessions. Each that is an occupant of a room here leaves it with
    /// status 333, as when its server bounces the room's traffic (XEP-0045 §7.2.11 / §9: removed because of an error).
    /// </summary>
    public async Task SessionsLostAsync(IReadOnlySet<Jid> sessions, CancellationToken ct)
    {
        foreach (var room in _rooms.Values.Where(r => r.OccupantCount > 0))
        {
            var outbox = new Outbox();
            await room.Lock.WaitAsync(ct).ConfigureAwait(false);
            try
            {
                await room.RemoveLostAsync(sessions, outbox, ct).ConfigureAwait(false);
            }
            finally
            {
                room.Lock.Release();
            }

            if (outbox.Count > 0)
            {
                Context.Changed(room.Jid, urgent: true);
            }

            await outbox.RouteAsync(Context.Router, ct).ConfigureAwait(false);
        }
    }

    /// <summary>Cluster mode: the rooms with occupants here (a drain moves them to another node).</summary>
    public IEnumerable<Jid> OccupiedRooms() => _rooms.Values.Where(r => r.OccupantCount > 0 && !r.Gone).Select(r => r.Jid);

    /// <summary>
    /// Cluster mode: a drain takes the room off this node, occupants and all, for its next home; null when it has
    /// no occupants (a stored room is read again from storage wherever it is next used).
    /// </summary>
    public async Task<Element?> ParkAsync(string name)
    {
        if (!_rooms.TryGetValue(name, out var room))
        {
            return null;
        }

        await room.Lock.WaitAsync().ConfigureAwait(false);
        try
        {
            if (room.OccupantCount == 0 || room.Gone || !_rooms.TryRemove(new KeyValuePair<string, MucRoom>(name, room)))
            {
                return null;
            }

            Log.Info("Room {Room} leaves for another node with its {Count} occupant(s)", room.Jid, room.OccupantCount);
            return room.ToSnapshot();
        }
        finally
        {
            room.Lock.Release();
        }
    }

    /// <summary>
    /// Cluster mode: a room parked by a drained node arrives here with its occupants, or one whose node died is taken
    /// over from its checkpoint (those of its occupants that died with that node leave next, with 333).
    /// </summary>
    public void Restore(string name, Element snapshot)
    {
        var room = MucRoom.FromSnapshot(this, Jid.Parse(name + "@" + Domain), snapshot);
        _reload.TryRemove(name, out _);
        _rooms[name] = room;
        Context.Changed(room.Jid, urgent: true);
        Log.Info("Room {Room} arrived from another node with its {Count} occupant(s)", room.Jid, room.OccupantCount);
    }

    /// <summary>Cluster mode: a copy of an occupied room for its checkpoint, leaving it here; null when it has no occupants here (any more).</summary>
    public async ValueTask<Element?> CheckpointAsync(string name, bool listing = false)
    {
        if (!_rooms.TryGetValue(name, out var room))
        {
            return null;
        }

        await room.Lock.WaitAsync().ConfigureAwait(false);
        try
        {
            return room.OccupantCount == 0 || room.Gone ? null : room.ToSnapshot(history: !listing);
        }
        finally
        {
            room.Lock.Release();
        }
    }

    /// <summary>Whether the room has occupants here (cluster mode keeps its home while it has).</summary>
    public bool Occupied(string name) => _rooms.TryGetValue(name, out var room) && room.OccupantCount > 0;

    /// <summary>The room a stanza is for; a join to a room that does not exist creates it (§10.1.1) if the sender may.</summary>
    private async ValueTask<MucRoom?> FindOrCreateAsync(StanzaContext ctx, CancellationToken ct)
    {
        var name = ctx.To!.Local!;
        if (_reload.TryRemove(name, out _) && !_rooms.ContainsKey(name) &&
            await Storage.Documents.GetHostAsync(Domain, RoomKind, name, ct).ConfigureAwait(false) is { } stored)
        {
            var vcard = await Storage.Documents.GetHostAsync(Domain, VCardKind, name, ct).ConfigureAwait(false);
            _rooms.TryAdd(name, await RestoreAsync(Jid.Parse(name + "@" + Domain), stored, vcard, ct).ConfigureAwait(false));
        }

        if (_rooms.TryGetValue(name, out var room))
        {
            return room;
        }

        // §10.1.1: a room is created by a join that signals MUC (§7.2.1, the <x/> element). A presence without it (a
        // status change that arrived after the room was destroyed, a groupchat 1.0 client) does not create one, so
        // a room just destroyed does not come back with a late status update's sender as its owner.
        var joining = ctx.Kind == "presence" && ctx.Type is null && ctx.To.Resource is not null && ctx.Stanza.Child("x", MucRoom.Muc) is not null;
        StanzaError? refusal = null;
        if (ctx.Kind == "presence" && ctx.Type is null && ctx.To.Resource is null)
        {
            refusal = new StanzaError(StanzaErrorCondition.JidMalformed, "a nickname is needed to enter a room (room@service/nick)");
        }
        else if (ctx.Kind == "presence" && ctx.Type is null && !joining)
        {
            refusal = new StanzaError(StanzaErrorCondition.ItemNotFound, $"there is no room {ctx.To.Bare}; a join that creates one carries <x xmlns='{MucRoom.Muc}'/>");
        }
        else if (!joining)
        {
            refusal = new StanzaError(StanzaErrorCondition.ItemNotFound, $"there is no room {ctx.To.Bare}");
        }
        else if (!MayCreate(ctx.From))
        {
            refusal = new StanzaError(StanzaErrorCondition.NotAllowed, "you may not create rooms on this service");
        }
        else if (_rooms.Count >= Settings.MaxRooms)
        {
            refusal = new StanzaError(StanzaErrorCondition.ResourceConstraint, "this service has as many rooms as it may");
        }

        if (refusal is not null)
        {
            // Presence other than a join (leaving a room that is gone, subscriptions) gets no error.
            var answer = ctx.Kind != "presence" || ctx.Type is null;
            if (answer && Stanza.MayReplyWithError(ctx.Stanza))
            {
                await Context.Router.RouteAsync(ErrorReply(ctx, refusal), null, ct).ConfigureAwait(false);
            }

            return null;
        }

        return _rooms.GetOrAdd(name, n => new MucRoom(this, Jid.Parse(n + "@" + Domain), new RoomConfig()));
    }

    private bool MayCreate(Jid who) => Settings.Creation switch
    {
        RoomCreation.Anyone => true,
        RoomCreation.Admins => Context.Options.IsAdmin(who.Bare),
        _ => Context.Router.IsLocal(who.Domain),
    };

    private static Element ErrorReply(StanzaContext ctx, StanzaError error)
    {
        var reply = Stanza.ErrorReply(ctx.Stanza, error, includeOriginal: ctx.Kind == "message");
        if (ctx.Kind == "presence")
        {
            reply.Add(new Element("x", MucRoom.Muc));
        }

        return reply;
    }

    // ---- the service itself ----------------------------------------------------------------------------

    private async Task ServiceStanzaAsync(StanzaContext ctx, CancellationToken ct)
    {
        if (ctx.Kind != "iq" || ctx.Type is not ("get" or "set"))
        {
            if (ctx.Kind == "message")
            {
                await Context.Router.BounceAsync(ctx.Stanza, StanzaError.ServiceUnavailable, ct).ConfigureAwait(false);
            }

            return;
        }

        var payload = ctx.Stanza.FirstElement();
        if (payload is not null && await CommandStanzaAsync(ctx, payload, ct).ConfigureAwait(false) is { } answer)
        {
            await Context.Router.RouteAsync(answer, null, ct).ConfigureAwait(false);
            return;
        }

        Element reply;
        switch (payload?.Namespace, payload?.Name, ctx.Type)
        {
            case (Ns.DiscoInfo, "query", "get") when payload!.GetAttribute("node") is null:
                var info = new Element("query", Ns.DiscoInfo);
                info.AddChild("identity").SetAttribute("category", "conference").SetAttribute("type", "text").SetAttribute("name", "Chatrooms");
                foreach (var f in new[] { MucRoom.Muc, Ns.DiscoInfo, Ns.DiscoItems, Ns.Ping, "http://jabber.org/protocol/muc#unique", MucRoom.StableId, MucRoom.SelfPingOptimization, MucRoom.OccupantIdNs, "urn:xmpp:mam:2", MucRoom.VCardNs, ChannelSearch.Namespace })
                {
                    info.AddChild("feature").SetAttribute("var", f);
                }

                if (Commands?.ExecuteAtService is not null)
                {
                    info.AddChild("feature").SetAttribute("var", AdHocCommands.Namespace);
                }

                reply = Stanza.IqResult(ctx.Stanza, info);
                break;
            case (Ns.DiscoItems, "query", "get") when payload!.GetAttribute("node") is null:
                var items = new Element("query", Ns.DiscoItems);
                foreach (var room in (await AllRoomsAsync(ct).ConfigureAwait(false)).Where(r => r.Listed(ctx.From)).OrderBy(r => r.Jid.Local, StringComparer.Ordinal).Take(1000))
                {
                    items.AddChild("item").SetAttribute("jid", room.Jid.ToString()).SetAttribute("name", room.Config.Name.Length > 0 ? room.Config.Name : room.Jid.Local);
                }

                reply = Stanza.IqResult(ctx.Stanza, items);
                break;
            case ("http://jabber.org/protocol/muc#unique", "unique", "get"):
                // §10.1.4: a room name nobody has.
                var unique = new Element("unique", "http://jabber.org/protocol/muc#unique").AddText(Guid.NewGuid().ToString("N")[..12]);
                reply = Stanza.IqResult(ctx.Stanza, unique);
                break;
            case (Ns.Ping, "ping", "get"):
                reply = Stanza.IqResult(ctx.Stanza);
                break;
            case (ChannelSearch.Namespace, "search", "get"):
                reply = Search(ctx.Stanza, payload!, await AllRoomsAsync(ct).ConfigureAwait(false));
                break;
            case (MucRoom.VCardNs, "vCard", "get"):
                // XEP-0486 §3.1: vcard-temp is the rooms'; the service itself has none (XEP-0054 §3.1).
                reply = Stanza.ErrorReply(ctx.Stanza, new StanzaError(StanzaErrorCondition.ItemNotFound, "the service has no vCard; its rooms do"));
                break;
            default:
                reply = Stanza.ErrorReply(ctx.Stanza, StanzaError.ServiceUnavailable);
                break;
        }

        await Context.Router.RouteAsync(reply, null, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// XEP-0050 on the service's JID (the administrators' room commands): the command list and each
    /// command's node in disco, and execution by the adhoc module. Null for anything else.
    /// </summary>
    private async ValueTask<Element?> CommandStanzaAsync(StanzaContext ctx, Element payload, CancellationToken ct)
    {
        if (Commands?.ExecuteAtService is not { } execute)
        {
            return null;
        }

        var node = payload.GetAttribute("node");
        try
        {
            switch (payload.Namespace, payload.Name, ctx.Type)
            {
                case (Ns.DiscoInfo, "query", "get") when node == AdHocCommands.Namespace:
                    return Stanza.IqResult(ctx.Stanza, new Element("query", Ns.DiscoInfo).SetAttribute("node", node).Add(AdHocCommands.Identity("command-list", "Commands")));
                case (Ns.DiscoInfo, "query", "get") when node is not null:
                    var info = Commands.NodeInfo(ctx.From, Domain, host: false, node) ?? throw new StanzaErrorException(StanzaErrorCondition.ItemNotFound);
                    var query = new Element("query", Ns.DiscoInfo).SetAttribute("node", node);
                    info.ForEach(e => query.Add(e));
                    return Stanza.IqResult(ctx.Stanza, query);
                case (Ns.DiscoItems, "query", "get") when node == AdHocCommands.Namespace:
                    var items = new Element("query", Ns.DiscoItems).SetAttribute("node", node);
                    Commands.Items(ctx.From, Domain, host: false).ForEach(e => items.Add(e));
                    return Stanza.IqResult(ctx.Stanza, items);
                case (AdHocCommands.Namespace, "command", "set"):
                    return Stanza.IqResult(ctx.Stanza, await execute(ctx, payload, ct).ConfigureAwait(false));
                default:
                    return null;
            }
        }
        catch (StanzaErrorException ex)
        {
            return Stanza.ErrorReply(ctx.Stanza, ex.Error);
        }
    }

    /// <summary>Every room of the service (for its administrators' commands).</summary>
    public async ValueTask<List<MucRoom>> RoomsAsync(CancellationToken ct)
    {
        await EnsureLoadedAsync(ct).ConfigureAwait(false);
        return [.. _rooms.Values.Where(r => !r.Gone)];
    }

    /// <summary>Whether the persistent rooms have been read (by a first stanza or command): until then every room is in storage only.</summary>
    public bool IsLoaded
    {
        get
        {
            lock (_loadGate)
            {
                return _load is { IsCompletedSuccessfully: true };
            }
        }
    }

    /// <summary>
    /// One page of the rooms whose name starts with <paramref name="prefix"/>, after <paramref name="after"/> in
    /// ordinal order (keyset paging), and how many match: for the web console. Until the service has loaded its
    /// persistent rooms (no stanza reached it yet) they are read from storage, and only the page's are parsed:
    /// listing them does not load them.
    /// </summary>
    public async ValueTask<(IReadOnlyList<RoomSummary> Page, int Matching)> RoomPageAsync(string prefix, string? after, int limit, CancellationToken ct)
    {
        bool Matches(string name) => name.StartsWith(prefix, StringComparison.Ordinal);
        bool Wanted(string name) => Matches(name) && (after is null || string.CompareOrdinal(name, after) > 0);
        if (IsLoaded)
        {
            var rooms = _rooms.Values.Where(r => !r.Gone).ToList();
            var page = rooms.Where(r => Wanted(r.Jid.Local!)).OrderBy(r => r.Jid.Local, StringComparer.Ordinal).Take(limit).Select(r => r.Summary(inMemory: true)).ToList();
            return (page, rooms.Count(r => Matches(r.Jid.Local!)));
        }

        var stored = await Storage.Documents.ListHostAsync(Domain, RoomKind, ct).ConfigureAwait(false);
        var names = stored.Keys.Where(Wanted).Order(StringComparer.Ordinal).Take(limit);
        var summaries = names.Select(n => Unloaded(n, stored[n])?.Summary(inMemory: false)).OfType<RoomSummary>().ToList();
        return (summaries, stored.Keys.Count(Matches));
    }

    /// <summary>One room's configuration, occupants and affiliations (from storage while the service has not loaded); null when there is no such room.</summary>
    public async ValueTask<RoomDetails?> RoomDetailsAsync(string name, CancellationToken ct)
    {
        if (IsLoaded)
        {
            return _rooms.TryGetValue(name, out var room) ? await room.DetailsAsync(ct).ConfigureAwait(false) : null;
        }

        return await Storage.Documents.GetHostAsync(Domain, RoomKind, name, ct).ConfigureAwait(false) is { } xml ? Unloaded(name, xml)?.Details(inMemory: false) : null;
    }

    /// <summary>A stored room as <see cref="LoadAsync"/> reads it, but not added to the service (nothing runs, nothing is sent).</summary>
    private MucRoom? Unloaded(string name, string xml) =>
        Jid.TryCreate(name, Domain, null, out var jid) ? MucRoom.FromDocument(this, jid, ElementParser.Parse(xml)) : null;

    /// <summary>Destroys a room as its owner could (§10.9); false when there is no such room.</summary>
    public async ValueTask<bool> DestroyAsync(string name, string? reason, Jid? venue, CancellationToken ct)
    {
        await EnsureLoadedAsync(ct).ConfigureAwait(false);
        if (!_rooms.TryGetValue(name, out var room))
        {
            return false;
        }

        var outbox = new Outbox();
        await room.Lock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (room.Gone)
            {
                return false;
            }

            var destroy = new Element("destroy", MucRoom.MucOwner).SetAttribute("jid", venue?.ToString());
            if (reason is not null)
            {
                destroy.AddChild("reason").AddText(reason);
            }

            await room.DestroyAsync(destroy, outbox, ct).ConfigureAwait(false);
        }
        finally
        {
            room.Lock.Release();
        }

        await outbox.RouteAsync(Context.Router, ct).ConfigureAwait(false);

        return true;
    }

    /// <summary>
    /// The rooms for the service's lists (disco#items, channel search): those here and, in cluster mode, the occupied
    /// rooms homed on the other nodes, from their checkpoints (which replace this node's copy of a stored room).
    /// </summary>
    private async ValueTask<IEnumerable<MucRoom>> AllRoomsAsync(CancellationToken ct)
    {
        var elsewhere = await Context.CheckpointsElsewhereAsync(Domain, ct).ConfigureAwait(false);
        if (elsewhere.Count == 0)
        {
            return _rooms.Values;
        }

        var rooms = new Dictionary<string, MucRoom>(_rooms, StringComparer.Ordinal);
        foreach (var (jid, snapshot) in elsewhere)
        {
            if (jid.Local is { } name && jid.Domain == Domain)
            {
                rooms[name] = MucRoom.FromSnapshot(this, jid, snapshot);
            }
        }

        return rooms.Values;
    }

    /// <summary>XEP-0433 over the rooms that disco#items lists to anyone: public, configured, not gone.</summary>
    private Element Search(Element iq, Element search, IEnumerable<MucRoom> rooms)
    {
        var channels = rooms.Where(r => r.Listed(null)).Select(r => new ChannelSearch.Channel(
            r.Jid.ToString(), r.Config.Name.Length > 0 ? r.Config.Name : r.Jid.Local!, r.Config.Description, r.Config.Language,
            r.OccupantCount, Open: !r.Config.MembersOnly && r.Config.Password is null, r.Config.NonAnonymous));
        try
        {
            return Stanza.IqResult(iq, ChannelSearch.Answer(search, channels));
        }
        catch (StanzaErrorException ex)
        {
            Log.Debug("Channel search from {From} refused: {Condition} {Text}", iq.GetAttribute("from"), ex.Error.Condition, ex.Error.Text);
            return Stanza.ErrorReply(iq, ex.Error);
        }
    }

    // ---- storage ---------------------------------------------------------------------------------------

    /// <summary>Persistent rooms, read once (a failed read is tried again by the next stanza).</summary>
    private async ValueTask EnsureLoadedAsync(CancellationToken ct)
    {
        Task load;
        lock (_loadGate)
        {
            if (_load is { IsFaulted: true } or { IsCanceled: true })
            {
                _load = null;
            }

            load = _load ??= LoadAsync();
        }

        if (!load.IsCompletedSuccessfully)
        {
            await load.WaitAsync(ct).ConfigureAwait(false);
        }
    }

    private async Task LoadAsync()
    {
        var ct = CancellationToken.None;
        var documents = await Storage.Documents.ListHostAsync(Domain, RoomKind, ct).ConfigureAwait(false);
        var vcards = await Storage.Documents.ListHostAsync(Domain, VCardKind, ct).ConfigureAwait(false);
        foreach (var (name, xml) in documents)
        {
            if (!Jid.TryCreate(name, Domain, null, out var jid))
            {
                Log.Warn("Skipping stored room {Name}@{Domain}: not a valid JID", name, Domain);
                continue;
            }

            // A room already here (cluster mode: one that arrived with its occupants from another node) is newer.
            _rooms.TryAdd(name, await RestoreAsync(jid, xml, vcards.GetValueOrDefault(name), ct).ConfigureAwait(false));
        }

        Log.Info("Multi-user chat service {Domain}: {Count} persistent rooms loaded", Domain, documents.Count);
    }

    /// <summary>A stored room: its document, vCard and the history from its archive.</summary>
    private async Task<MucRoom> RestoreAsync(Jid jid, string xml, string? vcard, CancellationToken ct)
    {
        var room = MucRoom.FromDocument(this, jid, ElementParser.Parse(xml));
        if (vcard is not null)
        {
            room.RestoreVCard(ElementParser.Parse(vcard));
        }

        if (room.Config.Archived && room.Config.HistoryLength > 0)
        {
            var page = await Storage.RoomArchive.QueryAsync(Domain, jid.Local!, new ArchiveQuery { Last = true, Max = room.Config.HistoryLength }, ct).ConfigureAwait(false);
            foreach (var m in page?.Messages ?? [])
            {
                room.AddHistory(ElementParser.Parse(m.Xml), m.At);
            }
        }

        return room;
    }

    /// <summary>Stores a persistent room's configuration, affiliations and subject (a temporary room is not stored).</summary>
    public async ValueTask SaveAsync(MucRoom room, CancellationToken ct)
    {
        if (room.Config.Persistent)
        {
            await Storage.Documents.SetHostAsync(Domain, RoomKind, room.Jid.Local!, room.ToDocument().ToString(), ct).ConfigureAwait(false);
            if (!room.VCardSaved)
            {
                await Storage.Documents.SetHostAsync(Domain, VCardKind, room.Jid.Local!, room.VCard?.ToString(), ct).ConfigureAwait(false);
                room.VCardSaved = true;
            }
        }
    }

    public async ValueTask UnsaveAsync(MucRoom room, CancellationToken ct)
    {
        await Storage.Documents.SetHostAsync(Domain, RoomKind, room.Jid.Local!, null, ct).ConfigureAwait(false);
        await Storage.Documents.SetHostAsync(Domain, VCardKind, room.Jid.Local!, null, ct).ConfigureAwait(false);
        room.VCardSaved = false;
    }

    /// <summary>Takes an ended room out of the service (its name is free again).</summary>
    public ValueTask ForgetAsync(MucRoom room, CancellationToken ct)
    {
        _rooms.TryRemove(new KeyValuePair<string, MucRoom>(room.Jid.Local!, room));
        return ValueTask.CompletedTask;
    }
}
