using Xmpp.Server.Routing;

namespace Xmpp.Server.Modules.Delivery;

/// <summary>
/// Iq stanzas to a full JID go to that session (RFC 6121 §8.5.3.1); to a missing resource they get
/// service-unavailable (RFC 6121 §8.5.3.2.1, done by the router when nobody handles them).
/// Results and errors addressed to the server or an account are consumed silently.
/// </summary>
[Specification("RFC 6121", "§8.5.3", Note = "Iq to a full JID goes to that resource; to a missing one, service-unavailable.")]
public sealed class IqDeliveryModule : IXmppModule
{
    public string Name => "iq";

    public void Register(IModuleContext context)
    {
        context.Hook(HookNames.Stanza("iq", Target.Full), (ctx, _) =>
        {
            var session = context.Sessions.Find(ctx.To!);
            if (session is not null && session.TrySend(ctx.Stanza))
            {
                return ValueTask.FromResult(true);
            }

            return ValueTask.FromResult(false);
        }, priority: -1);

        static ValueTask<bool> ConsumeResults(StanzaContext ctx, CancellationToken ct) =>
            ValueTask.FromResult(ctx.Type is "result" or "error");
        context.Hook(HookNames.Stanza("iq", Target.Bare), ConsumeResults, priority: -1);
        context.Hook(HookNames.Stanza("iq", Target.Host), ConsumeResults, priority: -1);
    }
}
