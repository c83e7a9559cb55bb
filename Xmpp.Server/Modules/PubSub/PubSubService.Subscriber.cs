using Xmpp.Core;
using Xmpp.Core.Addressing;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;
using Xmpp.Server.Routing;

namespace Xmpp.Server.Modules.PubSub;

/// <summary>The subscriber's side (XEP-0060 §5.6, §5.7, §6): subscriptions, their options and approval, items.</summary>
internal sealed partial class PubSubService
{
    private const string AuthorizationFormType = "http://jabber.org/protocol/pubsub#subscribe_authorization";

    /// <summary>§6.1: a new subscription, pending the owners' approval under the authorize model (§6.1.4).</summary>
    private async ValueTask<Element> SubscribeAsync(StanzaContext ctx, Element subscribe, Element? optionsElement, Outbox outbox, CancellationToken ct)
    {
        var node = Find(PubSubProtocol.NodeName(subscribe));
        var jid = SubscriberJid(subscribe);
        if (jid.Bare != ctx.From.Bare && !Context.Options.IsAdmin(ctx.From.Bare))
        {
            // §6.1.3.1: one subscribes oneself.
            throw PubSubProtocol.Error(StanzaErrorCondition.BadRequest, "invalid-jid", "the JID to subscribe is not yours");
        }

        if (!node.Config.Subscribe)
        {
            throw PubSubProtocol.Unsupported("subscribe", "this node takes no subscriptions");
        }

        if (await RefusalAsync(node, jid, subscribing: true, ct).ConfigureAwait(false) is { } refusal)
        {
            throw refusal;
        }

        if (node.SubscriptionsOf(jid).Any(s => s.State == SubscriptionState.Pending))
        {
            throw PubSubProtocol.Error(StanzaErrorCondition.NotAuthorized, "pending-subscription", "a subscription request is waiting for approval");
        }

        var options = new SubscriptionOptions();
        if (DataForm.Values(optionsElement?.Child("x", DataForm.Namespace)) is { } values)
        {
            options = options.With(values, out var problem) ?? throw PubSubProtocol.Error(StanzaErrorCondition.BadRequest, "invalid-options", problem);
        }

        if (node.Subscriptions.Count >= Settings.MaxSubscriptions)
        {
            throw new StanzaErrorException(StanzaErrorCondition.ResourceConstraint, $"at most {Settings.MaxSubscriptions} subscriptions per node");
        }

        var approval = node.Config.Access == AccessModel.Authorize && Standing(node, jid) < NodeAffiliation.Member;
        var subscription = new NodeSubscription(NewId(), jid, approval ? SubscriptionState.Pending : SubscriptionState.Subscribed, options);
        await SaveSubscriptionAsync(node, subscription, ct).ConfigureAwait(false);
        node.Subscriptions.Add(subscription);
        Log.Debug("{Jid} subscribed to {Node} on {Service}: {State}", jid, node.Name, Domain, subscription.State);
        if (approval)
        {
            AskOwners(node, subscription, outbox);
        }
        else
        {
            await SendLastItemAsync(node, subscription, outbox, ct).ConfigureAwait(false);
        }

        return new Element("pubsub", PubSubProtocol.Namespace).Add(SubscriptionElement(node, subscription, PubSubProtocol.Namespace));
    }

    /// <summary>§6.2: ends a subscription, chosen by SubID when the entity holds several (§6.2.3.1, §6.2.3.5).</summary>
    private async ValueTask UnsubscribeAsync(StanzaContext ctx, Element unsubscribe, CancellationToken ct)
    {
        var node = Find(PubSubProtocol.NodeName(unsubscribe));
        var jid = SubscriberJid(unsubscribe);
        if (jid.Bare != ctx.From.Bare && Standing(node, ctx.From) != NodeAffiliation.Owner)
        {
            throw new StanzaErrorException(StanzaErrorCondition.Forbidden, "you may not unsubscribe someone else");
        }

        var subscription = Choose(node, jid, unsubscribe.GetAttribute("subid"));
        await Store.RemoveSubscriptionAsync(Domain, node.Name, subscription.SubId, ct).ConfigureAwait(false);
        node.Subscriptions.Remove(subscription);
        Log.Debug("{Jid} unsubscribed from {Node} on {Service}", jid, node.Name, Domain);
    }

