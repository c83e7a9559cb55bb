using Xmpp.Core;
using Xmpp.Core.Addressing;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;
using Xmpp.Server.Routing;
using Xmpp.Server.Storage;

namespace Xmpp.Server.Modules.Roster;

/// <summary>
/// Roster management (RFC 6121 §2): get, set (add/update) and remove, stored durably, with roster pushes
/// to the account's resources. Subscription states change only through presence subscription
/// handling, which builds on this (the IM core work); items added here start at subscription 'none'.
/// </summary>
[Specification("RFC 6121", "2")]
public sealed class RosterModule : IXmppModule
{
    private const int MaxNameLength = 1024;

    public string Name => "roster";

    public void Register(IModuleContext context)
    {
        var store = context.Storage.Roster;
        context.HandleIq("get", Ns.Roster, "query", IqTarget.Bare, async (ctx, _, ct) =>
        {
            var owner = RequireOwner(ctx);
            var query = new Element("query", Ns.Roster);
            foreach (var item in await store.GetAsync(owner.Domain, owner.Local!, ct).ConfigureAwait(false))
            {
                query.Add(ToElement(item));
            }

            return query;
        });

        context.HandleIq("set", Ns.Roster, "query", IqTarget.Bare, async (ctx, payload, ct) =>
        {
            var owner = RequireOwner(ctx);

            // RFC 6121 §2.3.3: exactly one item.
            var items = payload.Elements().ToList();
            if (items.Count != 1 || !items[0].Is("item", Ns.Roster))
            {
                throw new StanzaErrorException(StanzaErrorCondition.BadRequest, "a roster set carries exactly one item");
            }

            var item = items[0];
            if (!Jid.TryParse(item.GetAttribute("jid"), out var contact) || contact.Resource is not null)
            {
                throw new StanzaErrorException(StanzaErrorCondition.BadRequest, "item jid must be a bare JID");
            }

            if (contact == owner.Bare)
            {
                throw new StanzaErrorException(StanzaErrorCondition.NotAllowed, "the account itself cannot be a roster item");
            }

            if (item.GetAttribute("subscription") == "remove")
            {
                if (!await store.RemoveAsync(owner.Domain, owner.Local!, contact.ToString(), ct).ConfigureAwait(false))
                {
                    throw new StanzaErrorException(StanzaErrorCondition.ItemNotFound);
                }

                Push(context, owner, new Element("item", Ns.Roster).SetAttribute("jid", contact.ToString()).SetAttribute("subscription", "remove"));
                return null;
            }

            var name = item.GetAttribute("name");
            if (name is { Length: > MaxNameLength })
            {
                throw new StanzaErrorException(StanzaErrorCondition.NotAcceptable, "name too long");
            }

            var groups = new List<string>();
            foreach (var g in item.Elements())
            {
                if (!g.Is("group", Ns.Roster))
                {
                    continue;
                }

                var text = g.Text;
                if (text.Length == 0 || text.Length > MaxNameLength)
                {
                    throw new StanzaErrorException(StanzaErrorCondition.NotAcceptable, "empty or oversized group name");
                }

                if (groups.Contains(text))
                {
                    throw new StanzaErrorException(StanzaErrorCondition.BadRequest, "duplicate group");
                }

                groups.Add(text);
            }

            var existing = await store.FindAsync(owner.Domain, owner.Local!, contact.ToString(), ct).ConfigureAwait(false);
            var updated = new RosterItem(contact.ToString(), string.IsNullOrEmpty(name) ? null : name, existing?.Subscription ?? "none", existing?.Ask, groups);
            await store.SetAsync(owner.Domain, owner.Local!, updated, ct).ConfigureAwait(false);
            Push(context, owner, ToElement(updated));
            return null;
        });
    }

    /// <summary>Only the account itself may read or change its roster (RFC 6121 §2.1.5).</summary>
    private static Jid RequireOwner(StanzaContext ctx)
    {
        if (ctx.Origin is null || ctx.To is null || ctx.To.Bare != ctx.From.Bare)
        {
            throw new StanzaErrorException(StanzaErrorCondition.Forbidden);
        }

        return ctx.To.Bare;
    }

    /// <summary>Roster push (RFC 6121 §2.1.6) to every resource of the account.</summary>
    private static void Push(IModuleContext context, Jid owner, Element item)
    {
        foreach (var r in context.Sessions.Resources(owner))
        {
            var push = new Element("iq", Ns.Client)
                .SetAttribute("type", "set")
                .SetAttribute("id", "push" + Guid.NewGuid().ToString("N")[..12])
                .SetAttribute("to", r.Jid.ToString());
            push.AddChild("query", Ns.Roster).Add(item.Clone());
            r.TrySend(push);
        }
    }

    private static Element ToElement(RosterItem item)
    {
        var e = new Element("item", Ns.Roster).SetAttribute("jid", item.Jid).SetAttribute("subscription", item.Subscription);
        e.SetAttribute("name", item.Name);
        e.SetAttribute("ask", item.Ask);
        foreach (var g in item.Groups)
        {
            e.AddChild("group").AddText(g);
        }

        return e;
    }
}
