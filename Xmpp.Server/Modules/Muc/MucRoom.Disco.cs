using System.Globalization;
using Xmpp.Core;
using Xmpp.Core.Addressing;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;
using Xmpp.Server.Modules.Mam;
using Xmpp.Server.Routing;

namespace Xmpp.Server.Modules.Muc;

/// <summary>
/// XEP-0045 §6 discovery: §6.4 the room's info (with §15.5.4 muc#roominfo and §7.12 the reserved nick), §6.5
/// its items; §6.6 and §7.5 iqs to an occupant, and XEP-0410 self-pings.
/// </summary>
internal sealed partial class MucRoom
{
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

    /// <summary>§6.5: occupants listed to occupants only (a semi-anonymous room does not show them to strangers).</summary>
    private Element DiscoItems(StanzaContext ctx, string? node)
    {
        var items = new Element("query", Ns.DiscoItems);
        if (_bySession.ContainsKey(ctx.From) && node is null)
        {
            foreach (var o in _byNick.Values)
            {
                items.AddChild("item").SetAttribute("jid", Jid.WithResource(o.Nick).ToString());
            }
        }

        return items;
    }
}
