using System.Globalization;
using Xmpp.Core.Xml;
using Xmpp.Server.Routing;
using Xmpp.Server.Sessions;

namespace Xmpp.Server.Modules.Presence;

/// <summary>
/// Presence (RFC 6121 §4), the part that needs no roster: a client's own availability and priority,
/// the broadcast of its presence to the account's own resources (§4.2.2, §4.4.2), directed presence to
/// local JIDs (§4.6), and unavailable presence to the other resources when a session ends.
/// Subscriptions, probes and contact broadcast build on the roster (the IM core work).
/// </summary>
[Specification("RFC 6121", "4")]
public sealed class PresenceModule : IXmppModule
{
    public string Name => "presence";

    public void Register(IModuleContext context)
    {
        context.Hook(HookNames.PresenceBroadcast, (ctx, ct) =>
        {
            var session = ctx.Origin;
            var type = ctx.Type;
            if (session is null || (type is not null && type != "unavailable"))
            {
                return ValueTask.FromResult(true);
            }

            var stanza = ctx.Stanza;
            if (type is null)
            {
                session.IsAvailable = true;
                session.Priority = ParsePriority(stanza);
                session.LastPresence = stanza;
            }
            else
            {
                session.IsAvailable = false;
                session.LastPresence = null;
            }

            // Every available resource of the account, the sender included, sees the change.
            foreach (var r in context.Sessions.Resources(session.Jid.Bare))
            {
                if (r.IsAvailable || ReferenceEquals(r, session))
                {
                    var copy = stanza.Clone();
                    copy.SetAttribute("to", r.Jid.ToString());
                    r.TrySend(copy);
                }
            }

            return ValueTask.FromResult(true);
        });

        context.Hook(HookNames.Stanza("presence", Target.Full), (ctx, _) =>
        {
            context.Sessions.Find(ctx.To!)?.TrySend(ctx.Stanza);
            return ValueTask.FromResult(true);
        }, priority: -1);

        context.Hook(HookNames.Stanza("presence", Target.Bare), (ctx, _) =>
        {
            // Directed presence to an account: its available resources (RFC 6121 §4.6.3 with §8.5.2.1.1).
            foreach (var r in context.Sessions.Resources(ctx.To!))
            {
                if (r.IsAvailable)
                {
                    r.TrySend(ctx.Stanza);
                }
            }

            return ValueTask.FromResult(true);
        }, priority: -1);

        context.Hook(HookNames.ResourceUnbound, (ctx, _) =>
        {
            var session = ctx.Origin!;
            if (session.IsAvailable)
            {
                session.IsAvailable = false;
                foreach (var r in context.Sessions.Resources(session.Jid.Bare))
                {
                    if (r.IsAvailable)
                    {
                        r.TrySend(new Element("presence", Xmpp.Core.Ns.Client)
                            .SetAttribute("type", "unavailable")
                            .SetAttribute("from", session.Jid.ToString())
                            .SetAttribute("to", r.Jid.ToString()));
                    }
                }
            }

            return ValueTask.FromResult(false);
        });
    }

    /// <summary>RFC 6121 §4.7.2.3: an integer from -128 to 127, 0 when absent.</summary>
    public static int ParsePriority(Element presence)
    {
        var text = presence.ChildText("priority", presence.Namespace);
        return text is not null && int.TryParse(text.Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var p)
            ? Math.Clamp(p, -128, 127)
            : 0;
    }
}
