using Xmpp.Core.Addressing;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;
using Xmpp.Server.Routing;

namespace Xmpp.Server.Modules.Muc;

/// <summary>
/// XEP-0045 §8 moderator use cases (§8.2 kicking, §8.3–§8.5 voice and the voice list) and §9 admin use cases
/// (§9.1 bans, §9.2–§9.5 members and the lists, §9.6–§9.7 moderators) through muc#admin; and who may read which
/// list and change whose role or affiliation (§8, §9, and the owners' lists of §10.3–§10.8).
/// </summary>
internal sealed partial class MucRoom
{
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

    /// <summary>
    /// §9.5: admins and owners read the member and ban lists (members too, in a members-only room).
    /// §10.5, §10.8: in a semi-anonymous room only owners read the owner and admin lists (anyone else gets
    /// forbidden); in a non-anonymous room, where every occupant sees real JIDs anyway, admins, members and
    /// occupants may read them too.
    /// </summary>
    private bool MayReadList(Affiliation list, Affiliation actorAffiliation, bool occupant) => list switch
    {
        Affiliation.Owner or Affiliation.Admin => actorAffiliation == Affiliation.Owner ||
            (Config.NonAnonymous && (occupant || actorAffiliation >= Affiliation.Member)),
        _ when actorAffiliation >= Affiliation.Admin => true,
        Affiliation.Member => Config.MembersOnly && actorAffiliation >= Affiliation.Member,
        _ => false,
    };

    /// <summary>§8.2–§8.5 kicks and voice, §9.6–§9.7 moderators: who may change whose role.</summary>
    private void CheckRoleChange(Affiliation actorAffiliation, Role actorRole, Occupant target, Role role)
    {
        var targetAffiliation = AffiliationOf(target.Bare);
        if (actorRole < Role.Moderator)
        {
            throw new StanzaErrorException(StanzaErrorCondition.Forbidden, "only moderators may change roles");
        }

        if (role == Role.Moderator || target.Role == Role.Moderator)
        {
            // Granting or revoking moderator is for admins and owners, and never against an admin or owner.
            if (actorAffiliation < Affiliation.Admin)
            {
                throw new StanzaErrorException(StanzaErrorCondition.NotAllowed, "only admins and owners may grant or revoke moderation");
            }
        }

        if (role != Role.Moderator && targetAffiliation >= Affiliation.Admin)
        {
            throw new StanzaErrorException(StanzaErrorCondition.NotAllowed, "an admin or owner keeps moderation and cannot be kicked");
        }
    }

    /// <summary>§9, §10: admins manage members and bans below them; owners manage everything, but the last owner stays.</summary>
    private void CheckAffiliationChange(Jid actor, Affiliation actorAffiliation, Jid target, Affiliation affiliation, List<Element> items)
    {
        var current = AffiliationOf(target);
        if (actorAffiliation < Affiliation.Admin)
        {
            throw new StanzaErrorException(StanzaErrorCondition.Forbidden, "only admins and owners may change affiliations");
        }

        if (affiliation == Affiliation.Outcast && target == actor)
        {
            // §9.1: an admin or owner who tries to ban itself gets conflict.
            throw new StanzaErrorException(StanzaErrorCondition.Conflict, "you may not ban yourself");
        }

        if (actorAffiliation == Affiliation.Admin && affiliation >= Affiliation.Admin)
        {
            // §10.5, §10.8: only owners modify the owner list and the admin list; anyone else gets forbidden.
            throw new StanzaErrorException(StanzaErrorCondition.Forbidden, "only owners may grant admin or owner affiliations");
        }

        if (actorAffiliation == Affiliation.Admin && current >= Affiliation.Admin)
        {
            // §9.1, §9.4: an admin may not ban or demote an admin or owner.
            throw new StanzaErrorException(StanzaErrorCondition.NotAllowed, "admins may not change an admin's or owner's affiliation");
        }

        if (current == Affiliation.Owner && affiliation != Affiliation.Owner &&
            _affiliations.Count(p => p.Value.Affiliation == Affiliation.Owner) <= 1 &&
            !items.Any(i => i.GetAttribute("affiliation") == "owner" && Jid.TryParse(i.GetAttribute("jid"), out var j) && j.Bare != target))
        {
            throw new StanzaErrorException(StanzaErrorCondition.Conflict, "a room keeps at least one owner");
        }
    }
}
