using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;
using Xmpp.Server.Routing;
using Xmpp.Server.Storage;

namespace Xmpp.Server.Modules.PubSub;

/// <summary>The publisher's side (XEP-0060 §7) and node creation (§8.1).</summary>
internal sealed partial class PubSubService
{
    /// <summary>§8.1: a node, named or instant (§8.1.2), configured at once when a form comes with it (§8.1.3).</summary>
    private async ValueTask<Element> CreateAsync(StanzaContext ctx, Element create, Element? configure, CancellationToken ct)
    {
        if (!MayCreate(ctx.From))
        {
            throw new StanzaErrorException(StanzaErrorCondition.Forbidden, "you may not create nodes on this service");
        }

        var name = create.GetAttribute("node") is { Length: > 0 } given ? given : NewId();
        if (_nodes.ContainsKey(name))
        {
            throw new StanzaErrorException(StanzaErrorCondition.Conflict, $"node '{name}' exists");
        }

        var config = new NodeOptions();
        var form = configure?.Child("x", DataForm.Namespace);
        if (DataForm.Values(form) is { } values && form!.GetAttribute("type") != "cancel")
        {
            config = config.With(values, Settings.MaxItems, creating: true, out var problem) ?? throw new StanzaErrorException(StanzaErrorCondition.NotAcceptable, problem);
        }

        await CreateNodeAsync(ctx, name, config, ct).ConfigureAwait(false);
        return new Element("pubsub", PubSubProtocol.Namespace).Add(new Element("create", PubSubProtocol.Namespace).SetAttribute("node", name));
    }

    private async ValueTask<ServiceNode> CreateNodeAsync(StanzaContext ctx, string name, NodeOptions config, CancellationToken ct)
    {
        if (_nodes.Count >= Settings.MaxNodes)
        {
            throw new StanzaErrorException(StanzaErrorCondition.ResourceConstraint, $"this service has as many nodes as it may ({Settings.MaxNodes})");
        }

        CheckCollection(name, config, ctx);
        var owner = ctx.From.Bare.ToString();
        if (!await Store.CreateNodeAsync(Domain, name, config.Serialize(), owner, ct).ConfigureAwait(false))
        {
            throw new StanzaErrorException(StanzaErrorCondition.Conflict, $"node '{name}' exists");
        }

        var node = new ServiceNode(name, config);
        node.Affiliations[owner] = NodeAffiliation.Owner;
        _nodes[name] = node;
        Log.Info("Node {Node} created on {Service} by {Owner}", name, Domain, owner);
        return node;
    }

    /// <summary>XEP-0248: a node joins a collection that exists, that the requester owns, and that is not below it.</summary>
    private void CheckCollection(string name, NodeOptions config, StanzaContext ctx)
    {
        if (config.Collection is not { } parent)
        {
            return;
        }

        if (!_nodes.TryGetValue(parent, out var collection) || !collection.Config.IsCollection)
        {
            throw new StanzaErrorException(StanzaErrorCondition.NotAcceptable, $"'{parent}' is not a collection node");
        }

        RequireOwner(collection, ctx.From);
        for (ServiceNode? above = collection; above is not null; above = ParentOf(above))
        {
            if (above.Name == name)
            {
                throw new StanzaErrorException(StanzaErrorCondition.NotAcceptable, "a node cannot be inside itself");
            }
        }
    }

    /// <summary>§7.1: an item (or, on a transient notification-only node, just an event), with publish-options (§7.1.5).</summary>
    private async ValueTask<Element> PublishAsync(StanzaContext ctx, Element publish, Element? publishOptions, Outbox outbox, CancellationToken ct)
    {
        var name = PubSubProtocol.NodeName(publish);
        var options = DataForm.Values(publishOptions?.Child("x", DataForm.Namespace));
        if (options is not null && DataForm.FormType(options) != PubSubProtocol.PublishOptionsFormType)
        {
            throw new StanzaErrorException(StanzaErrorCondition.BadRequest, "publish-options need FORM_TYPE " + PubSubProtocol.PublishOptionsFormType);
        }

        var node = await NodeToPublishAsync(ctx, name, options, ct).ConfigureAwait(false);
        if (node.Config.IsCollection)
        {
            throw PubSubProtocol.Unsupported("publish", "a collection node holds no items: publish to a leaf");
        }

        CheckPublisher(node, ctx);
        var item = PublishedItem(node, publish, ctx);
        if (node.Config.PersistItems)
        {
            await Store.PublishAsync(Domain, node.Name, item, node.Config.MaxItems, ct).ConfigureAwait(false);
        }

        if (node.Config.DeliverNotifications)
        {
            var items = new Element("items", PubSubProtocol.EventNamespace).SetAttribute("node", node.Name);
            items.Add(PubSubProtocol.ItemElement(PubSubProtocol.EventNamespace, item, node.Config.DeliverPayloads));
            Notify(node, items, outbox, reachCollections: true);
        }

        var result = new Element("pubsub", PubSubProtocol.Namespace);
        result.AddChild("publish").SetAttribute("node", node.Name).AddChild("item").SetAttribute("id", item.Id);
        return result;
    }

