using Xmpp.Core;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;

namespace Xmpp.Server.Modules.Disco;

/// <summary>
/// XEP-0030 Service Discovery on the server (identity server/im and every module's features) and on
/// accounts (identity account/registered), answered by the server for accounts that exist.
/// </summary>
[Specification("XEP-0030", "2.5rc3", Note = "disco#info and disco#items on the server and on accounts (with their PEP nodes when pep is on); for accounts, §8: disco#info only to the account and its subscribers, service-unavailable otherwise and for missing accounts, empty items for missing accounts.")]
[Specification("XEP-0115", "1.6", Note = "The server's own caps (SHA-1 over its disco#info) in the stream features, answered at NODE#VER, and the caps feature in its disco#info. No caps optimization (§8.4): presence is forwarded with its caps as sent.")]
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

        // XEP-0115 §6.3: the server announces its own caps in the stream features; saying so in disco#info is how
        // clients (Smack's EntityCapsManager) learn that it understands caps at all.
        disco.AddFeature(Xmpp.Core.Caps.EntityCapabilities.Namespace, IqTarget.Host);

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
                return ValueTask.FromResult<Element?>(HostItems(context, disco, ctx));
            }

            return NodeAsync(ctx, Ns.DiscoItems, node, disco.HostNodeItems, ct);
        });

        // XEP-0030 §8: the server answers for accounts without letting strangers harvest which exist. disco#items
        // of an account that does not exist is an empty result (with a node or not); so are the items of a node
        // asked by anyone but the owner (accounts have none of their own to show).
        context.HandleIq("get", Ns.DiscoItems, "query", IqTarget.Bare | IqTarget.AnyAccount, (ctx, payload, ct) => AccountItemsAsync(context, disco, ctx, payload, ct));

        // XEP-0030 §8: disco#info of an account is service-unavailable when it does not exist (the host's check
        // before any handler) or when the requester may not see its presence (neither the account itself nor a
        // contact with a subscription from it), with a node or not, so both cases look alike.
        context.HandleIq("get", Ns.DiscoInfo, "query", IqTarget.Bare, (ctx, payload, ct) => AccountInfoAsync(context, disco, ctx, payload, ct));
    }

    /// <summary>XEP-0030 §4.1: the server's items: the external components (XEP-0114) on subdomains of this host, as Prosody lists them, then every module's.</summary>
    private static Element HostItems(IModuleContext context, DiscoRegistry disco, Routing.StanzaContext ctx)
    {
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

        return items;
    }

    /// <summary>XEP-0030 §8: disco#items of an account (see Register: an empty result for strangers, whether the account exists or not).</summary>
    private static async ValueTask<Element?> AccountItemsAsync(IModuleContext context, DiscoRegistry disco, Routing.StanzaContext ctx, Element payload, CancellationToken ct)
    {
        var query = new Element("query", Ns.DiscoItems);
        var node = payload.GetAttribute("node");
        var own = ctx.From.Bare == ctx.To!.Bare;
        if (!own && !await context.AccountExistsAsync(ctx.To, ct).ConfigureAwait(false))
        {
            return query.SetAttribute("node", node);
        }

        if (node is not null)
        {
            return own ? throw new StanzaErrorException(StanzaErrorCondition.ItemNotFound) : query.SetAttribute("node", node);
        }

        foreach (var source in disco.AccountItems)
        {
            foreach (var item in await source(ctx, ct).ConfigureAwait(false))
            {
                query.Add(item);
            }
        }

        return query;
    }

    /// <summary>XEP-0030 §8: disco#info of an account, for the account itself and its contacts with a subscription from it.</summary>
    private static async ValueTask<Element?> AccountInfoAsync(IModuleContext context, DiscoRegistry disco, Routing.StanzaContext ctx, Element payload, CancellationToken ct)
    {
        var to = ctx.To!.Bare;
        if (ctx.From.Bare != to && await context.Rosters.FindAsync(to, ctx.From, ct).ConfigureAwait(false) is not { HasFrom: true })
        {
            throw new StanzaErrorException(StanzaErrorCondition.ServiceUnavailable);
        }

        if (payload.GetAttribute("node") is not null)
        {
            throw new StanzaErrorException(StanzaErrorCondition.ItemNotFound);
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
