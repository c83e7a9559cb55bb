using System.Globalization;
using Xmpp.Core;
using Xmpp.Core.Addressing;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;
using Xmpp.Server.Routing;

namespace Xmpp.Server.Modules.Pep;

/// <summary>
/// Who sees what, and who is told: XEP-0060 §4.5 access models (open, presence, whitelist) with §6.1.3's
/// errors; XEP-0163 §4 notifications to the resources whose caps (XEP-0115) ask for NODE+notify, and the last
/// items to a resource that becomes available (§4.3.2), learnt from its presence and its owner's.
/// </summary>
public sealed partial class PepModule
{
    /// <summary>Whether an entity may see a node's items (XEP-0060 §6.1.3 for the errors).</summary>
    private async ValueTask<bool> MaySeeAsync(Jid owner, Jid entity, NodeConfig config, CancellationToken ct)
    {
        if (entity.Bare == owner)
        {
            return true;
        }

        return config.Access switch
        {
            AccessModel.Open => true,
            AccessModel.Presence => (await _context.Rosters.FindAsync(owner, entity, ct).ConfigureAwait(false)) is { HasFrom: true },
            _ => false,
        };
    }

    private async ValueTask CheckAccessAsync(Jid owner, Jid entity, NodeConfig config, CancellationToken ct)
    {
        if (await MaySeeAsync(owner, entity, config, ct).ConfigureAwait(false))
        {
            return;
        }

        throw config.Access == AccessModel.Presence
            ? PubSubError(StanzaErrorCondition.NotAuthorized, "presence-subscription-required", null)
            : PubSubError(StanzaErrorCondition.NotAllowed, "closed-node", null);
    }

    /// <summary>§4.3: an event to every resource available to the owner that asked for NODE+notify and may see the node.</summary>
    private async ValueTask NotifyAsync(Jid owner, string nodeName, NodeConfig config, Element payload, CancellationToken ct)
    {
        var feature = nodeName + "+notify";
        foreach (var (resource, key) in _caps.Available(owner).ToList())
        {
            if (_caps.Has(resource, key, feature) && await MaySeeAsync(owner, resource, config, ct).ConfigureAwait(false))
            {
                await SendEventAsync(owner, resource, payload, ct).ConfigureAwait(false);
            }
        }
    }

    private ValueTask SendEventAsync(Jid owner, Jid to, Element payload, CancellationToken ct)
    {
        var message = new Element("message", Ns.Client)
            .SetAttribute("from", owner.ToString())
            .SetAttribute("to", to.ToString())
            .SetAttribute("type", "headline")
            .SetAttribute("id", "pep" + Interlocked.Increment(ref _nextId).ToString(CultureInfo.InvariantCulture));
        message.AddChild("event", EventNamespace).Add(payload);
        return _context.Router.RouteAsync(message, owner, null, ct);
    }

    /// <summary>§4.3.2: a resource that just became available gets the last item of each node it wants and may see.</summary>
    private async ValueTask SendLastItemsAsync(Jid owner, Jid resource, string? key, CancellationToken ct)
    {
        foreach (var node in await NodesAsync(owner, ct).ConfigureAwait(false))
        {
            var config = NodeConfig.Parse(node.Config, _maxItems);
            if (config.SendLastPublishedItem != "on_sub_and_presence" || !_caps.Has(resource, key, node.Node + "+notify") ||
                !await MaySeeAsync(owner, resource, config, ct).ConfigureAwait(false))
            {
                continue;
            }

            var last = await Store.GetItemsAsync(owner.Domain, owner.Local!, node.Node, 1, null, ct).ConfigureAwait(false);
            if (last.Count == 1)
            {
                var items = new Element("items", EventNamespace).SetAttribute("node", node.Node);
                var item = ItemElement(EventNamespace, last[0], config.DeliverPayloads);
                item.Add(Forwarded.Delay(last[0].Published, owner.ToString()));
                items.Add(item);
                await SendEventAsync(owner, resource, items, ct).ConfigureAwait(false);
            }
        }
    }

    private async ValueTask<bool> OnInboundPresenceAsync(StanzaContext ctx, CancellationToken ct)
    {
        var owner = ctx.To!.Bare;
        var from = ctx.From;
        if (from.Resource is null || from.Bare == owner)
        {
            return false;
        }

        if (ctx.Type == "unavailable")
        {
            _caps.Gone(owner, from);
        }
        else if (ctx.Type is null)
        {
            var key = ContactCaps.Key(ctx.Stanza);

            // Remembered only while the owner is online to publish; an offline owner's last items go out all the same.
            var online = _context.Sessions.Resources(owner).Count > 0;
            if (!online || _caps.Seen(owner, from, key))
            {
                await _caps.LearnAsync(owner, from, key, ContactCaps.Node(ctx.Stanza), SendLastItemsAsync, ct).ConfigureAwait(false);
            }
        }

        return false;
    }

    private async ValueTask<bool> OnOwnPresenceAsync(StanzaContext ctx, CancellationToken ct)
    {
        var owner = ctx.From.Bare;
        if (ctx.Type == "unavailable")
        {
            _caps.Gone(owner, ctx.From);
        }
        else if (ctx.Type is null)
        {
            var key = ContactCaps.Key(ctx.Stanza);
            if (_caps.Seen(owner, ctx.From, key))
            {
                await _caps.LearnAsync(owner, ctx.From, key, ContactCaps.Node(ctx.Stanza), SendLastItemsAsync, ct).ConfigureAwait(false);
            }
        }

        return false;
    }
}