    /// <summary>The node to publish to: the existing one, whose configuration must meet the preconditions, or a new one (§7.1.4 auto-create).</summary>
    private async ValueTask<ServiceNode> NodeToPublishAsync(StanzaContext ctx, string name, Dictionary<string, List<string>>? options, CancellationToken ct)
    {
        if (_nodes.TryGetValue(name, out var node))
        {
            if (options is not null && !node.Config.Satisfies(options, Settings.MaxItems, out var problem))
            {
                throw PubSubProtocol.PreconditionNotMet(problem);
            }

            return node;
        }

        if (!MayCreate(ctx.From))
        {
            throw new StanzaErrorException(StanzaErrorCondition.ItemNotFound, $"no node '{name}'");
        }

        var config = new NodeOptions();
        if (options is not null)
        {
            config = config.With(options, Settings.MaxItems, creating: true, out var problem) ?? throw PubSubProtocol.PreconditionNotMet(problem);
            if (problem is not null)
            {
                throw PubSubProtocol.PreconditionNotMet(problem);
            }
        }

        return await CreateNodeAsync(ctx, name, config, ct).ConfigureAwait(false);
    }

    /// <summary>§7.1.3.1: who may publish, by the publish model (publishers, subscribers, open) and affiliations (§4.1).</summary>
    private void CheckPublisher(ServiceNode node, StanzaContext ctx)
    {
        var standing = Standing(node, ctx.From);
        var allowed = standing switch
        {
            NodeAffiliation.Owner or NodeAffiliation.Publisher or NodeAffiliation.PublishOnly => true,
            NodeAffiliation.Outcast => false,
            _ => node.Config.Publish switch
            {
                PublishModel.Open => true,
                PublishModel.Subscribers => node.IsSubscribed(ctx.From),
                _ => false,
            },
        };
        if (!allowed)
        {
            throw new StanzaErrorException(StanzaErrorCondition.Forbidden, "you may not publish to this node");
        }
    }

    /// <summary>The item a publish request carries, by the rules of §7.1.3.6 for the node's kind.</summary>
    private static PubSubItem PublishedItem(ServiceNode node, Element publish, StanzaContext ctx)
    {
        var items = publish.Elements().Where(e => e.Is("item", PubSubProtocol.Namespace)).ToList();
        if (items.Count > 1)
        {
            throw PubSubProtocol.Error(StanzaErrorCondition.BadRequest, "invalid-payload", "publish one item at a time");
        }

        var config = node.Config;
        var item = items.Count == 1 ? items[0] : null;
        if (item is not null && !config.PersistItems && !config.DeliverPayloads)
        {
            throw PubSubProtocol.Error(StanzaErrorCondition.BadRequest, "item-forbidden", "a transient notification-only node takes no items");
        }

        var payload = item?.Elements().ToList() ?? [];
        if (payload.Count > 1)
        {
            throw PubSubProtocol.Error(StanzaErrorCondition.BadRequest, "invalid-payload", "an item carries one payload element");
        }

        if (config.DeliverPayloads && payload.Count == 0)
        {
            throw PubSubProtocol.Error(StanzaErrorCondition.BadRequest, item is null && config.PersistItems ? "item-required" : "payload-required", "this node delivers payloads: publish an item with one");
        }

        if (item is null && config.PersistItems)
        {
            throw PubSubProtocol.Error(StanzaErrorCondition.BadRequest, "item-required", "this node keeps items: publish one");
        }

        var id = item?.GetAttribute("id") is { Length: > 0 } given ? given : NewId();
        return new PubSubItem(id, payload.Count == 1 ? payload[0].ToString() : string.Empty, ctx.From.Bare.ToString(), DateTimeOffset.UtcNow);
    }

    /// <summary>§7.2: deletes items; owners and publishers any, others who may publish their own only.</summary>
    private async ValueTask RetractAsync(StanzaContext ctx, Element retract, Outbox outbox, CancellationToken ct)
    {
        var node = Find(PubSubProtocol.NodeName(retract));
        var ids = PubSubProtocol.ItemIds(retract);
        if (ids.Count == 0)
        {
            throw PubSubProtocol.Error(StanzaErrorCondition.BadRequest, "item-required", "which item?");
        }

        if (node.Config.IsCollection || !node.Config.PersistItems)
        {
            throw PubSubProtocol.Unsupported("persistent-items", "this node keeps no items");
        }

        CheckPublisher(node, ctx);
        var found = await Store.GetItemsAsync(Domain, node.Name, null, ids, ct).ConfigureAwait(false);
        if (found.Count < ids.Distinct(StringComparer.Ordinal).Count())
        {
            throw new StanzaErrorException(StanzaErrorCondition.ItemNotFound, "no such item");
        }

        var standing = Standing(node, ctx.From);
        if (standing is not (NodeAffiliation.Owner or NodeAffiliation.Publisher) && found.Any(i => i.Publisher != ctx.From.Bare.ToString()))
        {
            throw new StanzaErrorException(StanzaErrorCondition.Forbidden, "you may retract only your own items");
        }

        foreach (var item in found)
        {
            await Store.RetractAsync(Domain, node.Name, item.Id, ct).ConfigureAwait(false);
        }

        // §7.2.2.1: notify when the node says so, or the publisher asks.
        if (node.Config.NotifyRetract || (retract.GetAttribute("notify") is { } notify && DataForm.ParseBoolean(notify) == true))
        {
            var events = new Element("items", PubSubProtocol.EventNamespace).SetAttribute("node", node.Name);
            foreach (var item in found)
            {
                events.AddChild("retract").SetAttribute("id", item.Id);
            }

            Notify(node, events, outbox, reachCollections: true);
        }
    }
}
