using Xmpp.Core;
using Xmpp.Core.Addressing;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;
using Xmpp.Server.Routing;
using Xmpp.Server.Storage;

namespace Xmpp.Server.Modules.Roster;

/// <summary>
/// Roster management (RFC 6121 §2): get with versioning (§2.6, XEP-0237), set (add/update) and remove,
/// stored durably, with roster pushes to the account's interested resources. Removing an item cancels the
/// subscriptions in both directions (§2.5.2). Subscription states change through presence (see the
/// presence module), never through a roster set.
/// </summary>
[Specification("RFC 6121", "§2", Note = "Roster get, set and remove with pushes to every resource that requested the roster; removing a contact cancels the subscriptions both ways; versioning (§2.6).")]
[Specification("XEP-0237", "1.3", Note = "Roster versioning, as RFC 6121 §2.6 took it over.")]
public sealed class RosterModule : IXmppModule
{
    private const int MaxNameLength = 1023;

    public string Name => "roster";

    public void Register(IModuleContext context)
    {
        var rosters = context.Rosters;
        context.AddStreamFeature(new Element("ver", "urn:xmpp:features:rosterver"));
        context.HandleIq("get", Ns.Roster, "query", IqTarget.Bare, (ctx, payload, ct) => GetAsync(rosters, ctx, payload, ct));
        context.HandleIq("set", Ns.Roster, "query", IqTarget.Bare, (ctx, payload, ct) => SetAsync(context, rosters, ctx, payload, ct));
    }

    /// <summary>§2.2 retrieving the roster on login, with §2.6 versioning; the resource is then interested in pushes.</summary>
    private static async ValueTask<Element?> GetAsync(RosterManager rosters, StanzaContext ctx, Element payload, CancellationToken ct)
    {
        var owner = RequireOwner(ctx);
        ctx.Origin!.RosterRequested = true;
        var roster = await rosters.GetAsync(owner, ct).ConfigureAwait(false);

        // §2.6.3: when the client's version is current, an empty result; changes come as pushes.
        if (payload.GetAttribute("ver") is { } ver && ver == roster.Ver)
        {
            return null;
        }

        var query = new Element("query", Ns.Roster).SetAttribute("ver", roster.Ver);
        foreach (var item in roster.Items.Values.Where(i => i.InRoster).OrderBy(i => i.Jid, StringComparer.Ordinal))
        {
            query.Add(RosterManager.ToElement(item));
        }

        return query;
    }

    /// <summary>§2.3 adding, §2.4 updating and §2.5 deleting a roster item.</summary>
    private static async ValueTask<Element?> SetAsync(IModuleContext context, RosterManager rosters, StanzaContext ctx, Element payload, CancellationToken ct)
    {
        var owner = RequireOwner(ctx);

        // §2.3.3 / §2.5.3: exactly one item.
        var items = payload.Elements().ToList();
        if (items.Count != 1 || !items[0].Is("item", Ns.Roster))
        {
            throw new StanzaErrorException(StanzaErrorCondition.BadRequest, "a roster set carries exactly one item");
        }

        var item = items[0];
        if (!Jid.TryParse(item.GetAttribute("jid"), out var contact) || contact.Resource is not null)
        {
            throw new StanzaErrorException(StanzaErrorCondition.BadRequest, "item jid must be a valid bare JID");
        }

        if (contact == owner)
        {
            throw new StanzaErrorException(StanzaErrorCondition.NotAllowed, "the account itself cannot be a roster item");
        }

        if (item.GetAttribute("subscription") == "remove")
        {
            await RemoveAsync(context, owner, contact, ct).ConfigureAwait(false);
            return null;
        }

        var name = item.GetAttribute("name");
        if (name is { Length: > MaxNameLength })
        {
            throw new StanzaErrorException(StanzaErrorCondition.NotAcceptable, "name too long");
        }

        var groups = Groups(item);

        // §2.1.2.5: 'subscription' (other than remove) and 'ask' from the client are ignored.
        try
        {
            await rosters.ChangeAsync(owner, contact, existing => (existing ?? RosterItem.Empty(contact.ToString())) with
            {
                Name = string.IsNullOrEmpty(name) ? null : name,
                Groups = groups,
                InRoster = true,
            }, ct).ConfigureAwait(false);
        }
        catch (RosterFullException)
        {
            throw new StanzaErrorException(StanzaErrorCondition.NotAllowed, "the roster holds the maximum number of items");
        }

        return null;
    }

    /// <summary>§2.1.2.6: an item's groups, each named (not empty, not too long) and named once.</summary>
    private static List<string> Groups(Element item)
    {
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

            if (groups.Contains(text, StringComparer.Ordinal))
            {
                throw new StanzaErrorException(StanzaErrorCondition.BadRequest, "duplicate group");
            }

            groups.Add(text);
        }

        return groups;
    }

    /// <summary>
    /// §2.5.2: removing an item cancels the user's subscription to the contact (unsubscribe) and the
    /// contact's to the user (unsubscribed, after unavailable presence), then pushes the removal.
    /// </summary>
    private static async ValueTask RemoveAsync(IModuleContext context, Jid owner, Jid contact, CancellationToken ct)
    {
        // An entry kept only for an unanswered request is not a roster item: it stays, and the client hears item-not-found.
        var (before, _) = await context.Rosters.ChangeAsync(owner, contact, existing => existing is { InRoster: true } ? null : existing, ct).ConfigureAwait(false);
        if (before is null || !before.InRoster)
        {
            throw new StanzaErrorException(StanzaErrorCondition.ItemNotFound);
        }

        if (before.HasTo || before.PendingOut)
        {
            await context.Router.RouteAsync(SubscriptionStanza("unsubscribe", owner, contact), null, ct).ConfigureAwait(false);
        }

        if (before.HasFrom)
        {
            foreach (var r in context.Sessions.Resources(owner))
            {
                if (r.IsAvailable)
                {
                    await context.Router.RouteAsync(
                        new Element("presence", Ns.Client).SetAttribute("type", "unavailable").SetAttribute("from", r.Jid.ToString()).SetAttribute("to", contact.ToString()),
                        null,
                        ct).ConfigureAwait(false);
                }
            }
        }

        if (before.HasFrom || before.PendingIn)
        {
            await context.Router.RouteAsync(SubscriptionStanza("unsubscribed", owner, contact), null, ct).ConfigureAwait(false);
        }
    }

    private static Element SubscriptionStanza(string type, Jid from, Jid to) =>
        new Element("presence", Ns.Client).SetAttribute("type", type).SetAttribute("from", from.ToString()).SetAttribute("to", to.ToString());

    /// <summary>Only the account itself may read or change its roster (RFC 6121 §2.1.5).</summary>
    private static Jid RequireOwner(StanzaContext ctx)
    {
        if (ctx.Origin is null || ctx.To is null || ctx.To.Bare != ctx.From.Bare)
        {
            throw new StanzaErrorException(StanzaErrorCondition.Forbidden);
        }

        return ctx.To.Bare;
    }
}
