using Xmpp.Core.Addressing;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;

namespace Xmpp.Server.Modules.Muc;

/// <summary>Who may read which list and change whose role or affiliation (XEP-0045 §8 moderators, §9 admins, §10 owners).</summary>
internal sealed partial class MucRoom
{
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
