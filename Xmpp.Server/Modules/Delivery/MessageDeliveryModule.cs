using Xmpp.Core.Stanzas;
using Xmpp.Server.Routing;
using Xmpp.Server.Sessions;

namespace Xmpp.Server.Modules.Delivery;

/// <summary>
/// Default delivery of messages to local accounts (RFC 6121 §8.5), at the lowest priority so that
/// carbons, archiving, blocking or offline storage can claim a message first.
/// </summary>
[Specification("RFC 6121", "8.5")]
public sealed class MessageDeliveryModule : IXmppModule
{
    public string Name => "message";

    public void Register(IModuleContext context)
    {
        context.Hook(HookNames.Stanza("message", Target.Full), (ctx, ct) =>
        {
            var session = context.Sessions.Find(ctx.To!);
            if (session is not null && session.TrySend(ctx.Stanza))
            {
                return ValueTask.FromResult(true);
            }

            // RFC 6121 §8.5.3.2.1: no such resource. Normal and chat go to the bare JID; groupchat gets an
            // error; headline (and errors) are dropped.
            return ctx.Type switch
            {
                null or "normal" or "chat" => DeliverToBareAsync(context, ctx, ct),
                "groupchat" => Bounce(ctx, StanzaErrorCondition.ServiceUnavailable, ct),
                _ => ValueTask.FromResult(true),
            };
        }, priority: -1);

        context.Hook(HookNames.Stanza("message", Target.Bare), (ctx, ct) => DeliverToBareAsync(context, ctx, ct), priority: -1);
    }

    private static async ValueTask<bool> Bounce(StanzaContext ctx, StanzaErrorCondition condition, CancellationToken ct)
    {
        await ctx.Router.BounceAsync(ctx.Stanza, new StanzaError(condition), ct).ConfigureAwait(false);
        return true;
    }

    /// <summary>RFC 6121 §8.5.2.1.1: to the available resource(s) of highest non-negative priority.</summary>
    private static ValueTask<bool> DeliverToBareAsync(IModuleContext context, StanzaContext ctx, CancellationToken ct)
    {
        var type = ctx.Type;
        var resources = context.Sessions.Resources(ctx.To!.Bare);
        var best = int.MinValue;
        foreach (var r in resources)
        {
            if (r.IsAvailable && r.Priority >= 0 && r.Priority > best)
            {
                best = r.Priority;
            }
        }

        var delivered = false;
        if (best != int.MinValue)
        {
            foreach (var r in resources)
            {
                // chat and normal go to all resources of the highest priority; RFC 6121 lets headline go to all.
                if (r.IsAvailable && (r.Priority == best || (type == "headline" && r.Priority >= 0)))
                {
                    delivered |= r.TrySend(ctx.Stanza);
                }
            }
        }

        if (delivered)
        {
            return ValueTask.FromResult(true);
        }

        // No available resource and nothing stored it (offline storage runs at a higher priority once
        // present): errors, groupchat and headline are dropped silently, the rest bounced (RFC 6121 §8.5.2.2).
        return type is "error" or "groupchat" or "headline"
            ? ValueTask.FromResult(true)
            : Bounce(ctx, StanzaErrorCondition.ServiceUnavailable, ct);
    }
}
