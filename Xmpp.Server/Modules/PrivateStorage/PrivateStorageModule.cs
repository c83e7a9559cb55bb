using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;

namespace Xmpp.Server.Modules.PrivateStorage;

/// <summary>
/// Private XML storage (XEP-0049): an account keeps arbitrary XML fragments on its server, each named by
/// its root element's name and namespace, readable and writable only by the account itself. Clients still
/// use it for XEP-0048 bookmarks and their own preferences.
/// </summary>
[Specification("XEP-0049", "1.2", Note = "Private XML storage per account, keyed by the root element's name and namespace; jabber: namespaces refused.")]
[Specification("XEP-0048", "1.2", Note = "Bookmarks in private storage (tested with slixmpp's plugin), kept in step with native ones when pep is on (XEP-0411).")]
public sealed class PrivateStorageModule : IXmppModule
{
    public const string Namespace = "jabber:iq:private";

    /// <summary>The store's kind for these documents.</summary>
    public const string Kind = "private";

    /// <summary>Fired after a set was stored; the context's stanza is the iq.</summary>
    public const string Stored = "private/stored";

    public string Name => "private";

    /// <summary>The storage key of a fragment: XEP-0049 matches on the root's namespace; its name keeps two roots of one namespace apart.</summary>
    public static string Key(Element fragment) => fragment.Name + " " + fragment.Namespace;

    public void Register(IModuleContext context)
    {
        context.Disco.AddFeature(Namespace, IqTarget.Bare);
        context.HandleIq("get", Namespace, "query", IqTarget.Bare, async (ctx, query, ct) =>
        {
            var owner = Owner(ctx);
            var result = new Element("query", Namespace);
            foreach (var wanted in Fragments(query))
            {
                var xml = await context.Storage.Documents.GetAsync(owner.Domain, owner.Local!, Kind, Key(wanted), ct).ConfigureAwait(false);

                // Nothing stored: the request's own empty element comes back (§2.3).
                result.Add(xml is null ? new Element(wanted.Name, wanted.Namespace) : ElementParser.Parse(xml));
            }

            return result;
        });

        context.HandleIq("set", Namespace, "query", IqTarget.Bare, async (ctx, query, ct) =>
        {
            var owner = Owner(ctx);
            foreach (var fragment in Fragments(query))
            {
                await context.Storage.Documents.SetAsync(owner.Domain, owner.Local!, Kind, Key(fragment), fragment.ToString(), ct).ConfigureAwait(false);
            }

            // Other modules may mirror what was stored (XEP-0411 bookmarks).
            await context.FireAsync(Stored, ctx, ct).ConfigureAwait(false);
            return null;
        });
    }

    private static Xmpp.Core.Addressing.Jid Owner(Routing.StanzaContext ctx)
    {
        // §2.3: another entity asking for or setting someone's private data gets forbidden.
        if (ctx.From.Bare != ctx.To!.Bare)
        {
            throw new StanzaErrorException(StanzaErrorCondition.Forbidden, "private data belongs to its account alone");
        }

        return ctx.To.Bare;
    }

    private static List<Element> Fragments(Element query)
    {
        var fragments = query.Elements().ToList();
        if (fragments.Count == 0)
        {
            throw new StanzaErrorException(StanzaErrorCondition.NotAcceptable, "the query needs a child element in its own namespace");
        }

        foreach (var f in fragments)
        {
            // §2.3: the jabber: namespaces (jabber:client, jabber:iq:private, ...) are not storable.
            if (f.Namespace.Length == 0 || f.Namespace.StartsWith("jabber:", StringComparison.Ordinal))
            {
                throw new StanzaErrorException(StanzaErrorCondition.NotAcceptable, $"namespace '{f.Namespace}' cannot be stored");
            }
        }

        return fragments;
    }
}