    /// <summary>§6.3: a subscription's options, read (get) or changed (set).</summary>
    private async ValueTask<Element?> OptionsAsync(StanzaContext ctx, Element command, bool set, CancellationToken ct)
    {
        var node = Find(PubSubProtocol.NodeName(command));
        var jid = SubscriberJid(command);
        if (jid.Bare != ctx.From.Bare && Standing(node, ctx.From) != NodeAffiliation.Owner)
        {
            throw new StanzaErrorException(StanzaErrorCondition.Forbidden, "these are not your subscription's options");
        }

        var subscription = Choose(node, jid, command.GetAttribute("subid"));
        if (!set)
        {
            var result = new Element("pubsub", PubSubProtocol.Namespace);
            result.AddChild("options").SetAttribute("node", node.Name).SetAttribute("jid", jid.ToString()).SetAttribute("subid", subscription.SubId)
                .Add(subscription.Options.ToForm("form"));
            return result;
        }

        var form = command.Child("x", DataForm.Namespace);
        if (form?.GetAttribute("type") == "cancel")
        {
            return null;
        }

        var values = DataForm.Values(form) ?? throw PubSubProtocol.Error(StanzaErrorCondition.BadRequest, "invalid-options", "an options form is required");
        var options = subscription.Options.With(values, out var problem) ?? throw PubSubProtocol.Error(StanzaErrorCondition.BadRequest, "invalid-options", problem);
        var changed = subscription with { Options = options, State = subscription.State == SubscriptionState.Unconfigured ? SubscriptionState.Subscribed : subscription.State };
        await SaveSubscriptionAsync(node, changed, ct).ConfigureAwait(false);
        Replace(node, subscription, changed);
        return null;
    }

    /// <summary>§6.4: the options a new subscription gets.</summary>
    private static Element DefaultSubscriptionOptions(Element command)
    {
        var result = new Element("pubsub", PubSubProtocol.Namespace);
        result.AddChild("default").SetAttribute("node", command.GetAttribute("node")).Add(new SubscriptionOptions().ToForm("form"));
        return result;
    }

    /// <summary>§6.5: the items of a node, the newest max_items of them or those asked for by id.</summary>
    private async ValueTask<Element> ItemsAsync(StanzaContext ctx, Element items, CancellationToken ct)
    {
        var node = Find(PubSubProtocol.NodeName(items));
        if (await RefusalAsync(node, ctx.From, subscribing: false, ct).ConfigureAwait(false) is { } refusal)
        {
            throw refusal;
        }

        var result = new Element("pubsub", PubSubProtocol.Namespace);
        var list = result.AddChild("items").SetAttribute("node", node.Name);
        if (node.Config.IsCollection)
        {
            return result; // a collection holds no items of its own (XEP-0248)
        }

        if (!node.Config.PersistItems)
        {
            throw PubSubProtocol.Unsupported("persistent-items", "this node keeps no items");
        }

        var max = PubSubProtocol.MaxItems(items);
        var ids = PubSubProtocol.ItemIds(items);
        foreach (var item in await Store.GetItemsAsync(Domain, node.Name, max, ids.Count > 0 ? ids : null, ct).ConfigureAwait(false))
        {
            list.Add(PubSubProtocol.ItemElement(PubSubProtocol.Namespace, item, payload: true));
        }

        return result;
    }

    /// <summary>§5.6: the requester's own subscriptions, on one node or all.</summary>
    private Element OwnSubscriptions(StanzaContext ctx, Element command)
    {
        var nodes = command.GetAttribute("node") is { } name ? [Find(name)] : _nodes.Values.OrderBy(n => n.Name, StringComparer.Ordinal).ToList();
        var list = new Element("subscriptions", PubSubProtocol.Namespace).SetAttribute("node", command.GetAttribute("node"));
        foreach (var node in nodes)
        {
            foreach (var s in node.SubscriptionsOf(ctx.From))
            {
                list.Add(SubscriptionElement(node, s, PubSubProtocol.Namespace));
            }
        }

        return new Element("pubsub", PubSubProtocol.Namespace).Add(list);
    }

