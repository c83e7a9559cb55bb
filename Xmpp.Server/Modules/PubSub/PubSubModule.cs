using Xmpp.Core.Xml;
using Xmpp.Server.Config;
using Xmpp.Server.Routing;

namespace Xmpp.Server.Modules.PubSub;

/// <summary>
/// A generic publish-subscribe service (XEP-0060) on a subdomain of every host (pubsub.HOST by default),
/// for feeds, bots, IoT and clients such as Movim: nodes created by users, configured by their owners,
/// with subscriptions, affiliations, access and publish models, durable items and notifications. The
/// service domain is claimed from the router's "route/remote" ahead of federation, as the chat service's is.
/// </summary>
[Specification("XEP-0060", "1.26", Note = "The service at pubsub.HOST: node creation (named and instant, with configuration), the pubsub#node_config form and default configuration, notify_config/delete/retract; subscriptions with SubIDs (multi-subscribe), subscription options, approval by the owners for the authorize model (§8.6 forms in messages), pending and unconfigured states, one's own subscriptions and affiliations; owner management of subscriptions and affiliations (owner, publisher, publish-only, member, outcast) with notifications; access models open, presence, roster (groups), authorize, whitelist; publish models publishers, subscribers, open; publish with publish-options preconditions and auto-create; persistent and transient, payload and notification-only nodes with the §7.1.3.6 item rules; retract with notify, purge, delete with redirect; last published item on subscription; notifications with SHIM SubID headers; disco of the service, nodes (meta-data) and items; collection nodes (XEP-0248's hierarchy: discovery, and notifications of items in descendants to a collection's subscribers); the pubsub#errors conditions. Not offered: item expiry, digests, presence-based delivery, subscription leases, the get-pending command.")]
[Specification("XEP-0248", "0.5.0", Note = "Collection nodes on the pubsub service: node_type collection, pubsub#collection to place a node, disco#items of a collection, subscriptions to a collection receive its descendants' items (subscription_depth 1 or all).")]
public sealed class PubSubModule : IXmppModule, IKeepsStateAcrossReload
{
    /// <summary>Ahead of federation's claim of the same hook, behind external components.</summary>
    private const int RoutePriority = 50;

    private Dictionary<string, PubSubService> _services = new(StringComparer.Ordinal);

    public string Name => "pubsub";

    public void TakeOver(IXmppModule previous)
    {
        if (previous is not PubSubModule old)
        {
            return;
        }

        // The nodes, with their subscribers, carry on under the new generation's settings.
        foreach (var (domain, service) in _services.ToList())
        {
            if (old._services.TryGetValue(domain, out var running))
            {
                running.Context = service.Context;
                running.Settings = service.Settings;
                _services[domain] = running;
            }
        }
    }

    public void Register(IModuleContext context)
    {
        var subdomain = context.Option("subdomain") ?? "pubsub";
        var creation = (context.Option("create") ?? "local") switch
        {
            "local" => NodeCreation.Local,
            "anyone" => NodeCreation.Anyone,
            "admins" => NodeCreation.Admins,
            var other => throw new ConfigException($"module pubsub: create must be local, anyone or admins, not '{other}'"),
        };
        var settings = new PubSubSettings(
            creation,
            MaxItems: context.Number("max-items", 1000, min: 1, max: 100_000),
            MaxNodes: context.Number("max-nodes", 10_000, min: 1),
            MaxSubscriptions: context.Number("max-subscriptions", 10_000, min: 1));
        if (subdomain.Length == 0 || subdomain.Contains('@', StringComparison.Ordinal) || subdomain.Contains('/', StringComparison.Ordinal))
        {
            throw new ConfigException($"module pubsub: subdomain '{subdomain}' is not a domain label");
        }

        foreach (var host in context.Options.Hosts)
        {
            var domain = subdomain + "." + host.Name;
            if (!Xmpp.Core.Addressing.Jid.TryPrepareDomain(domain, out var prepared))
            {
                throw new ConfigException($"module pubsub: {domain} is not a valid domain");
            }

            context.ServeDomain(prepared);
            context.HomeWhole(prepared);
            _services[prepared] = new PubSubService(prepared, host.Name) { Context = context, Settings = settings };
        }

        // Cluster mode: the service came to this node (its last one left): what it loaded before may be stale.
        context.OnAccountArrived(jid =>
        {
            if (jid.Local is null && _services.TryGetValue(jid.Domain, out var service))
            {
                service.Reload();
            }
        });

        context.Hook(HookNames.RouteRemote, async (ctx, ct) =>
        {
            if (!_services.TryGetValue(ctx.To!.Domain, out var service))
            {
                return false;
            }

            await service.HandleAsync(ctx, ct).ConfigureAwait(false);
            return true;
        }, RoutePriority);

        // Listed in each host's disco#items, where clients (and XEP-0060 §5.1's discovery) look for it.
        context.Disco.AddHostItems(host => _services.Values.Where(s => s.Host == host)
            .Select(s => new Element("item", Xmpp.Core.Ns.DiscoItems).SetAttribute("jid", s.Domain).SetAttribute("name", "Publish-Subscribe")));

        context.Metrics.Gauge("xmpp_pubsub_nodes", "Nodes of the publish-subscribe services (loaded ones).", () => _services.Values.Sum(s => s.NodeCount));
    }
}
