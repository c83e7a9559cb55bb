using Xmpp.Core;
using Xmpp.Core.Addressing;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;
using Xmpp.Server.Modules.PubSub;
using Xmpp.Server.Routing;
using Xmpp.Server.Storage;

namespace Xmpp.Server.Modules.Pep;

/// <summary>
/// Personal eventing (XEP-0163): every account is a pubsub service (XEP-0060) of its own, for avatars,
/// OMEMO keys, bookmarks, nicknames and the like. Nodes are created on first publish with the
/// publish-options given (XEP-0060 §7.1.5, XEP-0223 for private data), items are durable, and
/// notifications go to the resources whose entity capabilities (XEP-0115) ask for NODE+notify and whom
/// the access model admits: the owner, presence subscribers, anyone (open), or only the owner
/// (whitelist). A resource that comes online gets the last item of each such node.
/// </summary>
[Specification("XEP-0163", "1.2.2", Note = "Every account is a PEP service: auto-create on publish, notifications to the owner's and subscribed contacts' resources whose caps ask for NODE+notify, the last item to resources that come online; durable.")]
[Specification("XEP-0060", "1.26", Note = "The PEP subset: publish (with publish-options), retract, items (max_items, by id), create, configure, default, delete, purge; access models presence, open and whitelist; pubsub#errors conditions. No explicit subscriptions, affiliations or collections.")]
[Specification("XEP-0115", "1.6", Note = "Clients' caps are resolved by disco#info once per hash and cached only when the SHA-1 hash verifies; they decide +notify.")]
[Specification("XEP-0223", "1.1.1", Note = "Private PEP nodes: whitelist access with persist_items through publish-options.")]
[Specification("XEP-0084", "1.1.4", Note = "Avatars are PEP nodes (data and metadata); tested with slixmpp's plugin.")]
[Specification("XEP-0398", "0.3.0", Note = "A PEP avatar is copied into the vCard's PHOTO and a vCard photo is published as a PEP avatar; the avatar's hash is put into the account's presence (XEP-0153) for clients that look there.")]
[Specification("XEP-0153", "1.1", Note = "vcard-temp:x:update photo hashes in presence, from the account's current avatar.")]
[Specification("XEP-0411", "1.0.0", Note = "Bookmarks stored the old way (XEP-0048 in private XML) appear as native bookmarks on PEP and the other way round, advertised as urn:xmpp:bookmarks:1#compat.")]
[Specification("XEP-0402", "1.2.0", Note = "Native bookmarks are a PEP node with the XEP's publish-options; tested with nbxmpp (Gajim).")]
public sealed partial class PepModule : IXmppModule, IKeepsStateAcrossReload
{
    public const string Namespace = PubSubProtocol.Namespace;
    public const string OwnerNamespace = PubSubProtocol.OwnerNamespace;
    public const string EventNamespace = PubSubProtocol.EventNamespace;
    public const string ErrorsNamespace = PubSubProtocol.ErrorsNamespace;

    /// <summary>What the service does, as XEP-0060 §10 names it.</summary>
    public static readonly string[] Features =
    [
        "access-open", "access-presence", "access-whitelist", "auto-create", "auto-subscribe", "config-node",
        "create-and-configure", "create-nodes", "delete-items", "delete-nodes", "filtered-notifications",
        "item-ids", "last-published", "multi-items", "persistent-items", "presence-notifications",
        "presence-subscribe", "publish", "publish-options", "purge-nodes", "retract-items", "retrieve-default",
        "retrieve-items",
    ];

    /// <summary>Each account's nodes, read once: every contact's presence asks which nodes have a last item to send.</summary>
    private System.Collections.Concurrent.ConcurrentDictionary<Jid, IReadOnlyList<PubSubNode>> _nodes = new();
    private IModuleContext _context = null!;
    private ContactCaps _caps = null!;
    private int _maxItems;
    private int _maxNodes;
    private long _nextId;

    public string Name => "pep";

    private IPubSubStore Store => _context.Storage.PubSub;