    /// <summary>§5.7: the requester's own affiliations, on one node or all.</summary>
    private Element OwnAffiliations(StanzaContext ctx, Element command)
    {
        var nodes = command.GetAttribute("node") is { } name ? [Find(name)] : _nodes.Values.OrderBy(n => n.Name, StringComparer.Ordinal).ToList();
        var list = new Element("affiliations", PubSubProtocol.Namespace).SetAttribute("node", command.GetAttribute("node"));
        foreach (var node in nodes)
        {
            var affiliation = node.AffiliationOf(ctx.From);
            if (affiliation != NodeAffiliation.None)
            {
                list.AddChild("affiliation").SetAttribute("node", node.Name).SetAttribute("affiliation", ServiceNode.AffiliationName(affiliation));
            }
        }

        return new Element("pubsub", PubSubProtocol.Namespace).Add(list);
    }

    // ---- approval (§8.6) -------------------------------------------------------------------------------

    /// <summary>§8.6: each owner gets the request as a form in a message.</summary>
    private void AskOwners(ServiceNode node, NodeSubscription subscription, Outbox outbox)
    {
        foreach (var owner in node.Owners)
        {
            if (!Jid.TryParse(owner, out var ownerJid))
            {
                continue;
            }

            var message = Message(ownerJid, "normal");
            // XEP-0004 §3.1: the title and instructions come before the fields.
            var form = new Element("x", DataForm.Namespace).SetAttribute("type", "form");
            form.AddChild("title").AddText("PubSub subscriber request");
            form.AddChild("instructions").AddText("To approve this entity's subscription request, set pubsub#allow to true and submit the form.");
            DataForm.AddField(form, "FORM_TYPE", "hidden", AuthorizationFormType);
            DataForm.AddField(form, "pubsub#subid", "hidden", subscription.SubId);
            DataForm.AddField(form, "pubsub#node", "text-single", node.Name).SetAttribute("label", "Node ID");
            DataForm.AddField(form, "pubsub#subscriber_jid", "jid-single", subscription.Jid.ToString()).SetAttribute("label", "Subscriber Address");
            DataForm.AddField(form, "pubsub#allow", "boolean", "false").SetAttribute("label", "Allow this JID to subscribe to this pubsub node?");
            message.Add(form);
            outbox.Add(message);
        }
    }

    /// <summary>Messages to the service: an owner's answer to a subscription request (§8.6), or nothing we handle.</summary>
    private async ValueTask MessageAsync(StanzaContext ctx, Outbox outbox, CancellationToken ct)
    {
        var form = ctx.Stanza.Child("x", DataForm.Namespace);
        if (DataForm.Values(form) is not { } values || DataForm.FormType(values) != AuthorizationFormType || form!.GetAttribute("type") is "cancel")
        {
            return;
        }

        string? Value(string name) => values.TryGetValue(name, out var v) && v.Count > 0 ? v[0] : null;
        var node = Find(Value("pubsub#node") ?? throw new StanzaErrorException(StanzaErrorCondition.BadRequest, "which node?"));
        RequireOwner(node, ctx.From);
        var subId = Value("pubsub#subid");
        var subscriber = Jid.TryParse(Value("pubsub#subscriber_jid"), out var j) ? j : null;
        var pending = node.Subscriptions.FirstOrDefault(s => s.State == SubscriptionState.Pending && (subId is null ? s.Jid == subscriber : s.SubId == subId))
            ?? throw new StanzaErrorException(StanzaErrorCondition.ItemNotFound, "no such pending subscription");
        if (DataForm.ParseBoolean(Value("pubsub#allow") ?? "false") == true)
        {
            var approved = pending with { State = SubscriptionState.Subscribed };
            await SaveSubscriptionAsync(node, approved, ct).ConfigureAwait(false);
            Replace(node, pending, approved);
            outbox.Add(EventMessage(approved.Jid, node.Config.NotificationType, SubscriptionElement(node, approved, PubSubProtocol.EventNamespace)));
            await SendLastItemAsync(node, approved, outbox, ct).ConfigureAwait(false);
        }
        else
        {
            await Store.RemoveSubscriptionAsync(Domain, node.Name, pending.SubId, ct).ConfigureAwait(false);
            node.Subscriptions.Remove(pending);
            var none = new Element("subscription", PubSubProtocol.EventNamespace)
                .SetAttribute("node", node.Name).SetAttribute("jid", pending.Jid.ToString()).SetAttribute("subscription", "none");
            outbox.Add(EventMessage(pending.Jid, node.Config.NotificationType, none));
        }

        Log.Debug("Subscription of {Jid} to {Node} on {Service} answered by {Owner}", pending.Jid, node.Name, Domain, ctx.From.Bare);
    }

