using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Xmpp.Core;
using Xmpp.Core.Addressing;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;
using Xmpp.Server.Modules.Mam;
using Xmpp.Server.Routing;
using Xmpp.Server.Storage;

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

    public void AddHistory(Element message, DateTimeOffset at)
    {
        _history.AddLast(new HistoryEntry(message, at, message.ChildText("body", Ns.Client)?.Length ?? 0));
        while (_history.Count > Math.Max(Config.HistoryLength, 0))
        {
            _history.RemoveFirst();
        }
    }

    // ---- presence (§7.2 entering, §7.6 nick change, §7.14 leaving) -------------------------------------

    public async ValueTask PresenceAsync(StanzaContext ctx, List<Element> outbox, CancellationToken ct)
    {
        var start = outbox.Count;
        await HandlePresenceAsync(ctx, outbox, ct).ConfigureAwait(false);
        ReflectPresenceId(ctx, outbox, start);
    }

    private async ValueTask HandlePresenceAsync(StanzaContext ctx, List<Element> outbox, CancellationToken ct)
    {
        var from = ctx.From;
        var nick = ctx.To!.Resource;
        var type = ctx.Type;
        _bySession.TryGetValue(from, out var current);
        if (type == "error")
        {
            // The occupant's server could not deliver to it: it is gone (a ghost), §7.2 and Prosody's practice.
            if (current is not null && IsGhostError(ctx.Stanza))
            {
                Remove(current, from, outbox, [333], item: null);
                await AfterLeaveAsync(ct).ConfigureAwait(false);
            }

            return;
        }

        if (type is not (null or "unavailable"))
        {
            return; // subscriptions and probes mean nothing to a room
        }

        if (nick is null)
        {
            throw new StanzaErrorException(StanzaErrorCondition.JidMalformed, "a nickname is needed to enter a room (room@service/nick)");
        }

        if (type == "unavailable")
        {
            if (current is not null)
            {
                Remove(current, from, outbox, [], item: null, reason: ctx.Stanza.ChildText("status", Ns.Client));
                await AfterLeaveAsync(ct).ConfigureAwait(false);
            }

            return;
        }

        var basis = Sanitise(ctx.Stanza);
        var mucX = ctx.Stanza.Child("x", Muc);
        if (current is null)
        {
            await JoinAsync(from, nick, basis, mucX, outbox, ct).ConfigureAwait(false);
        }
        else if (current.Nick != nick)
        {
            ChangeNick(current, from, nick, basis, outbox);
        }
        else
        {
            var i = current.IndexOf(from);
            current.Sessions[i] = (from, basis);
            if (mucX is not null)
            {
                // A join from a session already in: the client lost track (a reconnect), so it gets it all again.
                SendEntry(current, from, mucX, created: false, outbox);
            }
            else
            {
                BroadcastPresence(current, null, [], outbox);
            }
        }
    }

    private async ValueTask JoinAsync(Jid from, string nick, Element basis, Element? mucX, List<Element> outbox, CancellationToken ct)
    {
        var affiliation = AffiliationOf(from);
        var created = false;
        if (Locked && affiliation != Affiliation.Owner)
        {
            // §10.1.1: a room awaiting its configuration does not exist for anyone else.
            throw new StanzaErrorException(StanzaErrorCondition.ItemNotFound, "the room is being configured by its owner");
        }

        if (_byNick.Count == 0 && _affiliations.Count == 0 && !Config.Persistent && !Locked)
        {
            // A brand-new room: its creator is its owner (§10.1.1).
            created = true;
            _affiliations[from.Bare] = new AffiliationEntry(Affiliation.Owner, null, null);
            affiliation = Affiliation.Owner;
            Locked = Service.Settings.LockNewRooms;
        }

        if (affiliation == Affiliation.Outcast)
        {
            throw new StanzaErrorException(StanzaErrorCondition.Forbidden, "you are banned from this room");
        }

        if (_byNick.TryGetValue(nick, out var holder) && holder.Bare != from.Bare)
        {
            throw new StanzaErrorException(StanzaErrorCondition.Conflict, "that nickname is in use in this room");
        }

        foreach (var (jid, a) in _affiliations)
        {
            if (a.Nick == nick && jid != from.Bare)
            {
                throw new StanzaErrorException(StanzaErrorCondition.Conflict, "that nickname is reserved by a member of this room");
            }
        }

        if (Config.MembersOnly && affiliation < Affiliation.Member)
        {
            throw new StanzaErrorException(StanzaErrorCondition.RegistrationRequired, "this room is for members only");
        }

        if (Config.Password is { } password && affiliation < Affiliation.Owner &&
            !FixedTimeEquals(mucX?.ChildText("password", Muc), password))
        {
            throw new StanzaErrorException(StanzaErrorCondition.NotAuthorized, "a password is needed to enter this room");
        }

        if (holder is null && Config.MaxUsers > 0 && _byNick.Count >= Config.MaxUsers && affiliation < Affiliation.Admin)
        {
            throw new StanzaErrorException(new StanzaError(StanzaErrorCondition.ServiceUnavailable, "the room is full", "wait"));
        }

        if (holder is not null)
        {
            // Another session of the same account under the same nick (multi-session nick).
            holder.Sessions.Add((from, basis));
            _bySession[from] = holder;
            SendEntry(holder, from, mucX, created: false, outbox);
            BroadcastPresence(holder, null, [], outbox, except: from);
            return;
        }

        var occupant = new Occupant(nick, from.Bare, OccupantId(from.Bare)) { Role = RoleFor(affiliation) };
        occupant.Sessions.Add((from, basis));
        _byNick[nick] = occupant;
        _bySession[from] = occupant;
        Service.Log.Info("{Jid} entered {Room} as {Nick} ({Affiliation}, {Role})", from, Jid, nick, Name(affiliation), Name(occupant.Role));

        // §7.2.3: the others first, then everybody learns of the newcomer, then history, then the subject.
        BroadcastPresence(occupant, null, [], outbox, except: from);
        SendEntry(occupant, from, mucX, created, outbox);
        if (created)
        {
            await Service.SaveAsync(this, ct).ConfigureAwait(false);
        }
    }

    /// <summary>What a session gets on entering: the occupants, its own presence, history and the subject (§7.2.3–§7.2.15).</summary>
    private void SendEntry(Occupant occupant, Jid session, Element? mucX, bool created, List<Element> outbox)
    {
        foreach (var other in _byNick.Values)
        {
            if (other != occupant)
            {
                outbox.Add(PresenceOf(other, other.Presence, null, session, SeesJids(occupant), []));
            }
        }

        var codes = new List<int> { 110 };
        if (Config.NonAnonymous)
        {
            codes.Add(100);
        }

        if (Config.Archived)
        {
            codes.Add(170);
        }

        if (created)
        {
            codes.Add(201);
        }

        outbox.Add(PresenceOf(occupant, occupant.Presence, null, session, SeesJids(occupant), codes));
        SendHistory(session, mucX?.Child("history", Muc), outbox);
        var subject = new Element("message", Ns.Client)
            .SetAttribute("from", SubjectBy is { } by ? Jid.WithResource(by).ToString() : Jid.ToString())
            .SetAttribute("to", session.ToString())
            .SetAttribute("type", "groupchat")
            .SetAttribute("id", NewId());
        subject.AddChild("subject").AddText(Subject ?? string.Empty);
        outbox.Add(subject);
    }

    /// <summary>§7.2.15 history: the room's recent messages within the client's maxstanzas, maxchars, seconds and since.</summary>
    private void SendHistory(Jid session, Element? request, List<Element> outbox)
    {
        var maxStanzas = Attribute(request, "maxstanzas") ?? int.MaxValue;
        var maxChars = Attribute(request, "maxchars") ?? int.MaxValue;
        DateTimeOffset? since = null;
        if (Attribute(request, "seconds") is { } seconds)
        {
            since = DateTimeOffset.UtcNow.AddSeconds(-seconds);
        }

        if (request?.GetAttribute("since") is { } sinceText &&
            DateTimeOffset.TryParse(sinceText, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var s) &&
            (since is null || s > since))
        {
            since = s;
        }

        var picked = new List<HistoryEntry>();
        var chars = 0;
        for (var node = _history.Last; node is not null && picked.Count < maxStanzas; node = node.Previous)
        {
            if (since is { } t && node.Value.At < t)
            {
                break;
            }

            chars += node.Value.Characters;
            if (chars > maxChars)
            {
                break;
            }

            picked.Add(node.Value);
        }

        for (var i = picked.Count - 1; i >= 0; i--)
        {
            var m = picked[i].Message.Clone();
            m.SetAttribute("to", session.ToString());
            m.Add(Forwarded.Delay(picked[i].At, Jid.ToString()));
            outbox.Add(m);
        }
    }

    private static int? Attribute(Element? e, string name) =>
        int.TryParse(e?.GetAttribute(name), NumberStyles.None, CultureInfo.InvariantCulture, out var v) ? v : null;

    private void ChangeNick(Occupant occupant, Jid from, string nick, Element basis, List<Element> outbox)
    {
        if (_byNick.TryGetValue(nick, out var holder) && holder != occupant)
        {
            throw new StanzaErrorException(StanzaErrorCondition.Conflict, "that nickname is in use in this room");
        }

        foreach (var (jid, a) in _affiliations)
        {
            if (a.Nick == nick && jid != occupant.Bare)
            {
                throw new StanzaErrorException(StanzaErrorCondition.Conflict, "that nickname is reserved by a member of this room");
            }
        }

        // §7.6: unavailable from the old nick with 303 and the new nick, then available from the new one.
        var old = occupant.Nick;
        BroadcastPresence(occupant, "unavailable", [303], outbox, decorate: item => item.SetAttribute("nick", nick));
        _byNick.Remove(old);
        occupant.Nick = nick;
        _byNick[nick] = occupant;
        occupant.Sessions[occupant.IndexOf(from)] = (from, basis);
        BroadcastPresence(occupant, null, [], outbox);
        Service.Log.Info("{Jid} is now {Nick} in {Room} (was {Old})", from, nick, Jid, old);
    }

    /// <summary>
    /// Takes a session out of the room (or the whole occupant when <paramref name="session"/> is null):
    /// unavailable presence to everyone, with the status codes, and to the session itself with 110 too.
    /// </summary>
    private void Remove(Occupant occupant, Jid? session, List<Element> outbox, int[] codes, Action<Element>? item, string? reason = null)
    {
        if (session is not null && occupant.Sessions.Count > 1)
        {
            // One of several sessions under the nick leaves: only it hears of it.
            var i = occupant.IndexOf(session);
            var leaving = PresenceOf(occupant, occupant.Sessions[i].Presence, "unavailable", session, SeesJids(occupant), [110, .. codes], item);
            occupant.Sessions.RemoveAt(i);
            _bySession.Remove(session);
            outbox.Add(leaving);
            return;
        }

        var role = occupant.Role;
        occupant.Role = Role.None;
        var status = reason is null ? null : new Element("status", Ns.Client).AddText(reason);
        foreach (var receiver in _byNick.Values)
        {
            foreach (var (jid, _) in receiver.Sessions)
            {
                var self = receiver == occupant;
                var p = PresenceOf(occupant, occupant.Presence, "unavailable", jid, SeesJids(receiver), self ? [110, .. codes] : codes, item);
                if (status is not null)
                {
                    p.Add(status.Clone());
                }

                outbox.Add(p);
            }
        }

        _byNick.Remove(occupant.Nick);
        foreach (var (jid, _) in occupant.Sessions)
        {
            _bySession.Remove(jid);
        }

        Service.Log.Info("{Jid} left {Room} ({Nick}, was {Role}{Codes})", occupant.Bare, Jid, occupant.Nick, Name(role), codes.Length == 0 ? string.Empty : ", status " + string.Join(" ", codes));
    }

    /// <summary>A temporary room ends with its last occupant (§10.1.1); a room left locked by its creator too.</summary>
    private async ValueTask AfterLeaveAsync(CancellationToken ct)
    {
        if (_byNick.Count == 0 && (!Config.Persistent || Locked))
        {
            await EndAsync(ct).ConfigureAwait(false);
        }
    }

    private async ValueTask EndAsync(CancellationToken ct)
    {
        Gone = true;
        await Service.ForgetAsync(this, ct).ConfigureAwait(false);
        Service.Log.Info("Room {Room} closed", Jid);
    }

    // ---- messages (§7.4 groupchat, §7.5 private messages, §7.8 invitations) ------------------------------

    public async ValueTask MessageAsync(StanzaContext ctx, List<Element> outbox, CancellationToken ct)
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
            if (Jid.TryParse(decline.GetAttribute("to"), out var inviter))
            {
                var forward = new Element("message", Ns.Client).SetAttribute("from", Jid.ToString()).SetAttribute("to", inviter.ToString());
                forward.AddChild("x", MucUser).AddChild("decline").SetAttribute("from", ctx.From.Bare.ToString())
                    .AddText(string.Empty).Add(new Element("reason", MucUser).AddText(decline.ChildText("reason", MucUser) ?? string.Empty));
                outbox.Add(forward);
            }

            return;
        }

        if (DataForm.Values(message.Child("x", DataForm.Namespace)) is { } form && DataForm.FormType(form) == RequestForm)
        {
            VoiceRequest(ctx, sender, form, outbox);
            return;
        }

        throw new StanzaErrorException(StanzaErrorCondition.NotAcceptable, "messages to a room are of type groupchat");
    }

    /// <summary>
    /// §8.6: a visitor asks for voice (the form goes to every moderator), or a moderator answers such a
    /// request (muc#request_allow true gives the named occupant voice).
    /// </summary>
    private void VoiceRequest(StanzaContext ctx, Occupant? sender, Dictionary<string, List<string>> form, List<Element> outbox)
    {
        if (sender is null)
        {
            throw new StanzaErrorException(StanzaErrorCondition.NotAcceptable, "only occupants may ask for voice");
        }

        string? Value(string var) => form.TryGetValue(var, out var v) && v.Count > 0 ? v[0] : null;
        if (sender.Role == Role.Moderator && Value("muc#request_allow") is { } allow)
        {
            if (DataForm.ParseBoolean(allow) == true && Value("muc#roomnick") is { } nick && _byNick.TryGetValue(nick, out var target) && target.Role == Role.Visitor)
            {
                SetRole(target, Role.Participant, sender.Nick, null, outbox);
                Service.Log.Info("{Actor} gave voice to {Nick} in {Room} on request", sender.Nick, nick, Jid);
            }

            return;
        }

        if (sender.Role != Role.Visitor || Value("muc#role") is not (null or "participant"))
        {
            throw new StanzaErrorException(StanzaErrorCondition.NotAcceptable, "only visitors ask for voice, and voice is the participant role");
        }

        foreach (var moderator in _byNick.Values.Where(o => o.Role == Role.Moderator))
        {
            foreach (var (jid, _) in moderator.Sessions)
            {
                var approval = DataForm.Create("form", RequestForm);
                approval.AddChild("title").AddText("Voice request");
                DataForm.AddField(approval, "muc#role", "list-single", "participant").SetAttribute("label", "Requested role");
                DataForm.AddField(approval, "muc#jid", "jid-single", SeesJids(moderator) ? sender.PrimaryJid.ToString() : Jid.WithResource(sender.Nick).ToString()).SetAttribute("label", "User ID");
                DataForm.AddField(approval, "muc#roomnick", "text-single", sender.Nick).SetAttribute("label", "Room nickname");
                DataForm.AddField(approval, "muc#request_allow", "boolean", "false").SetAttribute("label", "Grant voice to this person?");
                var m = new Element("message", Ns.Client).SetAttribute("from", Jid.ToString()).SetAttribute("to", jid.ToString()).SetAttribute("id", NewId());
                m.Add(approval);
                outbox.Add(m);
            }
        }

        Service.Log.Info("{Nick} asked for voice in {Room}", sender.Nick, Jid);
    }

    // ---- registration (§7.10) ----------------------------------------------------------------------------

    /// <summary>§7.10: registering reserves a nick and makes the account a member; removing it gives both up.</summary>
    private async ValueTask<Element?> RegisterAsync(StanzaContext ctx, Element query, bool set, List<Element> outbox, CancellationToken ct)
    {
        var bare = ctx.From.Bare;
        var affiliation = AffiliationOf(bare);
        _affiliations.TryGetValue(bare, out var entry);
        if (affiliation == Affiliation.Outcast)
        {
            throw new StanzaErrorException(StanzaErrorCondition.Forbidden, "you are banned from this room");
        }

        if (Config.MembersOnly && affiliation < Affiliation.Member)
        {
            throw new StanzaErrorException(StanzaErrorCondition.RegistrationRequired, "an admin makes members of this members-only room");
        }

        if (!set)
        {
            var result = new Element("query", RegisterNs);
            if (entry?.Nick is { } reserved)
            {
                result.AddChild("registered");
                result.AddChild("username").AddText(reserved);
                return result;
            }

            result.AddChild("instructions").AddText("Choose the nickname to reserve in this room.");
            var form = DataForm.Create("form", RegisterForm);
            DataForm.AddField(form, "muc#register_roomnick", "text-single").SetAttribute("label", "Nickname").AddChild("required");
            result.Add(form);
            return result;
        }

        if (query.Child("remove", RegisterNs) is not null)
        {
            _affiliations.Remove(bare);
            if (affiliation > Affiliation.Member)
            {
                _affiliations[bare] = entry! with { Nick = null };
            }
            else
            {
                foreach (var o in _byNick.Values.Where(o => o.Bare == bare).ToList())
                {
                    o.Role = RoleFor(Affiliation.None);
                    BroadcastPresence(o, null, [], outbox);
                }
            }

            await Service.SaveAsync(this, ct).ConfigureAwait(false);
            return null;
        }

        var values = DataForm.Values(query.Child("x", DataForm.Namespace));
        var nickText = values is not null && values.TryGetValue("muc#register_roomnick", out var v) && v.Count > 0 ? v[0] : query.ChildText("username", RegisterNs);
        if (nickText is null || !Jid.TryPrepareResource(nickText, out var nick))
        {
            throw new StanzaErrorException(StanzaErrorCondition.NotAcceptable, "a valid nickname is needed");
        }

        if ((_byNick.TryGetValue(nick, out var holder) && holder.Bare != bare) || _affiliations.Any(p => p.Value.Nick == nick && p.Key != bare))
        {
            throw new StanzaErrorException(StanzaErrorCondition.Conflict, "that nickname is taken in this room");
        }

        _affiliations[bare] = new AffiliationEntry(affiliation > Affiliation.Member ? affiliation : Affiliation.Member, nick, entry?.Reason);
        foreach (var o in _byNick.Values.Where(o => o.Bare == bare).ToList())
        {
            if (o.Role < Role.Participant)
            {
                o.Role = RoleFor(Affiliation.Member);
            }

            BroadcastPresence(o, null, [], outbox);
        }

        Service.Log.Info("{Jid} registered with {Room} as {Nick}", bare, Jid, nick);
        await Service.SaveAsync(this, ct).ConfigureAwait(false);
        return null;
    }

    private async ValueTask GroupchatAsync(StanzaContext ctx, Occupant? sender, List<Element> outbox, CancellationToken ct)
    {
        var message = ctx.Stanza;
        if (sender is null)
        {
            throw new StanzaErrorException(StanzaErrorCondition.NotAcceptable, "only occupants may send messages to the room");
        }

        if (sender.Role < Role.Participant)
        {
            throw new StanzaErrorException(StanzaErrorCondition.Forbidden, "you have no voice in this moderated room");
        }

        var subject = message.Child("subject", Ns.Client);
        var hasBody = message.Child("body", Ns.Client) is not null;
        if (subject is not null && !hasBody)
        {
            // §8.1: the subject, by moderators, or by participants where the room allows it.
            if (sender.Role < Role.Moderator && !Config.OccupantsChangeSubject)
            {
                throw new StanzaErrorException(StanzaErrorCondition.Forbidden, "only moderators may change the subject of this room");
            }

            Subject = subject.Text;
            SubjectBy = sender.Nick;
            await Service.SaveAsync(this, ct).ConfigureAwait(false);
        }

        var broadcast = message.Clone();
        broadcast.SetAttribute("from", Jid.WithResource(sender.Nick).ToString());
        broadcast.SetAttribute("to", null);
        // XEP-0421 §4, XEP-0359 §5: ids claiming to be the room's are the room's to add.
        broadcast.RemoveChildren("occupant-id", OccupantIdNs);
        broadcast.RemoveChildren(e => e.Is("stanza-id", StanzaIdNs) && e.GetAttribute("by") == Jid.ToString());
        broadcast.RemoveChildren("delay", Forwarded.DelayNamespace);
        broadcast.Add(new Element("occupant-id", OccupantIdNs).SetAttribute("id", sender.OccupantId));
        var now = DateTimeOffset.UtcNow;
        // A subject change is part of the room's state, not of its conversation: neither history nor archive.
        if (Config.Archived && Config.Persistent && (hasBody || MamModule.ShouldArchive(WithType(broadcast, "chat"))))
        {
            var id = Guid.CreateVersion7().ToString("N");
            broadcast.Add(new Element("stanza-id", StanzaIdNs).SetAttribute("id", id).SetAttribute("by", Jid.ToString()));
            await Service.Storage.RoomArchive.AppendAsync(Jid.Domain, Jid.Local!, new ArchivedMessage(id, broadcast.GetAttribute("from")!, false, now, broadcast.ToString()), ct).ConfigureAwait(false);
        }

        if (hasBody)
        {
            AddHistory(broadcast, now);
        }

        foreach (var occupant in _byNick.Values)
        {
            foreach (var (jid, _) in occupant.Sessions)
            {
                var copy = broadcast.Clone();
                copy.SetAttribute("to", jid.ToString());
                outbox.Add(copy);
            }
        }
    }

    private static Element WithType(Element message, string type)
    {
        var copy = message.Clone();
        copy.SetAttribute("type", type);
        return copy;
    }

    private void PrivateMessage(StanzaContext ctx, Occupant? sender, string nick, List<Element> outbox)
    {
        var message = ctx.Stanza;
        if (ctx.Type == "groupchat")
        {
            throw new StanzaErrorException(StanzaErrorCondition.BadRequest, "a message to one occupant is not a groupchat message (§7.5)");
        }

        if (sender is null)
        {
            throw new StanzaErrorException(StanzaErrorCondition.NotAcceptable, "only occupants may send private messages");
        }

        var allowed = Config.AllowPrivateMessages switch
        {
            PrivateMessages.Anyone => true,
            PrivateMessages.Participants => sender.Role >= Role.Participant,
            PrivateMessages.Moderators => sender.Role == Role.Moderator,
            _ => false,
        };
        if (!allowed)
        {
            throw new StanzaErrorException(StanzaErrorCondition.Forbidden, "private messages are not allowed here");
        }

        if (!_byNick.TryGetValue(nick, out var target))
        {
            throw new StanzaErrorException(StanzaErrorCondition.ItemNotFound, $"nobody is called {nick} in this room");
        }

        foreach (var (jid, _) in target.Sessions)
        {
            var copy = message.Clone();
            copy.SetAttribute("from", Jid.WithResource(sender.Nick).ToString());
            copy.SetAttribute("to", jid.ToString());
            copy.RemoveChildren("occupant-id", OccupantIdNs);
            copy.Add(new Element("occupant-id", OccupantIdNs).SetAttribute("id", sender.OccupantId));
            if (copy.Child("x", MucUser) is null)
            {
                copy.Add(new Element("x", MucUser));
            }

            outbox.Add(copy);
        }
    }

    /// <summary>§7.8.2 mediated invitations; in a members-only room an allowed inviter makes the invitee a member.</summary>
    private async ValueTask InviteAsync(StanzaContext ctx, Occupant? sender, Element userX, List<Element> outbox, CancellationToken ct)
    {
        var affiliation = AffiliationOf(ctx.From);
        if (sender is null && affiliation < Affiliation.Member)
        {
            throw new StanzaErrorException(StanzaErrorCondition.NotAcceptable, "only occupants may invite");
        }

        var mayAddMembers = affiliation >= Affiliation.Admin || Config.MembersInvite;
        if (Config.MembersOnly && !mayAddMembers)
        {
            throw new StanzaErrorException(StanzaErrorCondition.Forbidden, "only admins may invite to this members-only room");
        }

        var changed = false;
        foreach (var invite in userX.Elements().Where(e => e.Name == "invite"))
        {
            if (!Jid.TryParse(invite.GetAttribute("to"), out var invitee))
            {
                throw new StanzaErrorException(StanzaErrorCondition.JidMalformed, "the invitee is not a JID");
            }

            if (Config.MembersOnly && AffiliationOf(invitee) == Affiliation.None)
            {
                _affiliations[invitee.Bare] = new AffiliationEntry(Affiliation.Member, null, null);
                changed = true;
            }

            var message = new Element("message", Ns.Client).SetAttribute("from", Jid.ToString()).SetAttribute("to", invitee.ToString()).SetAttribute("id", NewId());
            var x = message.AddChild("x", MucUser);
            var inv = x.AddChild("invite").SetAttribute("from", ctx.From.Bare.ToString());
            if (invite.ChildText("reason", MucUser) is { Length: > 0 } reason)
            {
                inv.AddChild("reason").AddText(reason);
            }

            if (Config.Password is { } password)
            {
                x.AddChild("password").AddText(password);
            }

            message.AddChild("body").AddText($"{ctx.From.Bare} invites you to the room {Jid}" + (invite.ChildText("reason", MucUser) is { Length: > 0 } r ? ": " + r : string.Empty));
            outbox.Add(message);
            Service.Log.Info("{From} invited {Invitee} to {Room}", ctx.From.Bare, invitee, Jid);
        }

        if (changed)
        {
            await Service.SaveAsync(this, ct).ConfigureAwait(false);
        }
    }

    // ---- iq --------------------------------------------------------------------------------------------

    /// <summary>An iq to the room itself; returns the result payload (or null for an empty result).</summary>
    public async ValueTask<Element?> IqAsync(StanzaContext ctx, Element payload, List<Element> outbox, CancellationToken ct)
    {
        NotLockedFor(ctx.From);
        var set = ctx.Type == "set";
        switch (payload.Namespace, payload.Name, set)
        {
            case (Ns.DiscoInfo, "query", false):
                return DiscoInfo(ctx, payload.GetAttribute("node"));
            case (Ns.DiscoItems, "query", false):
                var items = new Element("query", Ns.DiscoItems);
                if (_bySession.ContainsKey(ctx.From) && payload.GetAttribute("node") is null)
                {
                    // §6.5: occupants listed to occupants only (a semi-anonymous room does not show them to strangers).
                    foreach (var o in _byNick.Values)
                    {
                        items.AddChild("item").SetAttribute("jid", Jid.WithResource(o.Nick).ToString());
                    }
                }

                return items;
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

    /// <summary>§10.1.1: until its owner configures it, a new room does not exist for anyone else.</summary>
    private void NotLockedFor(Jid requester)
    {
        if (Locked && AffiliationOf(requester) != Affiliation.Owner)
        {
            throw new StanzaErrorException(StanzaErrorCondition.ItemNotFound, $"there is no room {Jid}");
        }
    }

    private void MayReadArchive(Jid requester)
    {
        if (!Config.Archived || !Config.Persistent)
        {
            throw new StanzaErrorException(StanzaErrorCondition.ServiceUnavailable, "this room keeps no archive");
        }

        var open = !Config.MembersOnly && Config.Password is null && Config.Public;
        if (!open && !_bySession.ContainsKey(requester) && AffiliationOf(requester) < Affiliation.Member)
        {
            throw new StanzaErrorException(StanzaErrorCondition.Forbidden, "the archive of this room is for its members and occupants");
        }
    }

    /// <summary>
    /// An iq to an occupant (room/nick): XEP-0410 self-pings are answered by the room; other requests
    /// from occupants are passed to the occupant's client, and its answers passed back, under nicks.
    /// </summary>
    public void OccupantIq(StanzaContext ctx, string nick, List<Element> outbox)
    {
        var iq = ctx.Stanza;
        _bySession.TryGetValue(ctx.From, out var sender);
        var request = ctx.Type is "get" or "set";
        if (sender is null)
        {
            if (request && iq.FirstElement()?.Namespace is Ns.DiscoInfo or Ns.DiscoItems)
            {
                // §6.6: a non-occupant's disco request to an occupant is a bad request.
                throw new StanzaErrorException(StanzaErrorCondition.BadRequest, "you are not in this room");
            }

            if (request)
            {
                // §7.5 and XEP-0410 §3.2: anything else from a non-occupant is not acceptable.
                throw new StanzaErrorException(StanzaErrorCondition.NotAcceptable, "you are not in this room");
            }

            return;
        }

        if (request && sender.Nick == nick && iq.FirstElement()?.Is("ping", Ns.Ping) == true)
        {
            // XEP-0410 §3.3: the room answers for the occupant itself; it is joined.
            outbox.Add(Stanza.IqResult(iq));
            return;
        }

        if (!_byNick.TryGetValue(nick, out var target))
        {
            if (request)
            {
                throw new StanzaErrorException(StanzaErrorCondition.ItemNotFound, $"nobody is called {nick} in this room");
            }

            return;
        }

        var forward = iq.Clone();
        forward.SetAttribute("from", Jid.WithResource(sender.Nick).ToString());
        forward.SetAttribute("to", target.PrimaryJid.ToString());
        outbox.Add(forward);
    }

    private Element DiscoInfo(StanzaContext ctx, string? node)
    {
        var query = new Element("query", Ns.DiscoInfo).SetAttribute("node", node);
        if (node == "x-roomuser-item")
        {
            // §7.12: the nick the requester has reserved here.
            if (_affiliations.TryGetValue(ctx.From.Bare, out var a) && a.Nick is { } reserved)
            {
                query.AddChild("identity").SetAttribute("category", "conference").SetAttribute("type", "text").SetAttribute("name", reserved);
            }

            return query;
        }

        if (node is not null)
        {
            throw new StanzaErrorException(StanzaErrorCondition.ItemNotFound);
        }

        query.AddChild("identity").SetAttribute("category", "conference").SetAttribute("type", "text")
            .SetAttribute("name", Config.Name.Length > 0 ? Config.Name : Jid.Local);
        var features = new List<string>
        {
            Muc, Ns.DiscoInfo, Ns.DiscoItems, StableId, SelfPingOptimization, OccupantIdNs, StanzaIdNs, RegisterNs, RequestForm, VCardNs,
            Config.Persistent ? "muc_persistent" : "muc_temporary",
            Config.Public ? "muc_public" : "muc_hidden",
            Config.MembersOnly ? "muc_membersonly" : "muc_open",
            Config.Moderated ? "muc_moderated" : "muc_unmoderated",
            Config.Password is null ? "muc_unsecured" : "muc_passwordprotected",
            Config.NonAnonymous ? "muc_nonanonymous" : "muc_semianonymous",
        };
        if (Config.Archived && Config.Persistent)
        {
            features.Add(ArchiveQueries.Namespace);
        }

        foreach (var f in features.Order(StringComparer.Ordinal))
        {
            query.AddChild("feature").SetAttribute("var", f);
        }

        // §15.5.4 muc#roominfo.
        var info = DataForm.Create("result", "http://jabber.org/protocol/muc#roominfo");
        DataForm.AddField(info, "muc#roominfo_description", null, Config.Description).SetAttribute("label", "Description");
        DataForm.AddField(info, "muc#roominfo_occupants", null, _byNick.Count.ToString(CultureInfo.InvariantCulture)).SetAttribute("label", "Number of occupants");
        DataForm.AddField(info, "muc#roominfo_subject", null, Subject ?? string.Empty).SetAttribute("label", "Subject");
        DataForm.AddField(info, "muc#roominfo_subjectmod", "boolean", Config.OccupantsChangeSubject ? "1" : "0");
        DataForm.AddField(info, "muc#roomconfig_roomname", null, Config.Name);
        DataForm.AddField(info, "muc#roomconfig_changesubject", "boolean", Config.OccupantsChangeSubject ? "1" : "0");
        if (Config.Language.Length > 0)
        {
            DataForm.AddField(info, "muc#roominfo_lang", null, Config.Language);
        }

        if (AvatarHashes.Count > 0)
        {
            // XEP-0486 §3.3: present only while the room has an avatar.
            DataForm.AddField(info, "muc#roominfo_avatarhash", "text-multi", [.. AvatarHashes]).SetAttribute("label", "Avatar hash");
        }

        query.Add(info);
        return query;
    }

    // ---- administration (§8 moderators, §9 admins) -------------------------------------------------------

    private async ValueTask<Element?> AdminAsync(StanzaContext ctx, Element query, bool set, List<Element> outbox, CancellationToken ct)
    {
        var actorAffiliation = AffiliationOf(ctx.From);
        _bySession.TryGetValue(ctx.From, out var actor);
        var actorRole = actor?.Role ?? Role.None;
        var items = query.Elements().Where(e => e.Is("item", MucAdmin)).ToList();
        if (items.Count == 0)
        {
            throw new StanzaErrorException(StanzaErrorCondition.BadRequest, "an item is needed");
        }

        if (!set)
        {
            return AdminList(items[0], actorAffiliation, actorRole, occupant: actor is not null);
        }

        // Every item is checked before any is applied: the request succeeds or fails whole (§9.2).
        var changes = new List<Action>();
        var save = false;
        foreach (var item in items)
        {
            var reason = item.ChildText("reason", MucAdmin);
            if (item.GetAttribute("role") is { } roleText && item.GetAttribute("affiliation") is null)
            {
                var role = ParseRole(roleText) ?? throw new StanzaErrorException(StanzaErrorCondition.BadRequest, $"unknown role '{roleText}'");
                var nick = item.GetAttribute("nick") ?? throw new StanzaErrorException(StanzaErrorCondition.BadRequest, "a role is set by nick");
                if (!_byNick.TryGetValue(nick, out var target))
                {
                    throw new StanzaErrorException(StanzaErrorCondition.ItemNotFound, $"nobody is called {nick} in this room");
                }

                CheckRoleChange(actorAffiliation, actorRole, target, role);
                changes.Add(() => SetRole(target, role, actor?.Nick, reason, outbox));
            }
            else if (item.GetAttribute("affiliation") is { } affText)
            {
                var affiliation = ParseAffiliation(affText) ?? throw new StanzaErrorException(StanzaErrorCondition.BadRequest, $"unknown affiliation '{affText}'");
                Jid? who = null;
                if (item.GetAttribute("jid") is { } jidText)
                {
                    who = Jid.TryParse(jidText, out var j) ? j.Bare : throw new StanzaErrorException(StanzaErrorCondition.JidMalformed, "the item's jid is not a JID");
                }
                else if (item.GetAttribute("nick") is { } nick)
                {
                    who = _byNick.TryGetValue(nick, out var o) ? o.Bare : throw new StanzaErrorException(StanzaErrorCondition.ItemNotFound, $"nobody is called {nick} in this room");
                }

                if (who is null)
                {
                    throw new StanzaErrorException(StanzaErrorCondition.BadRequest, "an affiliation is set for a jid or a nick");
                }

                CheckAffiliationChange(ctx.From.Bare, actorAffiliation, who, affiliation, items);
                var reservedNick = item.GetAttribute("nick") is { } n && item.GetAttribute("jid") is not null && Jid.TryPrepareResource(n, out var prepared) ? prepared : null;
                var target = who;
                changes.Add(() => SetAffiliation(target, affiliation, reservedNick, actor?.Nick, reason, outbox));
                save = true;
            }
            else
            {
                throw new StanzaErrorException(StanzaErrorCondition.BadRequest, "an item sets a role or an affiliation");
            }
        }

        foreach (var change in changes)
        {
            change();
        }

        if (save)
        {
            await Service.SaveAsync(this, ct).ConfigureAwait(false);
        }

        return null;
    }

    private Element AdminList(Element item, Affiliation actorAffiliation, Role actorRole, bool occupant)
    {
        var result = new Element("query", MucAdmin);
        if (item.GetAttribute("affiliation") is { } affText)
        {
            var affiliation = ParseAffiliation(affText) ?? throw new StanzaErrorException(StanzaErrorCondition.BadRequest, $"unknown affiliation '{affText}'");
            if (!MayReadList(affiliation, actorAffiliation, occupant))
            {
                throw new StanzaErrorException(StanzaErrorCondition.Forbidden, "you may not read that list");
            }

            foreach (var (jid, a) in _affiliations.Where(p => p.Value.Affiliation == affiliation).OrderBy(p => p.Key.ToString(), StringComparer.Ordinal))
            {
                var e = result.AddChild("item").SetAttribute("affiliation", Name(a.Affiliation)).SetAttribute("jid", jid.ToString()).SetAttribute("nick", a.Nick);
                if (a.Reason is not null)
                {
                    e.AddChild("reason").AddText(a.Reason);
                }
            }

            return result;
        }

        if (item.GetAttribute("role") is { } roleText)
        {
            var role = ParseRole(roleText) ?? throw new StanzaErrorException(StanzaErrorCondition.BadRequest, $"unknown role '{roleText}'");
            if (actorRole < Role.Moderator)
            {
                throw new StanzaErrorException(StanzaErrorCondition.Forbidden, "only moderators may list roles");
            }

            foreach (var o in _byNick.Values.Where(o => o.Role == role).OrderBy(o => o.Nick, StringComparer.Ordinal))
            {
                result.AddChild("item").SetAttribute("role", Name(o.Role)).SetAttribute("affiliation", Name(AffiliationOf(o.Bare)))
                    .SetAttribute("nick", o.Nick).SetAttribute("jid", o.PrimaryJid.ToString());
            }

            return result;
        }

        throw new StanzaErrorException(StanzaErrorCondition.BadRequest, "ask for an affiliation or a role");
    }

    private void SetRole(Occupant target, Role role, string? actorNick, string? reason, List<Element> outbox)
    {
        if (role == Role.None)
        {
            // §8.2 kick: status 307, the actor and the reason in the item.
            Remove(target, null, outbox, [307], item => Decorate(item, actorNick, reason));
            Service.Log.Info("{Nick} was kicked from {Room} by {Actor}", target.Nick, Jid, actorNick);
            return;
        }

        target.Role = role;
        BroadcastPresence(target, null, [], outbox, decorate: item => Decorate(item, actorNick, reason));
    }

    private void SetAffiliation(Jid target, Affiliation affiliation, string? nick, string? actorNick, string? reason, List<Element> outbox)
    {
        if (affiliation == Affiliation.None)
        {
            _affiliations.Remove(target);
        }
        else
        {
            _affiliations[target] = new AffiliationEntry(affiliation, nick, reason);
        }

        Service.Log.Info("{Target} is now {Affiliation} of {Room} (by {Actor})", target, Name(affiliation), Jid, actorNick);
        foreach (var occupant in _byNick.Values.Where(o => o.Bare == target).ToList())
        {
            if (affiliation == Affiliation.Outcast)
            {
                // §9.1 ban: status 301.
                Remove(occupant, null, outbox, [301], item => Decorate(item, actorNick, reason));
            }
            else if (affiliation == Affiliation.None && Config.MembersOnly)
            {
                // §9.4: no longer a member of a members-only room: status 321.
                Remove(occupant, null, outbox, [321], item => Decorate(item, actorNick, reason));
            }
            else
            {
                occupant.Role = RoleFor(affiliation);
                BroadcastPresence(occupant, null, [], outbox, decorate: item => Decorate(item, actorNick, reason));
            }
        }
    }

    private static void Decorate(Element item, string? actorNick, string? reason)
    {
        if (actorNick is not null)
        {
            item.AddChild("actor").SetAttribute("nick", actorNick);
        }

        if (reason is { Length: > 0 })
        {
            item.AddChild("reason").AddText(reason);
        }
    }

    // ---- ownership (§10) -------------------------------------------------------------------------------

    private async ValueTask<Element?> OwnerAsync(StanzaContext ctx, Element query, bool set, List<Element> outbox, CancellationToken ct)
    {
        if (AffiliationOf(ctx.From) != Affiliation.Owner)
        {
            throw new StanzaErrorException(StanzaErrorCondition.Forbidden, "only owners may configure the room");
        }

        if (!set)
        {
            return new Element("query", MucOwner).Add(Config.ToForm(AffiliatedJids(Affiliation.Owner), AffiliatedJids(Affiliation.Admin), Service.Settings.MaxHistory));
        }

        if (query.Child("destroy", MucOwner) is { } destroy)
        {
            await DestroyAsync(destroy, outbox, ct).ConfigureAwait(false);
            return null;
        }

        var form = query.Child("x", DataForm.Namespace) ?? throw new StanzaErrorException(StanzaErrorCondition.BadRequest, "a configuration form or destroy is needed");
        if (form.GetAttribute("type") == "cancel")
        {
            if (Locked)
            {
                // §10.1.3: the owner gave up creating the room.
                await DestroyAsync(null, outbox, ct).ConfigureAwait(false);
            }

            return null;
        }

        if (form.GetAttribute("type") != "submit")
        {
            throw new StanzaErrorException(StanzaErrorCondition.BadRequest, "the form must be submitted or cancelled");
        }

        var values = DataForm.Values(form)!;
        var (config, owners, admins) = Config.Apply(values, Service.Settings.MaxHistory);
        if (owners is not null && owners.Count == 0)
        {
            // §10.2, §10.6: the last owner may not give up ownership; the service returns conflict.
            throw new StanzaErrorException(StanzaErrorCondition.Conflict, "a room keeps at least one owner");
        }

        var before = Config;
        var wasLocked = Locked;
        Config = config;
        Locked = false;
        ReplaceList(Affiliation.Owner, owners, outbox);
        ReplaceList(Affiliation.Admin, admins, outbox);
        while (_history.Count > Math.Max(Config.HistoryLength, 0))
        {
            _history.RemoveFirst();
        }

        if (Config.MembersOnly && !before.MembersOnly)
        {
            // §10.2: non-members leave a room that becomes members-only, with status 322.
            foreach (var o in _byNick.Values.Where(o => AffiliationOf(o.Bare) < Affiliation.Member).ToList())
            {
                Remove(o, null, outbox, [322], item: null);
            }
        }

        if (Config.Moderated != before.Moderated)
        {
            foreach (var o in _byNick.Values.Where(o => AffiliationOf(o.Bare) == Affiliation.None && o.Role != Role.Moderator).ToList())
            {
                var role = Config.Moderated ? Role.Visitor : Role.Participant;
                if (o.Role != role)
                {
                    o.Role = role;
                    BroadcastPresence(o, null, [], outbox);
                }
            }
        }

        if (!wasLocked)
        {
            // §10.2.1: occupants hear of the change (172/173 when real JIDs become visible or hidden, 104 otherwise).
            var codes = new List<int> { 104 };
            if (Config.NonAnonymous != before.NonAnonymous)
            {
                codes.Add(Config.NonAnonymous ? 172 : 173);
            }

            if (Config.Archived != before.Archived)
            {
                codes.Add(Config.Archived ? 170 : 171);
            }

            BroadcastStatus(codes, outbox);
        }

        Service.Log.Info("Room {Room} configured by {Owner}: persistent={Persistent} public={Public} members-only={MembersOnly} moderated={Moderated} password={Password} whois={Whois}",
            Jid, ctx.From.Bare, Config.Persistent, Config.Public, Config.MembersOnly, Config.Moderated, Config.Password is not null, Config.NonAnonymous ? "anyone" : "moderators");
        if (Config.Persistent)
        {
            await Service.SaveAsync(this, ct).ConfigureAwait(false);
        }
        else if (before.Persistent)
        {
            // No longer kept: neither is its archive (a later room of the same name must not inherit it).
            await Service.UnsaveAsync(this, ct).ConfigureAwait(false);
            await Service.Storage.RoomArchive.ClearAsync(Jid.Domain, Jid.Local!, ct).ConfigureAwait(false);
            if (_byNick.Count == 0)
            {
                await EndAsync(ct).ConfigureAwait(false);
            }
        }

        return null;
    }

    private IEnumerable<string> AffiliatedJids(Affiliation affiliation) =>
        _affiliations.Where(p => p.Value.Affiliation == affiliation).Select(p => p.Key.ToString()).Order(StringComparer.Ordinal);

    /// <summary>The owner or admin list from the configuration form: those listed gain it, those left out lose it.</summary>
    private void ReplaceList(Affiliation affiliation, List<Jid>? jids, List<Element> outbox)
    {
        if (jids is null)
        {
            return;
        }

        foreach (var jid in _affiliations.Where(p => p.Value.Affiliation == affiliation && !jids.Contains(p.Key)).Select(p => p.Key).ToList())
        {
            SetAffiliation(jid, Affiliation.None, null, null, null, outbox);
        }

        foreach (var jid in jids.Where(j => AffiliationOf(j) != affiliation))
        {
            SetAffiliation(jid, affiliation, null, null, null, outbox);
        }
    }

    /// <summary>§10.9: everyone leaves with the destroy element (an alternative venue and a reason), and the room is gone.</summary>
    public async ValueTask DestroyAsync(Element? destroy, List<Element> outbox, CancellationToken ct)
    {
        foreach (var o in _byNick.Values)
        {
            foreach (var (jid, presence) in o.Sessions)
            {
                var p = new Element("presence", Ns.Client).SetAttribute("from", Jid.WithResource(o.Nick).ToString())
                    .SetAttribute("to", jid.ToString()).SetAttribute("type", "unavailable");
                var x = p.AddChild("x", MucUser);
                x.AddChild("item").SetAttribute("affiliation", "none").SetAttribute("role", "none");
                var d = x.AddChild("destroy");
                if (destroy?.GetAttribute("jid") is { } alternative && Jid.TryParse(alternative, out var venue))
                {
                    d.SetAttribute("jid", venue.ToString());
                }

                if (destroy?.ChildText("reason", MucOwner) is { Length: > 0 } reason)
                {
                    d.AddChild("reason").AddText(reason);
                }

                if (destroy?.ChildText("password", MucOwner) is { Length: > 0 } venuePassword)
                {
                    // §10.9: the alternate venue's password, as the owner gave it, goes to each occupant.
                    d.AddChild("password").AddText(venuePassword);
                }

                x.AddChild("status").SetAttribute("code", "110");
                outbox.Add(p);
            }
        }

        _byNick.Clear();
        _bySession.Clear();
        await Service.UnsaveAsync(this, ct).ConfigureAwait(false);
        await Service.Storage.RoomArchive.ClearAsync(Jid.Domain, Jid.Local!, ct).ConfigureAwait(false);
        await EndAsync(ct).ConfigureAwait(false);
        Service.Log.Info("Room {Room} destroyed", Jid);
    }

    // ---- building presence -----------------------------------------------------------------------------

    /// <summary>The occupant's presence to every session in the room (§7.2.3), with 110 to its own sessions.</summary>
    private void BroadcastPresence(Occupant occupant, string? type, int[] codes, List<Element> outbox, Action<Element>? decorate = null, Jid? except = null)
    {
        foreach (var receiver in _byNick.Values)
        {
            foreach (var (jid, _) in receiver.Sessions)
            {
                if (jid == except)
                {
                    continue;
                }

                var self = receiver == occupant;
                outbox.Add(PresenceOf(occupant, occupant.Presence, type, jid, SeesJids(receiver), self ? [110, .. codes] : codes, decorate));
            }
        }
    }

    private bool SeesJids(Occupant receiver) => Config.NonAnonymous || receiver.Role == Role.Moderator;

    private Element PresenceOf(Occupant occupant, Element basis, string? type, Jid to, bool withJid, IEnumerable<int> codes, Action<Element>? decorate = null)
    {
        var p = basis.Clone();
        p.SetAttribute("from", Jid.WithResource(occupant.Nick).ToString());
        p.SetAttribute("to", to.ToString());
        p.SetAttribute("type", type);
        if (type == "unavailable")
        {
            p.RemoveChildren(e => e.Namespace == Ns.Client && e.Name is "show" or "priority" or "status");
        }

        var x = p.AddChild("x", MucUser);
        var item = x.AddChild("item")
            .SetAttribute("affiliation", Name(AffiliationOf(occupant.Bare)))
            .SetAttribute("role", Name(type == "unavailable" ? Role.None : occupant.Role));
        if (withJid)
        {
            item.SetAttribute("jid", occupant.PrimaryJid.ToString());
        }

        decorate?.Invoke(item);
        foreach (var code in codes.Distinct())
        {
            x.AddChild("status").SetAttribute("code", code.ToString(CultureInfo.InvariantCulture));
        }

        p.Add(new Element("occupant-id", OccupantIdNs).SetAttribute("id", occupant.OccupantId));
        return p;
    }

    /// <summary>The client's presence without what only the room may say (muc, muc#user, occupant-id).</summary>
    private static Element Sanitise(Element presence)
    {
        var p = presence.Clone();
        p.RemoveChildren(e => e.Namespace is Muc or MucUser or OccupantIdNs);
        p.SetAttribute("id", null);
        return p;
    }

    /// <summary>Errors that mean the occupant's client is not there any more (Prosody's list, XEP-0045 §7.2 "ghosts").</summary>
    private static bool IsGhostError(Element stanza)
    {
        var error = stanza.Child("error", stanza.Namespace);
        return error?.Elements().Any(e => e.Namespace == Ns.Stanzas && e.Name is "gone" or "item-not-found" or "recipient-unavailable" or "redirect"
            or "remote-server-not-found" or "remote-server-timeout" or "service-unavailable") == true;
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