    public void TakeOver(IXmppModule previous)
    {
        if (previous is PepModule old)
        {
            _nodes = old._nodes;
            _avatarHash = old._avatarHash;
            _caps = old._caps;
        }
    }

    public void Register(IModuleContext context)
    {
        context.OnAccountArrived(bare => _nodes.TryRemove(bare, out _));
        _context = context;
        _caps = new ContactCaps(context.Router, context.Log);
        context.OnAccountArrived(_caps.Forget);
        _maxItems = context.Number("max-items", 256, min: 1);
        _maxNodes = context.Number("max-nodes", 256, min: 1);

        context.Disco.AddAccountIdentity("pubsub", "pep", null);
        context.Disco.AddFeature(Namespace, IqTarget.Bare);
        foreach (var f in Features)
        {
            context.Disco.AddFeature(Namespace + "#" + f, IqTarget.Bare);
        }

        context.Disco.AddAccountItems(VisibleNodesAsync);
        context.Disco.AddFeature(BookmarksNode + "#compat", IqTarget.Bare);
        context.Hook(PrivateStorage.PrivateStorageModule.Stored, OnPrivateStoredAsync);
        RegisterAvatarConversion(context);
        context.HandleIq("get", Namespace, "pubsub", IqTarget.Bare, (ctx, pubsub, ct) => GetAsync(ctx, pubsub, ct));
        context.HandleIq("set", Namespace, "pubsub", IqTarget.Bare, (ctx, pubsub, ct) => SetAsync(ctx, pubsub, ct));
        context.HandleIq("get", OwnerNamespace, "pubsub", IqTarget.Bare, (ctx, pubsub, ct) => OwnerAsync(ctx, pubsub, ct));
        context.HandleIq("set", OwnerNamespace, "pubsub", IqTarget.Bare, (ctx, pubsub, ct) => OwnerAsync(ctx, pubsub, ct));

        // Presence that reaches an account: its contacts' resources come and go.
        context.Hook(HookNames.Stanza("presence", Target.Bare), OnInboundPresenceAsync, priority: 1);
        context.Hook(HookNames.Stanza("presence", Target.Full), OnInboundPresenceAsync, priority: 1);

        // The account's own resources.
        context.Hook(HookNames.PresenceBroadcast, OnOwnPresenceAsync, priority: 1);
        context.Hook(HookNames.ResourceUnbound, (ctx, unused) =>
        {
            var owner = ctx.From.Bare;
            _caps.Gone(owner, ctx.From);
            if (context.Sessions.Resources(owner).Count == 0)
            {
                _caps.Forget(owner);
            }

            return ValueTask.FromResult(false);
        });

        // Answers to our caps queries.
        context.Hook(HookNames.Stanza("iq", Target.Bare), (ctx, ct) => _caps.OnResponseAsync(ctx, ct), priority: 10);
    }

    // ---- requests ------------------------------------------------------------------------------------

    private async ValueTask<Element?> GetAsync(StanzaContext ctx, Element pubsub, CancellationToken ct)
    {
        var owner = ctx.To!.Bare;
        var items = pubsub.Child("items", Namespace) ?? throw Unsupported(pubsub.FirstElement()?.Name ?? "retrieve-items");
        var nodeName = NodeName(items);
        var node = await FindNodeAsync(owner, nodeName, ct).ConfigureAwait(false);
        await CheckAccessAsync(owner, ctx.From, node.Config, ct).ConfigureAwait(false);

        var max = PubSubProtocol.MaxItems(items);
        var ids = PubSubProtocol.ItemIds(items);
        var found = await Store.GetItemsAsync(owner.Domain, owner.Local!, nodeName, max, ids.Count > 0 ? ids : null, ct).ConfigureAwait(false);
        var result = new Element("pubsub", Namespace);
        var list = result.AddChild("items").SetAttribute("node", nodeName);
        foreach (var item in found)
        {
            list.Add(ItemElement(Namespace, item, payload: true));
        }

        return result;
    }

