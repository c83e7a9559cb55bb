using System.Globalization;
using Xmpp.Core;
using Xmpp.Core.Addressing;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;
using Xmpp.Server.Routing;
using Xmpp.Server.Storage;

namespace Xmpp.Server.Modules.PubSub;

/// <summary>Who may create nodes on a service.</summary>
public enum NodeCreation
{
    /// <summary>Accounts of this server's hosts.</summary>
    Local,

    /// <summary>Anyone, from any server.</summary>
    Anyone,

    /// <summary>The server's administrators only.</summary>
    Admins,
}

/// <summary>The pubsub module's settings (replaced whole by a reload).</summary>
internal sealed record PubSubSettings(NodeCreation Creation, int MaxItems, int MaxNodes, int MaxSubscriptions);

/// <summary>
/// One publish-subscribe service (pubsub.HOST): its nodes with their configuration, affiliations and
/// subscriptions in memory (loaded from storage on first use, written through on every change), items in
/// storage. Requests are handled one at a time per service; what they send (the reply first, then
/// notifications) goes out once the service is free again.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "The semaphore holds no OS handle (AvailableWaitHandle is never used); it lives as long as the service.")]
internal sealed partial class PubSubService(string domain, string host)
{
    /// <summary>What the service does, as XEP-0060 §10 names it.</summary>
    public static readonly string[] Features =
    [
        "access-authorize", "access-open", "access-presence", "access-roster", "access-whitelist", "auto-create",
        "collections", "config-node", "create-and-configure", "create-nodes", "delete-items", "delete-nodes",
        "filtered-notifications", "instant-nodes", "item-ids", "last-published", "manage-subscriptions",
        "member-affiliation", "meta-data", "modify-affiliations", "multi-collection", "multi-items", "multi-subscribe",
        "outcast-affiliation", "persistent-items", "publish", "publish-only-affiliation", "publish-options",
        "publisher-affiliation", "purge-nodes", "retract-items", "retrieve-affiliations", "retrieve-default",
        "retrieve-default-sub", "retrieve-items", "retrieve-subscriptions", "subscribe", "subscription-notifications",
        "subscription-options",
    ];

    private readonly Dictionary<string, ServiceNode> _nodes = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _gate = new(1, 1);
    private bool _loaded;
    private int _stale;
    private int _nodeCount;
    private long _nextId;

    public string Domain { get; } = domain;

    /// <summary>The host whose subdomain this is.</summary>
    public string Host { get; } = host;

    public Jid Jid { get; } = Jid.Parse(domain);

    /// <summary>The module generation in force (a reload hands the service, nodes and all, to the next one).</summary>
    public IModuleContext Context { get; set; } = null!;

    public PubSubSettings Settings { get; set; } = null!;

    public int NodeCount => Volatile.Read(ref _nodeCount);

    private NLog.Logger Log => Context.Log;

    private IPubSubServiceStore Store => Context.Storage.PubSubServices;

    public async Task HandleAsync(StanzaContext ctx, CancellationToken ct)
    {
        var outbox = new Outbox();
        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (Interlocked.Exchange(ref _stale, 0) == 1)
            {
                _nodes.Clear();
                _loaded = false;
            }

            await EnsureLoadedAsync(ct).ConfigureAwait(false);
            await DispatchAsync(ctx, outbox, ct).ConfigureAwait(false);
        }
        catch (StanzaErrorException ex)
        {
            outbox.Clear();
            if (Stanza.MayReplyWithError(ctx.Stanza))
            {
                Log.Debug("{Kind} from {From} to {To} refused: {Condition} {Text}", ctx.Kind, ctx.From, ctx.To, ex.Error.Condition, ex.Error.Text);
                outbox.Add(Stanza.ErrorReply(ctx.Stanza, ex.Error, includeOriginal: ctx.Kind == "message"));
            }
        }
        finally
        {
            Volatile.Write(ref _nodeCount, _nodes.Count);
            _gate.Release();
        }

