using Xmpp.Core;
using Xmpp.Core.Addressing;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;
using Xmpp.Server.Routing;

namespace Xmpp.Server.Modules.Muc;

/// <summary>
/// XEP-0045 §7.1–§7.2 entering a room (the checks of §7.2.4–§7.2.10, what a newcomer is sent), §7.6 changing
/// the nick, §7.14 leaving, and occupants whose client is gone (§7.2 "ghosts"); a temporary room ends with its
/// last occupant (§10.1.1).
/// </summary>
internal sealed partial class MucRoom
{
    private async ValueTask HandlePresenceAsync(StanzaContext ctx, Outbox outbox, CancellationToken ct)
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

    private async ValueTask JoinAsync(Jid from, string nick, Element basis, Element? mucX, Outbox outbox, CancellationToken ct)
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
    private void SendEntry(Occupant occupant, Jid session, Element? mucX, bool created, Outbox outbox)
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

    private void ChangeNick(Occupant occupant, Jid from, string nick, Element basis, Outbox outbox)
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
    /// <param name="dead">Sessions that are gone (cluster mode: died with their node): they are sent nothing, since a stanza to a session whose node is gone waits for its account's home to come back.</param>
    private void Remove(Occupant occupant, Jid? session, Outbox outbox, int[] codes, Action<Element>? item, string? reason = null, IReadOnlySet<Jid>? dead = null)
    {
        if (session is not null && occupant.Sessions.Count > 1)
        {
            // One of several sessions under the nick leaves: only it hears of it.
            var i = occupant.IndexOf(session);
            var leaving = PresenceOf(occupant, occupant.Sessions[i].Presence, "unavailable", session, SeesJids(occupant), [110, .. codes], item);
            occupant.Sessions.RemoveAt(i);
            _bySession.Remove(session);
            if (dead?.Contains(session) != true)
            {
                outbox.Add(leaving);
            }

            return;
        }

        var role = occupant.Role;
        occupant.Role = Role.None;
        var status = reason is null ? null : new Element("status", Ns.Client).AddText(reason);
        foreach (var receiver in _byNick.Values)
        {
            foreach (var (jid, _) in receiver.Sessions)
            {
                if (dead?.Contains(jid) == true)
                {
                    continue;
                }

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

    /// <summary>Cluster mode: these sessions died with their node; each leaves with 333, as a ghost does (under <see cref="MucRoom.Lock"/>).</summary>
    public async ValueTask RemoveLostAsync(IReadOnlySet<Jid> sessions, Outbox outbox, CancellationToken ct)
    {
        var lost = _bySession.Keys.Where(sessions.Contains).ToList();
        if (lost.Count == 0 || Gone)
        {
            return;
        }

        foreach (var session in lost)
        {
            if (_bySession.TryGetValue(session, out var occupant))
            {
                // The other lost sessions, still occupants until their turn, hear nothing either.
                Remove(occupant, session, outbox, [333], item: null, dead: sessions);
            }
        }

        await AfterLeaveAsync(ct).ConfigureAwait(false);
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
}
