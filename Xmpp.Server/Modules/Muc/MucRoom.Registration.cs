using Xmpp.Core.Addressing;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;
using Xmpp.Server.Routing;

namespace Xmpp.Server.Modules.Muc;

/// <summary>XEP-0045 §7.10 registering with a room: a reserved nick and membership.</summary>
internal sealed partial class MucRoom
{
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
}