        await outbox.RouteAsync(Context.Router, ct).ConfigureAwait(false);
    }

    private async ValueTask DispatchAsync(StanzaContext ctx, Outbox outbox, CancellationToken ct)
    {
        if (ctx.To!.Local is not null || ctx.To.Resource is not null)
        {
            // Nodes are addressed as service + node (§4.6), never as JIDs of their own.
            if (ctx.Kind != "presence" && Stanza.MayReplyWithError(ctx.Stanza))
            {
                throw new StanzaErrorException(StanzaErrorCondition.ServiceUnavailable);
            }

            return;
        }

        switch (ctx.Kind)
        {
            case "iq" when ctx.Type is "get" or "set":
                var payload = ctx.Stanza.FirstElement() ?? throw new StanzaErrorException(StanzaErrorCondition.BadRequest, "an iq request needs a payload");
                var result = await IqAsync(ctx, payload, outbox, ct).ConfigureAwait(false);

                // The reply goes after the notifications it caused (whoever hears the reply may count on them having
                // gone out), but before the last item that a new subscription brings (§6.1.7: it follows the result).
                var subscribing = payload.Child("subscribe", PubSubProtocol.Namespace) is not null;
                outbox.Insert(subscribing ? 0 : outbox.Count, Stanza.IqResult(ctx.Stanza, result));
                break;
            case "message" when ctx.Type != "error":
                await MessageAsync(ctx, outbox, ct).ConfigureAwait(false);
                break;
            case "message":
                // A notification that could not be delivered: nothing to answer (RFC 6120 §8.3.1).
                Log.Debug("Notification from {Service} to {To} bounced", Domain, ctx.From);
                break;
        }
    }

    private async ValueTask<Element?> IqAsync(StanzaContext ctx, Element payload, Outbox outbox, CancellationToken ct)
    {
        switch (payload.Namespace, payload.Name, ctx.Type)
        {
            case (Ns.DiscoInfo, "query", "get"):
                return DiscoInfo(payload);
            case (Ns.DiscoItems, "query", "get"):
                return await DiscoItemsAsync(ctx, payload, ct).ConfigureAwait(false);
            case (Ns.Ping, "ping", "get"):
                return null;
            case (PubSubProtocol.Namespace, "pubsub", "get"):
                return await EntityGetAsync(ctx, payload, ct).ConfigureAwait(false);
            case (PubSubProtocol.Namespace, "pubsub", "set"):
                return await EntitySetAsync(ctx, payload, outbox, ct).ConfigureAwait(false);
            case (PubSubProtocol.OwnerNamespace, "pubsub", _):
                return await OwnerAsync(ctx, payload, outbox, ct).ConfigureAwait(false);
            default:
                throw new StanzaErrorException(StanzaErrorCondition.ServiceUnavailable);
        }
    }

    private async ValueTask<Element?> EntityGetAsync(StanzaContext ctx, Element pubsub, CancellationToken ct)
    {
        var command = pubsub.FirstElement() ?? throw new StanzaErrorException(StanzaErrorCondition.BadRequest);
        return command.Name switch
        {
            "items" => await ItemsAsync(ctx, command, ct).ConfigureAwait(false),
            "subscriptions" => OwnSubscriptions(ctx, command),
            "affiliations" => OwnAffiliations(ctx, command),
            "options" => await OptionsAsync(ctx, command, set: false, ct).ConfigureAwait(false),
            "default" => DefaultSubscriptionOptions(command),
            _ => throw PubSubProtocol.Unsupported(command.Name),
        };
    }

    private async ValueTask<Element?> EntitySetAsync(StanzaContext ctx, Element pubsub, Outbox outbox, CancellationToken ct)
    {
        if (pubsub.Child("create", PubSubProtocol.Namespace) is { } create)
        {
            return await CreateAsync(ctx, create, pubsub.Child("configure", PubSubProtocol.Namespace), ct).ConfigureAwait(false);
        }

        if (pubsub.Child("publish", PubSubProtocol.Namespace) is { } publish)
        {
            return await PublishAsync(ctx, publish, pubsub.Child("publish-options", PubSubProtocol.Namespace), outbox, ct).ConfigureAwait(false);
        }

        if (pubsub.Child("subscribe", PubSubProtocol.Namespace) is { } subscribe)
        {
            return await SubscribeAsync(ctx, subscribe, pubsub.Child("options", PubSubProtocol.Namespace), outbox, ct).ConfigureAwait(false);
        }

        var command = pubsub.FirstElement() ?? throw new StanzaErrorException(StanzaErrorCondition.BadRequest);
        switch (command.Name)
        {
            case "unsubscribe":
                await UnsubscribeAsync(ctx, command, ct).ConfigureAwait(false);
                return null;
            case "retract":
                await RetractAsync(ctx, command, outbox, ct).ConfigureAwait(false);
                return null;
            case "options":
                return await OptionsAsync(ctx, command, set: true, ct).ConfigureAwait(false);
            default:
                throw PubSubProtocol.Unsupported(command.Name);
        }
    }

    // ---- shared rules ----------------------------------------------------------------------------------

    private ServiceNode Find(string name) =>
        _nodes.TryGetValue(name, out var node) ? node : throw new StanzaErrorException(StanzaErrorCondition.ItemNotFound, $"no node '{name}'");

    /// <summary>An entity's affiliation with a node; the server's administrators own every node.</summary>
    private NodeAffiliation Standing(ServiceNode node, Jid entity) =>
        Context.Options.IsAdmin(entity.Bare) ? NodeAffiliation.Owner : node.AffiliationOf(entity);

    private void RequireOwner(ServiceNode node, Jid entity)
    {
        if (Standing(node, entity) != NodeAffiliation.Owner)
        {
            throw new StanzaErrorException(StanzaErrorCondition.Forbidden, "only the node's owners may do that");
        }
    }

    private bool MayCreate(Jid who) => Settings.Creation switch
    {
        NodeCreation.Anyone => true,
        NodeCreation.Admins => Context.Options.IsAdmin(who.Bare),
        _ => Context.Router.IsLocal(who.Domain),
    };

    /// <summary>
    /// Why an entity may not subscribe to a node or retrieve its items, by the access model (§6.1.3 and
    /// §6.5.9 name the errors), or null when it may. Members, publishers and owners always may; outcasts and
    /// publish-only entities never do (§4.1). For the authorize model, a subscription request is let through
    /// (to wait for approval) while items need an approved subscription.
    /// </summary>
    private async ValueTask<StanzaErrorException?> RefusalAsync(ServiceNode node, Jid entity, bool subscribing, CancellationToken ct)
    {
        var standing = Standing(node, entity);
        if (standing is NodeAffiliation.Outcast)
        {
            return new StanzaErrorException(StanzaErrorCondition.Forbidden, "you are blocked from this node");
        }

        if (standing is NodeAffiliation.Member or NodeAffiliation.Publisher or NodeAffiliation.Owner)
        {
            return null;
        }

        if (standing is NodeAffiliation.PublishOnly)
        {
            return new StanzaErrorException(StanzaErrorCondition.Forbidden, "a publish-only affiliation does not let you read the node");
        }

        switch (node.Config.Access)
        {
            case AccessModel.Open:
                return null;
            case AccessModel.Presence:
                return await InOwnersRosterAsync(node, entity, item => item.HasFrom, ct).ConfigureAwait(false)
                    ? null
                    : PubSubProtocol.Error(StanzaErrorCondition.NotAuthorized, "presence-subscription-required", "subscribe to the owner's presence first");
            case AccessModel.Roster:
                var groups = node.Config.RosterGroups;
                return await InOwnersRosterAsync(node, entity, item => item.Groups.Any(g => groups.Contains(g, StringComparer.Ordinal)), ct).ConfigureAwait(false)
                    ? null
                    : PubSubProtocol.Error(StanzaErrorCondition.NotAuthorized, "not-in-roster-group", "not in a roster group the owner allows");
            case AccessModel.Authorize:
                return subscribing || node.IsSubscribed(entity)
                    ? null
                    : PubSubProtocol.Error(StanzaErrorCondition.NotAuthorized, "not-subscribed", "the owner must approve a subscription first");
            default:
                return PubSubProtocol.Error(StanzaErrorCondition.NotAllowed, "closed-node", "only those on the node's whitelist");
        }
    }

    /// <summary>Whether a local owner of the node has the entity in its roster, as the predicate asks.</summary>
    private async ValueTask<bool> InOwnersRosterAsync(ServiceNode node, Jid entity, Func<RosterItem, bool> predicate, CancellationToken ct)
    {
        foreach (var owner in node.Owners)
        {
            if (Jid.TryParse(owner, out var ownerJid) && ownerJid.Local is not null && Context.Router.IsLocal(ownerJid.Domain) &&
                await Context.Rosters.FindAsync(ownerJid, entity.Bare, ct).ConfigureAwait(false) is { } item && predicate(item))
            {
                return true;
            }
        }

        return false;
    }

    // ---- notifications ---------------------------------------------------------------------------------

    /// <summary>
    /// An event to every subscriber of the node (and, for items, of the collections above it whose
    /// subscriptions reach this deep, XEP-0248): one message per subscribed JID, with SHIM SubID headers
    /// when it holds several subscriptions (§6.1.6: the SubIDs tell them apart).
    /// </summary>
    private void Notify(ServiceNode node, Element payload, Outbox outbox, bool reachCollections = false)
    {
        var recipients = new Dictionary<Jid, List<string>>();
        void Add(ServiceNode from, Func<NodeSubscription, bool> wanted)
        {
            foreach (var s in from.Subscriptions.Where(s => s.State == SubscriptionState.Subscribed && s.Options.Deliver && wanted(s)))
            {
                if (!recipients.TryGetValue(s.Jid, out var ids))
                {
                    recipients[s.Jid] = ids = [];
                }

                ids.Add(s.SubId);
            }
        }

        Add(node, s => !node.Config.IsCollection || s.Options.SubscriptionType == "nodes" || payload.Name != "items");
        var depth = 1;
        for (var parent = ParentOf(node); reachCollections && parent is not null && depth <= 32; parent = ParentOf(parent), depth++)
        {
            var level = depth;
            Add(parent, s => s.Options.SubscriptionType == "items" && (level == 1 || s.Options.Depth == "all"));
        }

        foreach (var (jid, subIds) in recipients)
        {
            var message = EventMessage(jid, node.Config.NotificationType, payload.Clone());
            if (subIds.Count > 1)
            {
                var headers = message.AddChild("headers", "http://jabber.org/protocol/shim");
                foreach (var id in subIds)
                {
                    headers.AddChild("header").SetAttribute("name", "SubID").AddText(id);
                }
            }

            outbox.Add(message);
        }
    }

    private ServiceNode? ParentOf(ServiceNode node) =>
        node.Config.Collection is { } parent && _nodes.TryGetValue(parent, out var collection) ? collection : null;

    private Element EventMessage(Jid to, string type, Element payload)
    {
        var message = Message(to, type);
        message.AddChild("event", PubSubProtocol.EventNamespace).Add(payload);
        return message;
    }

    private Element Message(Jid to, string type) => new Element("message", Ns.Client)
        .SetAttribute("from", Domain)
        .SetAttribute("to", to.ToString())
        .SetAttribute("type", type == "headline" ? "headline" : null)
        .SetAttribute("id", "ps" + Interlocked.Increment(ref _nextId).ToString(CultureInfo.InvariantCulture));

    private static string NewId() => Guid.NewGuid().ToString("N");

    // ---- storage ---------------------------------------------------------------------------------------

    /// <summary>The service's nodes, read once (a failed read is tried again by the next stanza); called under the gate.</summary>
    /// <summary>Cluster mode: this node became the service's home; its nodes are read again from storage before the next request.</summary>
    public void Reload() => Volatile.Write(ref _stale, 1);

    private async ValueTask EnsureLoadedAsync(CancellationToken ct)
    {
        if (_loaded)
        {
            return;
        }

        var state = await Store.LoadAsync(Domain, ct).ConfigureAwait(false);
        foreach (var n in state.Nodes)
        {
            _nodes[n.Node] = new ServiceNode(n.Node, NodeOptions.Parse(n.Config, Settings.MaxItems));
        }

        foreach (var a in state.Affiliations)
        {
            if (_nodes.TryGetValue(a.Node, out var node) && ServiceNode.ParseAffiliation(a.Affiliation) is { } affiliation && affiliation != NodeAffiliation.None)
            {
                node.Affiliations[a.Jid] = affiliation;
            }
        }

        foreach (var s in state.Subscriptions)
        {
            if (_nodes.TryGetValue(s.Node, out var node) && Jid.TryParse(s.Jid, out var jid) && ServiceNode.ParseState(s.State) is { } subscription)
            {
                node.Subscriptions.Add(new NodeSubscription(s.SubId, jid, subscription, SubscriptionOptions.Parse(s.Options)));
            }
        }

        _loaded = true;
        Log.Info("Publish-subscribe service {Domain}: {Nodes} nodes, {Subscriptions} subscriptions loaded", Domain, state.Nodes.Count, state.Subscriptions.Count);
    }

    private Task SaveSubscriptionAsync(ServiceNode node, NodeSubscription s, CancellationToken ct) =>
        Store.SetSubscriptionAsync(Domain, new ServiceSubscriptionRecord(node.Name, s.SubId, s.Jid.ToString(), ServiceNode.StateName(s.State), s.Options.Serialize()), ct);
}
