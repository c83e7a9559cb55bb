using System.Security.Cryptography;
using System.Text;
using Xmpp.Core;
using Xmpp.Core.Addressing;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;
using Xmpp.Server.Modules.Mam;
using Xmpp.Server.Routing;

namespace Xmpp.Server.Modules.Muc;

/// <summary>A long-lived association with a room (XEP-0045 §5.2), ordered by privilege.</summary>
public enum Affiliation
{
    Outcast = -1,
    None = 0,
    Member = 1,
    Admin = 2,
    Owner = 3,
}

/// <summary>A privilege for the length of a visit (XEP-0045 §5.1), ordered by privilege.</summary>
public enum Role
{
    None = 0,
    Visitor = 1,
    Participant = 2,
    Moderator = 3,
}

/// <summary>One affiliation in a room's lists, with the nick it reserves and the reason given.</summary>
public sealed record AffiliationEntry(Affiliation Affiliation, string? Nick, string? Reason);

/// <summary>Someone in a room under one nick: one or more sessions (resources) of the same account.</summary>
internal sealed class Occupant(string nick, Jid bare, string occupantId)
{
    public string Nick { get; set; } = nick;

    public Jid Bare { get; } = bare;

    /// <summary>The XEP-0421 occupant id: stable for an account in this room, whatever its nick.</summary>
    public string OccupantId { get; } = occupantId;

    public Role Role { get; set; }

    /// <summary>Real full JIDs of the sessions in the room, in joining order, each with its last presence.</summary>
    public List<(Jid Jid, Element Presence)> Sessions { get; } = [];

    public Jid PrimaryJid => Sessions[0].Jid;

    /// <summary>The latest presence of any of its sessions (what the others see).</summary>
    public Element Presence => Sessions[^1].Presence;

    public int IndexOf(Jid full) => Sessions.FindIndex(s => s.Jid == full);
}

/// <summary>A message kept for the history sent on entry.</summary>
internal sealed record HistoryEntry(Element Message, DateTimeOffset At, int Characters);

/// <summary>
/// One multi-user chat room (XEP-0045): its configuration, affiliations, occupants, subject and recent
/// history. Every stanza to the room is handled under its lock, and what the room sends is collected in
/// an outbox that the service routes once the lock is released (a bounce of something the room sent
/// comes back to the room: it must not find the lock taken by its own sender).
/// This file holds the room's state, its persistence and the dispatch of presence, messages and iqs; the
/// use cases are in partial files named after XEP-0045's sections: MucRoom.Occupants.cs (§7.1–§7.2, §7.6,
/// §7.14), MucRoom.Presence.cs (the presence the room sends, §7.2.3), MucRoom.History.cs (§7.2.15 and the
/// archive), MucRoom.Messages.cs (§7.4–§7.8, §8.1), MucRoom.Registration.cs (§7.10), MucRoom.VoiceRequests.cs
/// (§8.6), MucRoom.Admin.cs (§8–§9), MucRoom.Owner.cs (§10), MucRoom.Disco.cs (§6, iqs to occupants) and
/// MucRoom.Avatar.cs (XEP-0486).
/// </summary>
internal sealed partial class MucRoom
{
    public const string Muc = "http://jabber.org/protocol/muc";
    public const string MucUser = "http://jabber.org/protocol/muc#user";
    public const string MucAdmin = "http://jabber.org/protocol/muc#admin";
    public const string MucOwner = "http://jabber.org/protocol/muc#owner";
    public const string OccupantIdNs = "urn:xmpp:occupant-id:0";
    public const string StanzaIdNs = "urn:xmpp:sid:0";
    public const string SelfPingOptimization = "http://jabber.org/protocol/muc#self-ping-optimization";
    public const string StableId = "http://jabber.org/protocol/muc#stable_id";
    public const string Document = "urn:xmppserver:muc";
    public const string RegisterNs = "jabber:iq:register";
    public const string RegisterForm = "http://jabber.org/protocol/muc#register";
    public const string RequestForm = "http://jabber.org/protocol/muc#request";

    private readonly Dictionary<Jid, AffiliationEntry> _affiliations = [];
    private readonly Dictionary<string, Occupant> _byNick = new(StringComparer.Ordinal);
    private readonly Dictionary<Jid, Occupant> _bySession = [];
    private readonly LinkedList<HistoryEntry> _history = new();
    private readonly byte[] _secret;