    private async ValueTask<Element?> SetAsync(StanzaContext ctx, Element pubsub, CancellationToken ct)
    {
        var owner = ctx.To!.Bare;
        if (pubsub.Child("publish", Namespace) is { } publish)
        {
            RequireOwner(ctx);
            return await PublishAsync(owner, publish, DataForm.Values(pubsub.Child("publish-options", Namespace)?.Child("x", DataForm.Namespace)), ct).ConfigureAwait(false);
        }

        if (pubsub.Child("retract", Namespace) is { } retract)
        {
            RequireOwner(ctx);
            await RetractAsync(owner, retract, ct).ConfigureAwait(false);
            return null;
        }

        if (pubsub.Child("create", Namespace) is { } create)
        {
            RequireOwner(ctx);
            var nodeName = create.GetAttribute("node") ?? throw PubSubError(StanzaErrorCondition.NotAcceptable, "nodeid-required", "PEP nodes have names");
            var config = new NodeConfig();
            if (DataForm.Values(pubsub.Child("configure", Namespace)?.Child("x", DataForm.Namespace)) is { } values)
            {
                config = config.With(values, _maxItems, out var problem) ?? throw new StanzaErrorException(StanzaErrorCondition.NotAcceptable, problem);
            }

            await CreateAsync(owner, nodeName, config, ct).ConfigureAwait(false);
            return null;
        }

        // PEP subscriptions follow presence (XEP-0163 §4.4); explicit ones are not offered.
        throw Unsupported(pubsub.FirstElement()?.Name ?? "publish");
    }

    private async ValueTask<Element?> OwnerAsync(StanzaContext ctx, Element pubsub, CancellationToken ct)
    {
        RequireOwner(ctx);
        var owner = ctx.To!.Bare;
        var command = pubsub.FirstElement() ?? throw new StanzaErrorException(StanzaErrorCondition.BadRequest);
        if (command.Is("default", OwnerNamespace) && ctx.Type == "get")
        {
            var result = new Element("pubsub", OwnerNamespace);
            result.AddChild("default").Add(new NodeConfig().ToForm());
            return result;
        }

        var nodeName = NodeName(command);
        var node = await FindNodeAsync(owner, nodeName, ct).ConfigureAwait(false);
        switch (command.Name)
        {
            case "configure" when ctx.Type == "get":
                var result = new Element("pubsub", OwnerNamespace);
                result.AddChild("configure").SetAttribute("node", nodeName).Add(node.Config.ToForm());
                return result;
            case "configure":
                var values = DataForm.Values(command.Child("x", DataForm.Namespace)) ?? throw new StanzaErrorException(StanzaErrorCondition.BadRequest, "a configuration form is required");
                if (command.Child("x", DataForm.Namespace)!.GetAttribute("type") == "cancel")
                {
                    return null;
                }

                var config = node.Config.With(values, _maxItems, out var problem) ?? throw new StanzaErrorException(StanzaErrorCondition.NotAcceptable, problem);
                await Store.SetConfigAsync(owner.Domain, owner.Local!, nodeName, config.Serialize(), ct).ConfigureAwait(false);
                _nodes.TryRemove(owner, out _);
                return null;
            case "delete" when ctx.Type == "set":
                await Store.DeleteNodeAsync(owner.Domain, owner.Local!, nodeName, ct).ConfigureAwait(false);
                _nodes.TryRemove(owner, out _);
                if (node.Config.NotifyDelete)
                {
                    await NotifyAsync(owner, nodeName, node.Config, new Element("delete", EventNamespace).SetAttribute("node", nodeName), ct).ConfigureAwait(false);
                }

                if (nodeName == BookmarksNode)
                {
                    await MirrorToLegacyAsync(owner, ct).ConfigureAwait(false);
                }

                return null;
            case "purge" when ctx.Type == "set":
                await Store.PurgeAsync(owner.Domain, owner.Local!, nodeName, ct).ConfigureAwait(false);
                await NotifyAsync(owner, nodeName, node.Config, new Element("purge", EventNamespace).SetAttribute("node", nodeName), ct).ConfigureAwait(false);
                if (nodeName == BookmarksNode)
                {
                    await MirrorToLegacyAsync(owner, ct).ConfigureAwait(false);
                }
                return null;
            default:
                throw Unsupported(command.Name);
        }
    }

