using Xmpp.Core;
using Xmpp.Core.Addressing;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;
using Xmpp.Server.Routing;

namespace Xmpp.Server.Modules.PubSub;

/// <summary>The owner's side (XEP-0060 §8): configuration, deletion, purging, subscriptions and affiliations; and discovery (§5).</summary>
internal sealed partial class PubSubService
{
    private async ValueTask<Element?> OwnerAsync(StanzaContext ctx, Element pubsub, Outbox outbox, CancellationToken ct)
    {
        var command = pubsub.FirstElement() ?? throw new StanzaErrorException(StanzaErrorCondition.BadRequest);
        if (command.Name == "default" && ctx.Type == "get")
        {
            // §8.3: the default configuration, for a leaf or (XEP-0248) a collection.
            var type = DataForm.Values(command.Child("x", DataForm.Namespace)) is { } v && v.TryGetValue("pubsub#node_type", out var t) && t.FirstOrDefault() == "collection";
            var result = new Element("pubsub", PubSubProtocol.OwnerNamespace);
            result.AddChild("default").Add(new NodeOptions { IsCollection = type }.ToForm("form", Settings.MaxItems));
            return result;
        }

        var node = Find(PubSubProtocol.NodeName(command));
        RequireOwner(node, ctx.From);
        switch (command.Name, ctx.Type)
        {
            case ("configure", "get"):
                var form = new Element("pubsub", PubSubProtocol.OwnerNamespace);
                form.AddChild("configure").SetAttribute("node", node.Name).Add(node.Config.ToForm("form", Settings.MaxItems));
                return form;
            case ("configure", "set"):
                await ConfigureAsync(ctx, node, command, outbox, ct).ConfigureAwait(false);
                return null;
            case ("delete", "set"):
                await DeleteAsync(node, command.Child("redirect", PubSubProtocol.OwnerNamespace)?.GetAttribute("uri"), outbox, ct).ConfigureAwait(false);
                return null;
            case ("purge", "set"):
                if (node.Config.IsCollection || !node.Config.PersistItems)
                {
                    throw PubSubProtocol.Unsupported("purge-nodes", "this node keeps no items");
                }

                await Store.PurgeAsync(Domain, node.Name, ct).ConfigureAwait(false);
                Notify(node, new Element("purge", PubSubProtocol.EventNamespace).SetAttribute("node", node.Name), outbox);
                return null;
            case ("subscriptions", "get"):
                var subscriptions = new Element("subscriptions", PubSubProtocol.OwnerNamespace).SetAttribute("node", node.Name);
                foreach (var s in node.Subscriptions)
                {
                    subscriptions.Add(SubscriptionElement(node, s, PubSubProtocol.OwnerNamespace).SetAttribute("node", null));
                }

                return new Element("pubsub", PubSubProtocol.OwnerNamespace).Add(subscriptions);
            case ("subscriptions", "set"):
                await SetSubscriptionsAsync(node, command, outbox, ct).ConfigureAwait(false);
                return null;
            case ("affiliations", "get"):
                var affiliations = new Element("affiliations", PubSubProtocol.OwnerNamespace).SetAttribute("node", node.Name);
                foreach (var (jid, affiliation) in node.Affiliations.OrderBy(a => a.Key, StringComparer.Ordinal))
                {
                    affiliations.AddChild("affiliation").SetAttribute("jid", jid).SetAttribute("affiliation", ServiceNode.AffiliationName(affiliation));
                }

                return new Element("pubsub", PubSubProtocol.OwnerNamespace).Add(affiliations);
            case ("affiliations", "set"):
                await SetAffiliationsAsync(node, command, outbox, ct).ConfigureAwait(false);
                return null;
            default:
                throw PubSubProtocol.Unsupported(command.Name);
        }
    }

    /// <summary>§8.2.4: the owner's submitted form; subscribers hear of it when notify_config is on (§8.2.5).</summary>
    private async ValueTask ConfigureAsync(StanzaContext ctx, ServiceNode node, Element command, Outbox outbox, CancellationToken ct)
    {
        var form = command.Child("x", DataForm.Namespace);
        if (form?.GetAttribute("type") == "cancel")
        {
            return;
        }

        var values = DataForm.Values(form) ?? throw new StanzaErrorException(StanzaErrorCondition.BadRequest, "a configuration form is required");
        var config = node.Config.With(values, Settings.MaxItems, creating: false, out var problem) ?? throw new StanzaErrorException(StanzaErrorCondition.NotAcceptable, problem);
        if (config.Collection != node.Config.Collection)
        {
            CheckCollection(node.Name, config, ctx);
        }

        await Store.SetConfigAsync(Domain, node.Name, config.Serialize(), ct).ConfigureAwait(false);
        var lessItems = config.MaxItems < node.Config.MaxItems || (node.Config.PersistItems && !config.PersistItems);
        node.Config = config;
        if (lessItems)
        {
            // Fewer items kept now: the oldest go (none at all for a node that stopped keeping them).
            var keep = config.PersistItems ? await Store.GetItemsAsync(Domain, node.Name, config.MaxItems, null, ct).ConfigureAwait(false) : [];
            var all = await Store.GetItemsAsync(Domain, node.Name, null, null, ct).ConfigureAwait(false);
            foreach (var gone in all.Where(i => !keep.Any(k => k.Id == i.Id)))
            {
                await Store.RetractAsync(Domain, node.Name, gone.Id, ct).ConfigureAwait(false);
            }
        }

        if (config.NotifyConfig)
        {
            var configuration = new Element("configuration", PubSubProtocol.EventNamespace).SetAttribute("node", node.Name);
            if (config.DeliverPayloads)
            {
                var result = config.ToForm("result", Settings.MaxItems);
                configuration.Add(result);
            }

            Notify(node, configuration, outbox);
        }
    }

