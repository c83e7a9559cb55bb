using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;

namespace Xmpp.Server.Modules.VCard;

/// <summary>
/// vcard-temp (XEP-0054): the server keeps each account's vCard; the account sets it, anyone may read it
/// (the profile and the avatar that XEP-0153 hashes point to). Queries to a full JID go to that client.
/// </summary>
[Specification("XEP-0054", "1.2", Note = "vCards set by their owner and readable by anyone; an empty vCard removes it, and an account without one answers item-not-found to itself and service-unavailable to others, as a missing account does (§3.1). With pep on, its PHOTO and the PEP avatar are kept in step (XEP-0398).")]
public sealed class VCardModule : IXmppModule
{
    public const string Namespace = "vcard-temp";

    public const string Kind = "vcard";

    /// <summary>Fired after an account stored its vCard; the context's stanza is the iq set.</summary>
    public const string Changed = "vcard/changed";

    public string Name => "vcard";

    public void Register(IModuleContext context)
    {
        context.Disco.AddFeature(Namespace, IqTarget.Host | IqTarget.Bare);
        context.HandleIq("get", Namespace, "vCard", IqTarget.Bare, async (ctx, _, ct) =>
        {
            var owner = ctx.To!.Bare;
            var xml = await context.Storage.Documents.GetAsync(owner.Domain, owner.Local!, Kind, string.Empty, ct).ConfigureAwait(false);
            if (xml is not null)
            {
                return ElementParser.Parse(xml);
            }

            // §3.1: "If no vCard exists or the user does not exist, the server MUST return a stanza error, which
            // SHOULD be either <service-unavailable/> or <item-not-found/>". An account that does not exist got
            // service-unavailable before this handler ran (RFC 6121 §8.5.1); anyone else asking gets the same,
            // so that the answer does not tell which accounts exist. The owner learns there is none yet.
            throw new StanzaErrorException(ctx.From.Bare == owner ? StanzaErrorCondition.ItemNotFound : StanzaErrorCondition.ServiceUnavailable, "no vCard");
        });

        context.HandleIq("set", Namespace, "vCard", IqTarget.Bare, async (ctx, vcard, ct) =>
        {
            var owner = ctx.To!.Bare;
            if (ctx.From.Bare != owner)
            {
                throw new StanzaErrorException(StanzaErrorCondition.Forbidden, "only the account itself may change its vCard");
            }

            // An empty vCard removes it.
            var xml = vcard.ElementCount() == 0 && vcard.Text.Trim().Length == 0 ? null : vcard.ToString();
            await context.Storage.Documents.SetAsync(owner.Domain, owner.Local!, Kind, string.Empty, xml, ct).ConfigureAwait(false);

            // Other modules may follow the change (XEP-0398: the PEP avatar).
            await context.FireAsync(Changed, ctx, ct).ConfigureAwait(false);
            return null;
        });

        // The server's own vCard: none, but the query is understood (§3.1 allows item-not-found).
        context.HandleIq("get", Namespace, "vCard", IqTarget.Host, (_, _, _) =>
            throw new StanzaErrorException(StanzaErrorCondition.ItemNotFound));
    }
}