    private async ValueTask<Element> PublishAsync(Jid owner, Element publish, Dictionary<string, List<string>>? options, CancellationToken ct, bool mirror = true)
    {
        var nodeName = NodeName(publish);
        if (options is not null && DataForm.FormType(options) != NodeConfig.PublishOptionsFormType)
        {
            throw new StanzaErrorException(StanzaErrorCondition.BadRequest, "publish-options need FORM_TYPE " + NodeConfig.PublishOptionsFormType);
        }

        var items = publish.Elements().Where(e => e.Is("item", Namespace)).ToList();
        if (items.Count > 1)
        {
            throw PubSubError(StanzaErrorCondition.BadRequest, "invalid-payload", "publish one item at a time");
        }

        var payload = items.Count == 1 ? items[0].Elements().ToList() : [];
        if (payload.Count != 1)
        {
            // §7.1.3.6: a PEP node delivers payloads, so an item carries exactly one.
            throw PubSubError(StanzaErrorCondition.BadRequest, payload.Count == 0 ? "item-required" : "invalid-payload", "an item carries exactly one payload element");
        }

        var stored = await Store.GetNodeAsync(owner.Domain, owner.Local!, nodeName, ct).ConfigureAwait(false);
        NodeConfig config;
        if (stored is null)
        {
            // §7.1.4 auto-create, with the publish options as its configuration.
            config = new NodeConfig();
            if (options is not null)
            {
                config = config.With(options, _maxItems, out var problem) ?? throw PreconditionNotMet(problem);
                if (problem is not null)
                {
                    throw PreconditionNotMet(problem);
                }
            }

            await CreateAsync(owner, nodeName, config, ct, exists: false).ConfigureAwait(false);
        }
        else
        {
            config = NodeConfig.Parse(stored.Config, _maxItems);
            if (options is not null && !config.Satisfies(options, _maxItems, out var problem))
            {
                throw PreconditionNotMet(problem);
            }
        }

        var id = items[0].GetAttribute("id") is { Length: > 0 } given ? given : Guid.NewGuid().ToString("N");
        var item = new PubSubItem(id, payload[0].ToString(), owner.ToString(), DateTimeOffset.UtcNow);
        await Store.PublishAsync(owner.Domain, owner.Local!, nodeName, item, config.MaxItems, ct).ConfigureAwait(false);
        _context.Log.Debug("{Owner} published {Item} on {Node}", owner, id, nodeName);

        var eventItems = new Element("items", EventNamespace).SetAttribute("node", nodeName);
        eventItems.Add(ItemElement(EventNamespace, item, config.DeliverPayloads));
        await NotifyAsync(owner, nodeName, config, eventItems, ct).ConfigureAwait(false);
        if (mirror && nodeName == BookmarksNode)
        {
            await MirrorToLegacyAsync(owner, ct).ConfigureAwait(false);
        }

        if (nodeName == AvatarMetadataNode)
        {
            await OnAvatarMetadataAsync(owner, payload[0], fromVCard: !mirror, ct).ConfigureAwait(false);
        }

        var result = new Element("pubsub", Namespace);
        result.AddChild("publish").SetAttribute("node", nodeName).AddChild("item").SetAttribute("id", id);
        return result;
    }

