using Xmpp.Core;
using Xmpp.Core.Addressing;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;
using Xmpp.Server.Modules.Mam;
using Xmpp.Server.Routing;
using Xmpp.Server.Storage;

namespace Xmpp.Server.Modules.Muc;

/// <summary>
/// XEP-0045 §7.4 messages to all occupants (with §8.1 the subject), §7.5 private messages, §7.8 invitations
/// (§7.8.2 mediated invitations and declines).
/// </summary>
internal sealed partial class MucRoom
{
    private async ValueTask GroupchatAsync(StanzaContext ctx, Occupant? sender, Outbox outbox, CancellationToken ct)
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
            var stanzaId = new Element("stanza-id", StanzaIdNs).SetAttribute("id", id).SetAttribute("by", Jid.ToString());
            broadcast.Add(stanzaId);
            var archived = new ArchivedMessage(id, broadcast.GetAttribute("from")!, false, now, broadcast.ToString()) { OriginId = ArchivedMessage.OriginIdOf(broadcast) };
            // The same message sent again by its occupant (same origin id, XEP-0359) is archived once, and goes out
            // with the stanza id of its first copy, so that clients see one message.
            if (await Service.Storage.RoomArchive.AppendAsync(Jid.Domain, Jid.Local!, archived, ct).ConfigureAwait(false) is { } stored && stored != id)
            {
                stanzaId.SetAttribute("id", stored);
            }
        }

        if (hasBody)
        {
            AddHistory(broadcast, now);
        }

        // From here the message is what the room said, kept in the history as it is: every session gets a
        // shallow copy with its own 'to' (the children are shared), with the addresses parsed already.
        broadcast.Freeze();
        var from = Jid.WithResource(sender.Nick);
        foreach (var occupant in _byNick.Values)
        {
            foreach (var (jid, _) in occupant.Sessions)
            {
                outbox.Add(broadcast.Copy().SetAttribute("to", jid.ToString()), from, jid);
            }
        }
    }

    private static Element WithType(Element message, string type)
    {
        var copy = message.Clone();
        copy.SetAttribute("type", type);
        return copy;
    }

    private void PrivateMessage(StanzaContext ctx, Occupant? sender, string nick, Outbox outbox)
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
    private async ValueTask InviteAsync(StanzaContext ctx, Occupant? sender, Element userX, Outbox outbox, CancellationToken ct)
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

    /// <summary>§7.8.2: an invitee's decline goes to the inviter, from the room.</summary>
    private void Decline(StanzaContext ctx, Element decline, Outbox outbox)
    {
        if (Jid.TryParse(decline.GetAttribute("to"), out var inviter))
        {
            var forward = new Element("message", Ns.Client).SetAttribute("from", Jid.ToString()).SetAttribute("to", inviter.ToString());
            forward.AddChild("x", MucUser).AddChild("decline").SetAttribute("from", ctx.From.Bare.ToString())
                .AddText(string.Empty).Add(new Element("reason", MucUser).AddText(decline.ChildText("reason", MucUser) ?? string.Empty));
            outbox.Add(forward);
        }
    }
}
