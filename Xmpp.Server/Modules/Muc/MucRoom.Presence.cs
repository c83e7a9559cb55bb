using System.Globalization;
using Xmpp.Core;
using Xmpp.Core.Addressing;
using Xmpp.Core.Xml;
using Xmpp.Server.Routing;

namespace Xmpp.Server.Modules.Muc;

/// <summary>
/// The presence the room sends about an occupant (XEP-0045 §7.2.3: the muc#user item, real JIDs where the room
/// shows them, status codes, the XEP-0421 occupant id), and the self-presence that answers an occupant's own
/// presence (§7.2.3, §7.6, §7.14).
/// </summary>
internal sealed partial class MucRoom
{
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

    /// <summary>
    /// The room advertises muc#stable_id, so the self-presence that answers a client's presence (its entry,
    /// its new nick, its leaving) carries the 'id' the client gave it (XEP-0045 §7.2.3 and §7.14; clients
    /// such as Smack match their leave on it). Only the session that sent the presence gets it, and only on
    /// the self-presence of the same kind as its request: after a nick change, the available presence from
    /// the new nick, not the 303 unavailable from the old one.
    /// </summary>
    private static void ReflectPresenceId(StanzaContext ctx, List<Element> outbox, int start)
    {
        if (ctx.Stanza.GetAttribute("id") is not { Length: > 0 } id || ctx.Type is not (null or "unavailable"))
        {
            return;
        }

        var to = ctx.From.ToString();
        for (var i = start; i < outbox.Count; i++)
        {
            var p = outbox[i];
            if (p.Name == "presence" && p.GetAttribute("to") == to && p.GetAttribute("type") == ctx.Type && IsSelfPresence(p))
            {
                p.SetAttribute("id", id);
            }
        }
    }

    private static bool IsSelfPresence(Element presence) =>
        presence.Child("x", MucUser)?.Elements().Any(e => e.Name == "status" && e.GetAttribute("code") == "110") == true;
}
