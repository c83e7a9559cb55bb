using Xmpp.Core.Addressing;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;
using Xmpp.Server.Modules.Delivery;
using Xmpp.Server.Routing;
using Xmpp.Server.Sessions;

namespace Xmpp.Server.Modules.Carbons;

/// <summary>
/// Message carbons (XEP-0280): every resource of an account that enabled carbons gets a copy of the
/// instant messages its other resources send (&lt;sent/&gt;) and of those addressed to the account that
/// the RFC 6121 delivery rules gave to another resource (&lt;received/&gt;), so all devices see both sides.
/// </summary>
[Specification("XEP-0280", "1.0.1", Note = "Sent and received carbons by the XEP's eligibility rules (chat, normal with a body, chat states, receipts, markers, encrypted payloads; not groupchat or messages from MUC), <private/> honoured and stripped.")]
public sealed class CarbonsModule : IXmppModule
{
    public const string Namespace = "urn:xmpp:carbons:2";

    private const string EnabledKey = "carbons";
    private const string HintsNamespace = "urn:xmpp:hints";
    private const string MucUserNamespace = "http://jabber.org/protocol/muc#user";

    /// <summary>Payloads of instant messaging without a body (§6 leaves the list to the server; these follow Prosody's).</summary>
    private static readonly HashSet<string> ImPayloads = new(StringComparer.Ordinal)
    {
        "http://jabber.org/protocol/chatstates",
        "urn:xmpp:receipts",
        "urn:xmpp:chat-markers:0",
        "urn:xmpp:jingle-message:0",
        "urn:xmpp:jingle-message:1",
        "urn:xmpp:reactions:0",
        "urn:xmpp:message-retract:1",
        "urn:xmpp:fasten:0",
        "eu.siacs.conversations.axolotl",
        "urn:xmpp:omemo:2",
    };

    public string Name => "carbons";

    public static bool IsEnabled(IClientSession session) => session.Items.Has(EnabledKey);

    public void Register(IModuleContext context)
    {
        context.Disco.AddFeature(Namespace, IqTarget.Host);
        foreach (var (element, enable) in new[] { ("enable", true), ("disable", false) })
        {
            context.HandleIq("set", Namespace, element, IqTarget.Host | IqTarget.Bare, (ctx, _, _) =>
            {
                // §4, §5: only a client of this server, for itself.
                if (ctx.Origin is null || ctx.To!.Local is not null && ctx.To.Bare != ctx.From.Bare)
                {
                    throw new StanzaErrorException(StanzaErrorCondition.NotAllowed, "carbons are set by a client of this server for itself");
                }

                // §9.1: enabling twice is not an error.
                ctx.Origin.Items.Set(EnabledKey, enable ? EnabledKey : null);
                return ValueTask.FromResult<Element?>(null);
            });
        }

        // XEP-0386: <enable xmlns='urn:xmpp:carbons:2'/> inside a Bind2 request.
        context.Shared<Bind2.Bind2Features>().Add(Namespace, (_, session, e) =>
        {
            if (e.Name == "enable")
            {
                session.Items.Set(EnabledKey, EnabledKey);
            }

            return null;
        });

        // §7: copies of what a resource sends, to its account's other carbons-enabled resources.
        context.Hook(HookNames.MessageOutbound, (ctx, _) =>
        {
            if (IsEligible(ctx.Stanza, outgoing: true))
            {
                foreach (var other in context.Sessions.Resources(ctx.From.Bare))
                {
                    if (!ReferenceEquals(other, ctx.Origin) && IsEnabled(other))
                    {
                        other.TrySend(Carbon("sent", ctx.Stanza, other.Jid));
                    }
                }
            }

            return ValueTask.FromResult(false);
        }, priority: 10);

        // §6: copies of what reaches the account, to the carbons-enabled resources the delivery rules skip.
        // Before delivery (which runs at -1), and it never claims the message.
        context.Hook(HookNames.Stanza("message", Target.Full), (ctx, _) => CopyReceived(context, ctx), priority: 1);
        context.Hook(HookNames.Stanza("message", Target.Bare), (ctx, _) => CopyReceived(context, ctx), priority: 1);
    }

    private static ValueTask<bool> CopyReceived(IModuleContext context, StanzaContext ctx)
    {
        var message = ctx.Stanza;
        var resources = context.Sessions.Resources(ctx.To!.Bare);
        if (message.Child("private", Namespace) is not null)
        {
            // §8: no copies, and the recipient's server SHOULD remove the element (from the copy that is delivered).
            var delivered = message.Copy();
            delivered.RemoveChildren("private", Namespace);
            ctx.Stanza = delivered;
            return ValueTask.FromResult(false);
        }

        // A message between two resources of one account was copied as sent already.
        if (ctx.From.Bare == ctx.To.Bare || !resources.Any(IsEnabled) || !IsEligible(message, outgoing: false))
        {
            return ValueTask.FromResult(false);
        }

        var direct = ctx.To.Resource is null ? null : context.Sessions.Find(ctx.To);
        var getting = direct is not null ? [direct] : MessageDeliveryModule.BareRecipients(resources, ctx.Type);
        foreach (var r in resources)
        {
            if (IsEnabled(r) && !getting.Contains(r))
            {
                r.TrySend(Carbon("received", message, r.Jid));
            }
        }

        return ValueTask.FromResult(false);
    }

    /// <summary>§6's suggested rules, and the hints of XEP-0334.</summary>
    public static bool IsEligible(Element message, bool outgoing)
    {
        var type = message.GetAttribute("type") ?? "normal";
        if (type is "groupchat" or "headline" or "error" ||
            message.Child("private", Namespace) is not null ||
            message.Child("no-copy", HintsNamespace) is not null ||
            message.Child("sent", Namespace) is not null ||
            message.Child("received", Namespace) is not null)
        {
            return false;
        }

        // Sent by a MUC room or service, private messages included: not eligible. A private message a user
        // sends to an occupant is, so that the user's other devices see it.
        if (!outgoing && message.Child("x", MucUserNamespace) is not null)
        {
            return false;
        }

        if (type == "chat" || message.Child("body", message.Namespace) is not null)
        {
            return true;
        }

        return message.Elements().Any(e => ImPayloads.Contains(e.Namespace));
    }

    /// <summary>§6, §7: from the bare JID, to the full JID, of the original's type, the original forwarded (XEP-0297).</summary>
    private static Element Carbon(string direction, Element message, Jid to)
    {
        var carbon = new Element("message", message.Namespace)
            .SetAttribute("from", to.Bare.ToString())
            .SetAttribute("to", to.ToString())
            .SetAttribute("type", message.GetAttribute("type"));
        carbon.AddChild(direction, Namespace).Add(Forwarded.Wrap(message));
        return carbon;
    }
}
