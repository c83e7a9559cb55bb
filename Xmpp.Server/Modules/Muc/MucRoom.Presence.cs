using Xmpp.Core;
using Xmpp.Core.Xml;
using Xmpp.Server.Routing;

namespace Xmpp.Server.Modules.Muc;

/// <summary>The self-presence that answers an occupant's own presence (XEP-0045 §7.2.3, §7.6, §7.14).</summary>
internal sealed partial class MucRoom
{
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