    // ---- helpers ---------------------------------------------------------------------------------------

    /// <summary>§6.1.7: the last item, to a new subscriber of a node that sends it on subscription.</summary>
    private async ValueTask SendLastItemAsync(ServiceNode node, NodeSubscription subscription, Outbox outbox, CancellationToken ct)
    {
        if (node.Config.SendLastPublishedItem == "never" || node.Config.IsCollection || !node.Config.PersistItems || !subscription.Options.Deliver)
        {
            return;
        }

        var last = await Store.GetItemsAsync(Domain, node.Name, 1, null, ct).ConfigureAwait(false);
        if (last.Count == 1)
        {
            var items = new Element("items", PubSubProtocol.EventNamespace).SetAttribute("node", node.Name);
            var item = PubSubProtocol.ItemElement(PubSubProtocol.EventNamespace, last[0], node.Config.DeliverPayloads);
            item.Add(Forwarded.Delay(last[0].Published, Domain));
            items.Add(item);
            outbox.Add(EventMessage(subscription.Jid, node.Config.NotificationType, items));
        }
    }

    private static Jid SubscriberJid(Element command)
    {
        var text = command.GetAttribute("jid") ?? throw PubSubProtocol.Error(StanzaErrorCondition.BadRequest, "jid-required", "which JID?");
        return Jid.TryParse(text, out var jid) ? jid : throw PubSubProtocol.Error(StanzaErrorCondition.BadRequest, "invalid-jid", "not a JID");
    }

    /// <summary>The one subscription of a JID that a request means (§6.2.3, §6.3.4).</summary>
    private static NodeSubscription Choose(ServiceNode node, Jid jid, string? subId)
    {
        var mine = node.Subscriptions.Where(s => s.Jid == jid).ToList();
        if (mine.Count == 0)
        {
            throw PubSubProtocol.Error(StanzaErrorCondition.UnexpectedRequest, "not-subscribed", $"{jid} has no subscription to {node.Name}");
        }

        if (subId is not null)
        {
            return mine.FirstOrDefault(s => s.SubId == subId) ?? throw PubSubProtocol.Error(StanzaErrorCondition.NotAcceptable, "invalid-subid", "no such SubID");
        }

        return mine.Count == 1 ? mine[0] : throw PubSubProtocol.Error(StanzaErrorCondition.BadRequest, "subid-required", "several subscriptions: which SubID?");
    }

    private static void Replace(ServiceNode node, NodeSubscription old, NodeSubscription changed)
    {
        var index = node.Subscriptions.IndexOf(old);
        node.Subscriptions[index] = changed;
    }

    private static Element SubscriptionElement(ServiceNode node, NodeSubscription s, string ns) =>
        new Element("subscription", ns)
            .SetAttribute("node", node.Name)
            .SetAttribute("jid", s.Jid.ToString())
            .SetAttribute("subid", s.SubId)
            .SetAttribute("subscription", ServiceNode.StateName(s.State));
}