    public MucRoom(MucService service, Jid jid, RoomConfig config, byte[]? secret = null)
    {
        Service = service;
        Jid = jid;
        Config = config;
        _secret = secret ?? RandomNumberGenerator.GetBytes(32);
    }

    public MucService Service { get; }

    public Jid Jid { get; }

    public SemaphoreSlim Lock { get; } = new(1, 1);

    public RoomConfig Config { get; private set; }

    /// <summary>A new room that its owner has not configured yet (§10.1.1): nobody else may enter.</summary>
    public bool Locked { get; set; }

    /// <summary>Removed from the service (destroyed, or temporary and empty).</summary>
    public bool Gone { get; private set; }

    public string? Subject { get; private set; }

    public string? SubjectBy { get; private set; }

    public int OccupantCount => _byNick.Count;

    public IReadOnlyDictionary<Jid, AffiliationEntry> Affiliations => _affiliations;

    public Affiliation AffiliationOf(Jid jid) => _affiliations.TryGetValue(jid.Bare, out var a) ? a.Affiliation : Affiliation.None;

    /// <summary>Whether the service keeps the room when nobody is in it.</summary>
    public bool Listed(Jid? requester) =>
        !Locked && !Gone && (Config.Public || (requester is not null && (AffiliationOf(requester) >= Affiliation.Member || _bySession.ContainsKey(requester))));

    // ---- persistence ---------------------------------------------------------------------------------

    public Element ToDocument()
    {
        var doc = new Element("room", Document).SetAttribute("secret", Convert.ToBase64String(_secret));
        doc.Add(Config.ToElement(Document));
        if (Subject is not null)
        {
            doc.AddChild("subject").SetAttribute("by", SubjectBy).AddText(Subject);
        }

        foreach (var (jid, a) in _affiliations)
        {
            doc.AddChild("affiliation").SetAttribute("jid", jid.ToString()).SetAttribute("affiliation", Name(a.Affiliation))
                .SetAttribute("nick", a.Nick).AddText(a.Reason ?? string.Empty);
        }

        return doc;
    }

    /// <summary>
    /// Cluster mode: everything of a live room that another node needs to run it on without a visible break (a
    /// drain): its document, and what only memory holds: occupants with their sessions' presence, history,
    /// whether it is locked, its vCard.
    /// </summary>
    public Element ToSnapshot(bool history = true)
    {
        var doc = ToDocument();
        if (Locked)
        {
            doc.SetAttribute("locked", "true");
        }

        if (VCard is { } vcard)
        {
            doc.AddChild("vcard").Add(vcard.Clone());
        }

        foreach (var o in _byNick.Values)
        {
            var occupant = doc.AddChild("occupant").SetAttribute("nick", o.Nick).SetAttribute("jid", o.Bare.ToString())
                .SetAttribute("id", o.OccupantId).SetAttribute("role", Name(o.Role));
            foreach (var (jid, presence) in o.Sessions)
            {
                occupant.AddChild("session").SetAttribute("jid", jid.ToString()).Add(presence.Clone());
            }
        }

        foreach (var h in history ? _history : Enumerable.Empty<HistoryEntry>())
        {
            doc.AddChild("history").SetAttribute("at", h.At.ToString("O", System.Globalization.CultureInfo.InvariantCulture)).Add(h.Message.Clone());
        }

        return doc;
    }

    /// <summary>A room from <see cref="ToSnapshot"/>: its occupants are in it, as they were.</summary>
    public static MucRoom FromSnapshot(MucService service, Jid jid, Element doc)
    {
        var room = FromDocument(service, jid, doc);
        room.Locked = doc.GetAttribute("locked") == "true";
        if (doc.Child("vcard")?.FirstElement() is { } vcard)
        {
            room.RestoreVCard(vcard.Clone());
        }

        foreach (var e in doc.Elements().Where(e => e.Name == "occupant"))
        {
            if (e.GetAttribute("nick") is not { } nick || !Jid.TryParse(e.GetAttribute("jid"), out var bare) || e.GetAttribute("id") is not { } id)
            {
                continue;
            }

            var occupant = new Occupant(nick, bare, id) { Role = ParseRole(e.GetAttribute("role")) ?? Role.Participant };
            foreach (var session in e.Elements().Where(x => x.Name == "session"))
            {
                if (Jid.TryParse(session.GetAttribute("jid"), out var full) && session.FirstElement() is { } presence)
                {
                    occupant.Sessions.Add((full, presence.Clone().Freeze()));
                    room._bySession[full] = occupant;
                }
            }

            if (occupant.Sessions.Count > 0)
            {
                room._byNick[nick] = occupant;
            }
        }

        foreach (var h in doc.Elements().Where(e => e.Name == "history"))
        {
            if (DateTimeOffset.TryParse(h.GetAttribute("at"), System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.RoundtripKind, out var at) && h.FirstElement() is { } message)
            {
                room.AddHistory(message.Clone().Freeze(), at);
            }
        }

        return room;
    }

