using Xmpp.Core.Stanzas;
using Xmpp.Server.Routing;
using Xmpp.Server.Sessions;

namespace Xmpp.Server.Modules.Delivery;

/// <summary>
/// Delivery of messages to local accounts (RFC 6121 §8.5), at the lowest priority so that carbons,
/// archiving or blocking can claim a message first. A message that no available resource takes is
/// offered to offline storage ("message/offline/handle") and bounced with service-unavailable when
/// nothing stores it.
/// </summary>
[Specification("RFC 6121", "§8.5", Note = "Message delivery rules for full and bare JIDs: highest priority resources, headline to all non-negative ones, offline storage or service-unavailable; to a full JID that is not connected, only chat messages go to the bare JID (§8.5.3.2.1), normal and groupchat ones get service-unavailable.")]
public sealed class MessageDeliveryModule : IXmppModule
{
    public string Name => "message";

    public void Register(IModuleContext context)
    {
        // §8.5.3.2.1, before archiving and carbons see it: a message to a full JID that is not connected is
        // treated as if sent to the bare JID only when it is a chat; normal and groupchat ones are refused with
        // service-unavailable (the RFC's "return an error stanza", so the sender learns it was not delivered),
        // headline and error ones are dropped.
        context.Hook(HookNames.Stanza("message", Target.Full), (ctx, ct) =>
            context.Sessions.Find(ctx.To!) is not null ? ValueTask.FromResult(false) : ctx.Type switch
            {
                "chat" => ValueTask.FromResult(false),
                "headline" or "error" => ValueTask.FromResult(true),
                _ => Bounce(ctx, StanzaErrorCondition.ServiceUnavailable, null, ct),
            }, priority: 100);

        context.Hook(HookNames.Stanza("message", Target.Full), (ctx, ct) =>
        {
            var session = context.Sessions.Find(ctx.To!);
            if (session is not null && session.TrySend(ctx.Stanza))
            {
                return ValueTask.FromResult(true);
            }

            // The resource went away since the check above (or its queue refused): as for the bare JID.
            return DeliverToBareAsync(context, ctx, ct);
        }, priority: -1);

        context.Hook(HookNames.Stanza("message", Target.Bare), (ctx, ct) => DeliverToBareAsync(context, ctx, ct), priority: -1);
    }

    /// <summary>
    /// §8.5.2.1: the resources a message to the bare JID goes to: normal and chat to every available
    /// resource of the highest non-negative priority, headline to all with non-negative priority.
    /// </summary>
    public static List<IClientSession> BareRecipients(IReadOnlyList<IClientSession> resources, string? type)
    {
        var best = int.MinValue;
        foreach (var r in resources)
        {
            if (r.IsAvailable && r.Priority >= 0 && r.Priority > best)
            {
                best = r.Priority;
            }
        }

        var recipients = new List<IClientSession>();
        if (best != int.MinValue)
        {
            foreach (var r in resources)
            {
                if (r.IsAvailable && (r.Priority == best || (type == "headline" && r.Priority >= 0)))
                {
                    recipients.Add(r);
                }
            }
        }

        return recipients;
    }

    private static async ValueTask<bool> Bounce(StanzaContext ctx, StanzaErrorCondition condition, string? text, CancellationToken ct)
    {
        await ctx.Router.BounceAsync(ctx.Stanza, new StanzaError(condition, text), ct).ConfigureAwait(false);
        return true;
    }

    /// <summary>§8.5.2: to the account; unknown types count as normal (RFC 6121 §5.2.2).</summary>
    private static async ValueTask<bool> DeliverToBareAsync(IModuleContext context, StanzaContext ctx, CancellationToken ct)
    {
        var type = ctx.Type;
        var owner = ctx.To!.Bare;
        var resources = context.Sessions.Resources(owner);
        if (type == "error")
        {
            // §8.5.2.1.1 and §8.5.2.2.1: an error to a bare JID is silently ignored.
            return true;
        }

        if (resources.Count == 0 && !await context.AccountExistsAsync(owner, ct).ConfigureAwait(false))
        {
            // §8.5.1: no such account.
            return await Bounce(ctx, StanzaErrorCondition.ServiceUnavailable, null, ct).ConfigureAwait(false);
        }

        if (type == "groupchat")
        {
            // §8.5.2.1.1: never delivered to an account's resources.
            return await Bounce(ctx, StanzaErrorCondition.ServiceUnavailable, null, ct).ConfigureAwait(false);
        }

        var delivered = false;
        foreach (var r in BareRecipients(resources, type))
        {
            delivered |= r.TrySend(ctx.Stanza);
        }

        if (delivered || type == "headline")
        {
            // §8.5.2.2.1: a headline nobody can see now is dropped.
            return true;
        }

        // §8.5.2.2.1: no available resource with non-negative priority: offline storage, else an error.
        if (await context.FireAsync(HookNames.MessageOffline, ctx, ct).ConfigureAwait(false))
        {
            return true;
        }

        return await Bounce(ctx, StanzaErrorCondition.ServiceUnavailable, null, ct).ConfigureAwait(false);
    }
}
