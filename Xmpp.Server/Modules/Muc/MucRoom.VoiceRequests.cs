using Xmpp.Core;
using Xmpp.Core.Addressing;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;
using Xmpp.Server.Routing;

namespace Xmpp.Server.Modules.Muc;

/// <summary>XEP-0045 §8.6 requesting voice: a visitor's request to the moderators, and their approval.</summary>
internal sealed partial class MucRoom
{
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
}