    /// <summary>§8.4: the node goes with its items and subscriptions; its subscribers are told (with a redirect, if given).</summary>
    private async ValueTask DeleteAsync(ServiceNode node, string? redirect, Outbox outbox, CancellationToken ct)
    {
        if (node.Config.NotifyDelete)
        {
            var deleted = new Element("delete", PubSubProtocol.EventNamespace).SetAttribute("node", node.Name);
            if (redirect is not null)
            {
                deleted.AddChild("redirect").SetAttribute("uri", redirect);
            }

            Notify(node, deleted, outbox);
        }

        await Store.DeleteNodeAsync(Domain, node.Name, ct).ConfigureAwait(false);
        _nodes.Remove(node.Name);

        // XEP-0248: the collection's children move to the root.
        foreach (var child in _nodes.Values.Where(n => n.Config.Collection == node.Name).ToList())
        {
            child.Config = child.Config with { Collection = null };
            await Store.SetConfigAsync(Domain, child.Name, child.Config.Serialize(), ct).ConfigureAwait(false);
        }

        Log.Info("Node {Node} deleted on {Service}", node.Name, Domain);
    }

    /// <summary>§8.8.2: the owner approves, changes or ends subscriptions; each subscriber hears of its new state (§8.8.4).</summary>
    private async ValueTask SetSubscriptionsAsync(ServiceNode node, Element command, Outbox outbox, CancellationToken ct)
    {
        var changes = new List<(Jid Jid, SubscriptionState? State, string? SubId)>();
        foreach (var entry in command.Elements().Where(e => e.Is("subscription", PubSubProtocol.OwnerNamespace)))
        {
            if (!Jid.TryParse(entry.GetAttribute("jid"), out var jid))
            {
                throw new StanzaErrorException(StanzaErrorCondition.BadRequest, "a subscription needs a JID");
            }

            var text = entry.GetAttribute("subscription");
            SubscriptionState? state = text == "none" ? null : ServiceNode.ParseState(text) ?? throw new StanzaErrorException(StanzaErrorCondition.BadRequest, $"'{text}' is not a subscription state");
            changes.Add((jid, state, entry.GetAttribute("subid")));
        }

        foreach (var (jid, state, subId) in changes)
        {
            var existing = node.Subscriptions.Where(s => s.Jid == jid && (subId is null || s.SubId == subId)).ToList();
            if (state is null)
            {
                foreach (var s in existing)
                {
                    await Store.RemoveSubscriptionAsync(Domain, node.Name, s.SubId, ct).ConfigureAwait(false);
                    node.Subscriptions.Remove(s);
                }

                var none = new Element("subscription", PubSubProtocol.EventNamespace).SetAttribute("node", node.Name).SetAttribute("jid", jid.ToString()).SetAttribute("subscription", "none");
                outbox.Add(EventMessage(jid, node.Config.NotificationType, none));
                continue;
            }

            var changed = existing.Count > 0 ? existing[0] with { State = state.Value } : new NodeSubscription(subId ?? NewId(), jid, state.Value, new SubscriptionOptions());
            await SaveSubscriptionAsync(node, changed, ct).ConfigureAwait(false);
            if (existing.Count > 0)
            {
                Replace(node, existing[0], changed);
            }
            else
            {
                node.Subscriptions.Add(changed);
            }

            outbox.Add(EventMessage(jid, node.Config.NotificationType, SubscriptionElement(node, changed, PubSubProtocol.EventNamespace)));
        }
    }