    public static MucRoom FromDocument(MucService service, Jid jid, Element doc)
    {
        var secret = doc.GetAttribute("secret") is { } s ? Convert.FromBase64String(s) : null;
        var room = new MucRoom(service, jid, RoomConfig.FromElement(doc.Child("config") ?? new Element("config", Document)), secret);
        if (doc.Child("subject") is { } subject)
        {
            room.Subject = subject.Text;
            room.SubjectBy = subject.GetAttribute("by");
        }

        foreach (var a in doc.Elements().Where(e => e.Name == "affiliation"))
        {
            if (Jid.TryParse(a.GetAttribute("jid"), out var who) && ParseAffiliation(a.GetAttribute("affiliation")) is { } aff and not Affiliation.None)
            {
                room._affiliations[who.Bare] = new AffiliationEntry(aff, a.GetAttribute("nick"), a.Text.Length > 0 ? a.Text : null);
            }
        }

        return room;
    }

    // ---- dispatch: presence (MucRoom.Occupants.cs), messages (MucRoom.Messages.cs and others), iq ------

    /// <summary>A presence to room/nick: entering, a nick change, leaving (§7.2, §7.6, §7.14; MucRoom.Occupants.cs).</summary>
    public async ValueTask PresenceAsync(StanzaContext ctx, Outbox outbox, CancellationToken ct)
    {
        var start = outbox.Count;
        await HandlePresenceAsync(ctx, outbox, ct).ConfigureAwait(false);
        ReflectPresenceId(ctx, outbox, start);
    }

    /// <summary>
    /// A message to the room or to an occupant: groupchat (§7.4), private (§7.5), invitations and declines
    /// (§7.8), voice requests (§8.6).
    /// </summary>
    public async ValueTask MessageAsync(StanzaContext ctx, Outbox outbox, CancellationToken ct)
    {
        var message = ctx.Stanza;
        var type = ctx.Type ?? "normal";
        if (type != "error")
        {
            NotLockedFor(ctx.From);
        }

        _bySession.TryGetValue(ctx.From, out var sender);
        if (type == "error")
        {
            if (sender is not null && IsGhostError(message))
            {
                Remove(sender, null, outbox, [333], item: null);
                await AfterLeaveAsync(ct).ConfigureAwait(false);
            }

            return;
        }

        if (ctx.To!.Resource is { } nick)
        {
            PrivateMessage(ctx, sender, nick, outbox);
            return;
        }

        if (type == "groupchat")
        {
            await GroupchatAsync(ctx, sender, outbox, ct).ConfigureAwait(false);
            return;
        }

        var userX = message.Child("x", MucUser);
        if (userX?.Child("invite") is not null)
        {
            await InviteAsync(ctx, sender, userX, outbox, ct).ConfigureAwait(false);
            return;
        }

        if (userX?.Child("decline") is { } decline)
        {
            Decline(ctx, decline, outbox);
            return;
        }

        if (DataForm.Values(message.Child("x", DataForm.Namespace)) is { } form && DataForm.FormType(form) == RequestForm)
        {
            VoiceRequest(ctx, sender, form, outbox);
            return;
        }

        throw new StanzaErrorException(StanzaErrorCondition.NotAcceptable, "messages to a room are of type groupchat");
    }

