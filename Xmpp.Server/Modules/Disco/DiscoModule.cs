using Xmpp.Core;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;

namespace Xmpp.Server.Modules.Disco;

/// <summary>
/// XEP-0030 Service Discovery on the server (identity server/im and every module's features) and on
/// accounts (identity account/registered), answered by the server for accounts that exist.
/// </summary>
[Specification("XEP-0030", "2.5rc3", Note = "disco#info and disco#items on the server and on accounts (with their PEP nodes when pep is on).")]
[Specification("XEP-0115", "1.6", Note = "The server's own caps (SHA-1 over its disco#info) in the stream features, answered at NODE#VER.")]
public sealed class DiscoModule : IXmppModule
{
    /// <summary>The node of the server's XEP-0115 caps.</summary>
    public const string CapsNode = "urn:xmppserver:caps";

    public string Name => "disco";

    /// <summary>The server's disco#info: its identities, every module's features and the XEP-0128 forms.</summary>
    public static Element HostInfo(DiscoRegistry disco)
    {
        var query = new Element("query", Ns.DiscoInfo);
        foreach (var (category, type, name) in disco.HostIdentities)
        {
            query.AddChild("identity").SetAttribute("category", category).SetAttribute("type", type).SetAttribute("name", name);
        }

        foreach (var f in disco.HostFeatures)
        {
            query.AddChild("feature").SetAttribute("var", f);
        }

        foreach (var form in disco.HostExtensions)
        {
            query.Add(form);
        }

        return query;
    }

    public void Register(IModuleContext context)
    {
        var disco = context.Disco;
        disco.AddHostIdentity("server", "im", "XmppServer");
        disco.AddFeature(Ns.DiscoInfo, IqTarget.Host | IqTarget.Bare);
        disco.AddFeature(Ns.DiscoItems, IqTarget.Host | IqTarget.Bare);

        // XEP-0115 §6.3: the server's own caps in its stream features, so clients need not ask what it does;
        // a disco#info to NODE#VER answers like one without a node.
        string? ver = null;
        var caps = new Element("c", Xmpp.Core.Caps.EntityCapabilities.Namespace);
        context.AfterLoad(() =>
        {
            ver = Xmpp.Core.Caps.EntityCapabilities.Verification(HostInfo(disco));
            caps.SetAttribute("hash", "sha-1").SetAttribute("node", CapsNode).SetAttribute("ver", ver);
        });
        context.AddStreamFeature(caps);

        context.HandleIq("get", Ns.DiscoInfo, "query", IqTarget.Host, (ctx, payload, ct) =>
        {
            var node = payload.GetAttribute("node");
            if (node is null || node == CapsNode + "#" + ver)
            {
                return ValueTask.FromResult<Element?>(HostInfo(disco).SetAttribute("node", node));
            }

            return NodeAsync(ctx, Ns.DiscoInfo, node, disco.HostNodeInfo, ct);
        });

        context.HandleIq("get", Ns.DiscoItems, "query", IqTarget.Host, (ctx, payload, ct) =>
        {
            var node = payload.GetAttribute("node");
            if (node is null)
            {
                // The external components (XEP-0114) on subdomains of this host, as Prosody lists them.
                var items = new Element("query", Ns.DiscoItems);
                var suffix = "." + ctx.To!.Domain;
                foreach (var component in context.Options.Components.Where(c => c.Domain.EndsWith(suffix, StringComparison.Ordinal)))
                {
                    items.AddChild("item").SetAttribute("jid", component.Domain);
                }

                foreach (var source in disco.HostItems)
                {
                    foreach (var item in source(ctx.To.Domain))
                    {
                        items.Add(item);
                    }
                }

                return ValueTask.FromResult<Element?>(items);
            }

            return NodeAsync(ctx, Ns.DiscoItems, node, disco.HostNodeItems, ct);
        });

        context.HandleIq("get", Ns.DiscoItems, "query", IqTarget.Bare, async (ctx, payload, ct) =>
        {
            if (payload.GetAttribute("node") is not null)
            {
                throw new StanzaErrorException(StanzaErrorCondition.ItemNotFound);
            }

            var query = new Element("query", Ns.DiscoItems);
            foreach (var source in disco.AccountItems)
            {
                foreach (var item in await source(ctx, ct).ConfigureAwait(false))
                {
                    query.Add(item);
                }
            }

            return query;
        });

        context.HandleIq("get", Ns.DiscoInfo, "query", IqTarget.Bare, async (ctx, payload, ct) =>
        {
            var to = ctx.To!;
            if (payload.GetAttribute("node") is not null)
            {
                throw new StanzaErrorException(StanzaErrorCondition.ItemNotFound);
            }

            // RFC 6121 §8.5.1: the server answers for accounts that exist, and only to their owner or, later, to contacts.
            if (!await context.Storage.Users.ExistsAsync(to.Domain, to.Local!, ct).ConfigureAwait(false))
            {
                throw new StanzaErrorException(StanzaErrorCondition.ServiceUnavailable);
            }

            var query = new Element("query", Ns.DiscoInfo);
            query.AddChild("identity").SetAttribute("category", "account").SetAttribute("type", "registered");
            foreach (var (category, type, name) in disco.AccountIdentities)
            {
                query.AddChild("identity").SetAttribute("category", category).SetAttribute("type", type).SetAttribute("name", name);
            }
            foreach (var f in disco.AccountFeatures)
            {
                query.AddChild("feature").SetAttribute("var", f);
            }

            return query;
        });
    }

    /// <summary>A node of the server, answered by the first module that knows it; item-not-found otherwise.</summary>
    private static async ValueTask<Element?> NodeAsync(Routing.StanzaContext context, string ns, string node, IReadOnlyList<DiscoNodeHandler> handlers, CancellationToken cancellationToken)
    {
        foreach (var handler in handlers)
        {
            if (await handler(context, node, cancellationToken).ConfigureAwait(false) is { } children)
            {
                var query = new Element("query", ns).SetAttribute("node", node);
                foreach (var child in children)
                {
                    query.Add(child);
                }

                return query;
            }
        }

        throw new StanzaErrorException(StanzaErrorCondition.ItemNotFound);
    }
}