    /// <summary>§8.9.2: the owner changes affiliations; an outcast loses its subscriptions; the entity hears of it (§8.9.4); a node keeps an owner.</summary>
    private async ValueTask SetAffiliationsAsync(ServiceNode node, Element command, Outbox outbox, CancellationToken ct)
    {
        var changes = new List<(Jid Jid, NodeAffiliation Affiliation)>();
        foreach (var entry in command.Elements().Where(e => e.Is("affiliation", PubSubProtocol.OwnerNamespace)))
        {
            if (!Jid.TryParse(entry.GetAttribute("jid"), out var jid) || ServiceNode.ParseAffiliation(entry.GetAttribute("affiliation")) is not { } affiliation)
            {
                throw new StanzaErrorException(StanzaErrorCondition.BadRequest, "an affiliation needs a JID and one of owner, publisher, publish-only, member, none, outcast");
            }

            changes.Add((jid.Bare, affiliation));
        }

        var owners = node.Owners.ToHashSet(StringComparer.Ordinal);
        foreach (var (jid, affiliation) in changes)
        {
            if (affiliation == NodeAffiliation.Owner)
            {
                owners.Add(jid.ToString());
            }
            else
            {
                owners.Remove(jid.ToString());
            }
        }

        if (owners.Count == 0)
        {
            throw new StanzaErrorException(StanzaErrorCondition.NotAcceptable, "a node keeps at least one owner");
        }

        foreach (var (jid, affiliation) in changes)
        {
            await Store.SetAffiliationAsync(Domain, node.Name, jid.ToString(), ServiceNode.AffiliationName(affiliation), ct).ConfigureAwait(false);
            if (affiliation == NodeAffiliation.None)
            {
                node.Affiliations.Remove(jid.ToString());
            }
            else
            {
                node.Affiliations[jid.ToString()] = affiliation;
            }

            if (affiliation == NodeAffiliation.Outcast)
            {
                foreach (var s in node.SubscriptionsOf(jid).ToList())
                {
                    await Store.RemoveSubscriptionAsync(Domain, node.Name, s.SubId, ct).ConfigureAwait(false);
                    node.Subscriptions.Remove(s);
                }
            }

            var notice = Message(jid, "normal");
            notice.AddChild("pubsub", PubSubProtocol.Namespace).AddChild("affiliations").SetAttribute("node", node.Name)
                .AddChild("affiliation").SetAttribute("jid", jid.ToString()).SetAttribute("affiliation", ServiceNode.AffiliationName(affiliation));
            outbox.Add(notice);
        }
    }

    // ---- discovery (§5) --------------------------------------------------------------------------------

    private Element DiscoInfo(Element query)
    {
        var info = new Element("query", Ns.DiscoInfo);
        if (query.GetAttribute("node") is not { } name)
        {
            info.AddChild("identity").SetAttribute("category", "pubsub").SetAttribute("type", "service").SetAttribute("name", "Publish-Subscribe");
            foreach (var f in new[] { Ns.DiscoInfo, Ns.DiscoItems, Ns.Ping, PubSubProtocol.Namespace }.Concat(Features.Select(f => PubSubProtocol.Namespace + "#" + f)))
            {
                info.AddChild("feature").SetAttribute("var", f);
            }

            return info;
        }

        // §5.3: a node's identity and meta-data, for anyone who asks.
        var node = Find(name);
        info.SetAttribute("node", node.Name);
        info.AddChild("identity").SetAttribute("category", "pubsub").SetAttribute("type", node.Config.IsCollection ? "collection" : "leaf");
        info.AddChild("feature").SetAttribute("var", PubSubProtocol.Namespace);
        var meta = DataForm.Create("result", PubSubProtocol.Namespace + "#meta-data");
        DataForm.AddField(meta, "pubsub#title", "text-single", node.Config.Title ?? string.Empty);
        DataForm.AddField(meta, "pubsub#description", "text-single", node.Config.Description ?? string.Empty);
        DataForm.AddField(meta, "pubsub#type", "text-single", node.Config.PayloadType ?? string.Empty);
        DataForm.AddField(meta, "pubsub#owner", "jid-multi", [.. node.Owners]);
        DataForm.AddField(meta, "pubsub#access_model", "list-single", NodeOptions.Name(node.Config.Access));
        DataForm.AddField(meta, "pubsub#publish_model", "list-single", NodeOptions.Name(node.Config.Publish));
        DataForm.AddField(meta, "pubsub#num_subscribers", "text-single", node.Subscriptions.Count(s => s.State == SubscriptionState.Subscribed).ToString(System.Globalization.CultureInfo.InvariantCulture));
        info.Add(meta);
        return info;
    }

    /// <summary>§5.2 and §5.5: the nodes at the root or in a collection, or a leaf's items (by id, named by it).</summary>
    private async ValueTask<Element> DiscoItemsAsync(StanzaContext ctx, Element query, CancellationToken ct)
    {
        var items = new Element("query", Ns.DiscoItems);
        var name = query.GetAttribute("node");
        var parent = name is null ? null : Find(name);
        if (parent is { Config.IsCollection: false })
        {
            items.SetAttribute("node", parent.Name);
            if (parent.Config.PersistItems && await RefusalAsync(parent, ctx.From, subscribing: false, ct).ConfigureAwait(false) is null)
            {
                foreach (var item in await Store.GetItemsAsync(Domain, parent.Name, null, null, ct).ConfigureAwait(false))
                {
                    items.AddChild("item").SetAttribute("jid", Domain).SetAttribute("name", item.Id);
                }
            }

            return items;
        }

        items.SetAttribute("node", name);
        foreach (var node in _nodes.Values.Where(n => n.Config.Collection == name).OrderBy(n => n.Name, StringComparer.Ordinal))
        {
            // Whitelisted nodes are for those on the list.
            if (node.Config.Access != AccessModel.Whitelist || Standing(node, ctx.From) >= NodeAffiliation.Member)
            {
                items.AddChild("item").SetAttribute("jid", Domain).SetAttribute("node", node.Name).SetAttribute("name", node.Config.Title);
            }
        }

        return items;
    }
}