    /// <summary>An iq to the room itself; returns the result payload (or null for an empty result).</summary>
    public async ValueTask<Element?> IqAsync(StanzaContext ctx, Element payload, Outbox outbox, CancellationToken ct)
    {
        NotLockedFor(ctx.From);
        var set = ctx.Type == "set";
        switch (payload.Namespace, payload.Name, set)
        {
            case (Ns.DiscoInfo, "query", false):
                return DiscoInfo(ctx, payload.GetAttribute("node"));
            case (Ns.DiscoItems, "query", false):
                return DiscoItems(ctx, payload.GetAttribute("node"));
            case (MucAdmin, "query", _):
                return await AdminAsync(ctx, payload, set, outbox, ct).ConfigureAwait(false);
            case (MucOwner, "query", _):
                return await OwnerAsync(ctx, payload, set, outbox, ct).ConfigureAwait(false);
            case (ArchiveQueries.Namespace, "query", true):
                MayReadArchive(ctx.From);
                return await ArchiveQueries.ServeAsync(Service.Storage.RoomArchive, Jid, ctx.From, payload, 250, (m, _) =>
                {
                    outbox.Add(m);
                    return ValueTask.CompletedTask;
                }, ct).ConfigureAwait(false);
            case (ArchiveQueries.Namespace, "query", false):
                MayReadArchive(ctx.From);
                return new Element("query", ArchiveQueries.Namespace).Add(ArchiveQueries.QueryForm());
            case (ArchiveQueries.Namespace, "metadata", false):
                MayReadArchive(ctx.From);
                return await ArchiveQueries.MetadataAsync(Service.Storage.RoomArchive, Jid, ct).ConfigureAwait(false);
            case (RegisterNs, "query", _):
                return await RegisterAsync(ctx, payload, set, outbox, ct).ConfigureAwait(false);
            case (Ns.Ping, "ping", false):
                return null;
            case (VCardNs, "vCard", false):
                return GetVCard();
            case (VCardNs, "vCard", true):
                await SetVCardAsync(ctx, payload, outbox, ct).ConfigureAwait(false);
                return null;
            default:
                throw new StanzaErrorException(StanzaErrorCondition.ServiceUnavailable);
        }
    }

    // ---- common to the sections -----------------------------------------------------------------------

    /// <summary>§10.1.1: until its owner configures it, a new room does not exist for anyone else.</summary>
    private void NotLockedFor(Jid requester)
    {
        if (Locked && AffiliationOf(requester) != Affiliation.Owner)
        {
            throw new StanzaErrorException(StanzaErrorCondition.ItemNotFound, $"there is no room {Jid}");
        }
    }

    /// <summary>XEP-0421: a hash of the real bare JID under the room's secret, so it is stable and reveals nothing.</summary>
    private string OccupantId(Jid bare) =>
        Convert.ToBase64String(HMACSHA256.HashData(_secret, Encoding.UTF8.GetBytes(bare.ToString())).AsSpan(0, 18)).Replace('+', '-').Replace('/', '_');

    private static bool FixedTimeEquals(string? given, string expected) =>
        given is not null && CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(given), Encoding.UTF8.GetBytes(expected));

    private static string NewId() => Guid.NewGuid().ToString("N")[..16];

    public static Role DefaultRole(Affiliation affiliation) => affiliation switch
    {
        Affiliation.Owner or Affiliation.Admin => Role.Moderator,
        Affiliation.Member => Role.Participant,
        Affiliation.Outcast => Role.None,
        _ => Role.Participant,
    };

    /// <summary>The role an affiliation brings in this room (§5.1: in a moderated room, visitors until given voice).</summary>
    private Role RoleFor(Affiliation affiliation) =>
        affiliation == Affiliation.None && Config.Moderated ? Role.Visitor : DefaultRole(affiliation);

    public static string Name(Affiliation a) => a.ToString().ToLowerInvariant();

    public static string Name(Role r) => r.ToString().ToLowerInvariant();

    public static Affiliation? ParseAffiliation(string? text) => text switch
    {
        "owner" => Affiliation.Owner,
        "admin" => Affiliation.Admin,
        "member" => Affiliation.Member,
        "none" => Affiliation.None,
        "outcast" => Affiliation.Outcast,
        _ => null,
    };

    public static Role? ParseRole(string? text) => text switch
    {
        "moderator" => Role.Moderator,
        "participant" => Role.Participant,
        "visitor" => Role.Visitor,
        "none" => Role.None,
        _ => null,
    };
}