    private async ValueTask RetractAsync(Jid owner, Element retract, CancellationToken ct, bool mirror = true)
    {
        var nodeName = NodeName(retract);
        var node = await FindNodeAsync(owner, nodeName, ct).ConfigureAwait(false);
        var id = retract.Child("item", Namespace)?.GetAttribute("id") ?? throw PubSubError(StanzaErrorCondition.BadRequest, "item-required", "which item?");
        if (!await Store.RetractAsync(owner.Domain, owner.Local!, nodeName, id, ct).ConfigureAwait(false))
        {
            throw new StanzaErrorException(StanzaErrorCondition.ItemNotFound);
        }

        var notify = retract.GetAttribute("notify") is { } n ? DataForm.ParseBoolean(n) == true : node.Config.NotifyRetract;
        if (notify)
        {
            var eventItems = new Element("items", EventNamespace).SetAttribute("node", nodeName);
            eventItems.AddChild("retract").SetAttribute("id", id);
            await NotifyAsync(owner, nodeName, node.Config, eventItems, ct).ConfigureAwait(false);
        }

        if (mirror && nodeName == BookmarksNode)
        {
            await MirrorToLegacyAsync(owner, ct).ConfigureAwait(false);
        }
    }

    private async ValueTask CreateAsync(Jid owner, string nodeName, NodeConfig config, CancellationToken ct, bool exists = true)
    {
        var nodes = await NodesAsync(owner, ct).ConfigureAwait(false);
        if (nodes.Count >= _maxNodes)
        {
            throw new StanzaErrorException(StanzaErrorCondition.ResourceConstraint, $"at most {_maxNodes} nodes per account");
        }

        var created = await Store.CreateNodeAsync(owner.Domain, owner.Local!, nodeName, config.Serialize(), ct).ConfigureAwait(false);
        _nodes.TryRemove(owner, out _);
        if (!created && exists)
        {
            throw new StanzaErrorException(StanzaErrorCondition.Conflict, "the node exists");
        }
    }

    private async ValueTask<IReadOnlyList<PubSubNode>> NodesAsync(Jid owner, CancellationToken ct)
    {
        if (_nodes.TryGetValue(owner, out var cached))
        {
            return cached;
        }

        var nodes = await Store.ListNodesAsync(owner.Domain, owner.Local!, ct).ConfigureAwait(false);
        if (_nodes.Count >= 100_000)
        {
            _nodes.Clear();
        }

        _nodes[owner] = nodes;
        return nodes;
    }

    private async ValueTask<(string Name, NodeConfig Config)> FindNodeAsync(Jid owner, string nodeName, CancellationToken ct)
    {
        var stored = await Store.GetNodeAsync(owner.Domain, owner.Local!, nodeName, ct).ConfigureAwait(false)
            ?? throw new StanzaErrorException(StanzaErrorCondition.ItemNotFound);
        return (nodeName, NodeConfig.Parse(stored.Config, _maxItems));
    }

    private async ValueTask<IEnumerable<Element>> VisibleNodesAsync(StanzaContext ctx, CancellationToken ct)
    {
        var owner = ctx.To!.Bare;
        var items = new List<Element>();
        foreach (var node in await NodesAsync(owner, ct).ConfigureAwait(false))
        {
            var config = NodeConfig.Parse(node.Config, _maxItems);
            if (await MaySeeAsync(owner, ctx.From, config, ct).ConfigureAwait(false))
            {
                items.Add(new Element("item", Ns.DiscoItems).SetAttribute("jid", owner.ToString()).SetAttribute("node", node.Node).SetAttribute("name", config.Title));
            }
        }

        return items;
    }

    // ---- helpers ----------------------------------------------------------------------------------------

    private static Element ItemElement(string ns, PubSubItem item, bool payload) => PubSubProtocol.ItemElement(ns, item, payload);

    private static string NodeName(Element command) => PubSubProtocol.NodeName(command);

    private static void RequireOwner(StanzaContext ctx)
    {
        if (ctx.From.Bare != ctx.To!.Bare)
        {
            throw new StanzaErrorException(StanzaErrorCondition.Forbidden, "only the account itself changes its personal nodes");
        }
    }

    private static StanzaErrorException PubSubError(StanzaErrorCondition condition, string application, string? text) =>
        PubSubProtocol.Error(condition, application, text);

    private static StanzaErrorException PreconditionNotMet(string? text) => PubSubProtocol.PreconditionNotMet(text);

    private static StanzaErrorException Unsupported(string feature) => PubSubProtocol.Unsupported(feature);
}
