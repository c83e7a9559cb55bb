using System.Collections.Concurrent;
using System.Globalization;
using Xmpp.Core;
using Xmpp.Core.Addressing;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;
using Xmpp.Server.Routing;

namespace Xmpp.Server.Modules.Push;

/// <summary>
/// Push notifications (XEP-0357): a client (Conversations, Monal, Siskin) registers its app server's
/// pubsub node; when a message arrives while that client is not connected (offline, or its session waits
/// for resumption), the server publishes a notification there with a XEP-0357 summary (the count, the
/// sender, and the body only with include-body="true"), with the publish-options the client gave (its
/// secret). An app server that answers with an error that means "gone" ends the registration.
/// </summary>
[Specification("XEP-0357", "0.4.1", Note = "Enable and disable per client; a notification with the urn:xmpp:push:summary form (count, sender; the body only if configured) for each message that arrives while the registering client is offline or waiting for resumption; registrations the app server refuses are removed.")]
public sealed class PushModule : IXmppModule, IKeepsStateAcrossReload
{
    public const string Namespace = "urn:xmpp:push:0";
    private const string Kind = "push";
    private const string SummaryForm = "urn:xmpp:push:summary";

    /// <summary>Messages pushed per registration since its client was last connected (the summary's count).</summary>
    private ConcurrentDictionary<string, int> _counts = new(StringComparer.Ordinal);
    private ConcurrentDictionary<string, (Jid Owner, string Key)> _pending = new(StringComparer.Ordinal);

    /// <summary>Registrations by account, read once per account (every message to it would otherwise read the store).</summary>
    private ConcurrentDictionary<Jid, IReadOnlyList<(string Key, Element Registration)>> _registrations = new();
    private IModuleContext _context = null!;
    private bool _includeBody;
    private long _nextId;

    public string Name => "push";

    public void TakeOver(IXmppModule previous)
    {
        if (previous is PushModule old)
        {
            _counts = old._counts;
            _pending = old._pending;
            _registrations = old._registrations;
        }
    }

    public void Register(IModuleContext context)
    {
        context.OnAccountArrived(bare => _registrations.TryRemove(bare, out _));
        _context = context;
        _includeBody = context.Flag("include-body", false);

        context.Disco.AddFeature(Namespace, IqTarget.Bare);
        context.HandleIq("set", Namespace, "enable", IqTarget.Bare, async (ctx, enable, ct) =>
        {
            var owner = Own(ctx);
            var (service, node) = ServiceOf(enable);
            var registration = new Element("enable", Namespace)
                .SetAttribute("jid", service.ToString()).SetAttribute("node", node).SetAttribute("resource", ctx.From.Resource);
            if (enable.Child("x", DataForm.Namespace) is { } options)
            {
                registration.Add(options);
            }

            await context.Storage.Documents.SetAsync(owner.Domain, owner.Local!, Kind, Key(service, node), registration.ToString(), ct).ConfigureAwait(false);
            _registrations.TryRemove(owner, out _);
            context.Log.Info("{User} enabled push notifications to {Service} for {Resource}", owner, service, ctx.From.Resource);
            return null;
        });
        context.HandleIq("set", Namespace, "disable", IqTarget.Bare, async (ctx, disable, ct) =>
        {
            var owner = Own(ctx);
            if (!Jid.TryParse(disable.GetAttribute("jid"), out var service))
            {
                throw new StanzaErrorException(StanzaErrorCondition.BadRequest, "disable needs the push service's jid");
            }

            var node = disable.GetAttribute("node");
            foreach (var (key, _) in await context.Storage.Documents.ListAsync(owner.Domain, owner.Local!, Kind, ct).ConfigureAwait(false))
            {
                if (key == Key(service, node ?? string.Empty) || (node is null && key.StartsWith(service + " ", StringComparison.Ordinal)))
                {
                    await context.Storage.Documents.SetAsync(owner.Domain, owner.Local!, Kind, key, null, ct).ConfigureAwait(false);
                }
            }

            _registrations.TryRemove(owner, out _);
            return null;
        });

        context.Hook(HookNames.Stanza("message", Target.Full), OnMessageAsync, priority: 0);
        context.Hook(HookNames.Stanza("message", Target.Bare), OnMessageAsync, priority: 0);
        context.Hook(HookNames.Stanza("iq", Target.Bare), OnResponseAsync, priority: 10);
        context.Hook(HookNames.ResourceBound, (ctx, unused) =>
        {
            // The client is back: its count starts again.
            foreach (var key in _counts.Keys.Where(k => k.StartsWith(ctx.From.Bare + "\n", StringComparison.Ordinal)).ToList())
            {
                _counts.TryRemove(key, out _);
            }

            return ValueTask.FromResult(false);
        });
    }

    private static string Key(Jid service, string node) => service + " " + node;

    private static (Jid Service, string Node) ServiceOf(Element command)
    {
        if (!Jid.TryParse(command.GetAttribute("jid"), out var service) || command.GetAttribute("node") is not { Length: > 0 } node)
        {
            throw new StanzaErrorException(StanzaErrorCondition.BadRequest, "enable needs the push service's jid and node");
        }

        return (service, node);
    }

    private static Jid Own(StanzaContext ctx) =>
        ctx.Origin is not null && ctx.From.Bare == ctx.To!.Bare && ctx.From.Resource is not null
            ? ctx.To.Bare
            : throw new StanzaErrorException(StanzaErrorCondition.NotAllowed, "push is enabled by a client of the account");

    /// <summary>A message worth waking a phone for: one with a body or an encrypted payload.</summary>
    public static bool Wakes(Element message) =>
        message.GetAttribute("type") is not ("groupchat" or "headline" or "error") &&
        (message.Child("body", message.Namespace) is not null ||
         message.Elements().Any(e => e.Namespace is "eu.siacs.conversations.axolotl" or "urn:xmpp:omemo:2" or "urn:xmpp:openpgp:0"));

    private async ValueTask<bool> OnMessageAsync(StanzaContext ctx, CancellationToken ct)
    {
        var owner = ctx.To!.Bare;
        if (ctx.From.Bare == owner || !Wakes(ctx.Stanza))
        {
            return false;
        }

        if (!_registrations.TryGetValue(owner, out var registrations))
        {
            var stored = await _context.Storage.Documents.ListAsync(owner.Domain, owner.Local!, Kind, ct).ConfigureAwait(false);
            registrations = stored.Select(kv => (kv.Key, ElementParser.Parse(kv.Value))).ToList();
            if (_registrations.Count >= 200_000)
            {
                _registrations.Clear();
            }

            _registrations[owner] = registrations;
        }

        if (registrations.Count == 0)
        {
            return false;
        }

        foreach (var (key, registration) in registrations)
        {
            var resource = registration.GetAttribute("resource");
            var session = resource is null ? null : _context.Sessions.Find(owner.WithResource(resource));

            // Connected clients get the message itself.
            if (session is not null && !session.IsHibernating)
            {
                continue;
            }

            await NotifyAsync(owner, key, registration, ctx, ct).ConfigureAwait(false);
        }

        return false;
    }

    private async ValueTask NotifyAsync(Jid owner, string key, Element registration, StanzaContext ctx, CancellationToken ct)
    {
        var count = _counts.AddOrUpdate(owner + "\n" + key, 1, (_, n) => n + 1);
        var summary = DataForm.Create("submit", SummaryForm);
        DataForm.AddField(summary, "message-count", null, count.ToString(CultureInfo.InvariantCulture));
        DataForm.AddField(summary, "last-message-sender", null, ctx.From.ToString());
        if (_includeBody && ctx.Stanza.ChildText("body", ctx.Stanza.Namespace) is { } body)
        {
            DataForm.AddField(summary, "last-message-body", null, body);
        }

        var id = "push" + Interlocked.Increment(ref _nextId).ToString(CultureInfo.InvariantCulture);
        var iq = new Element("iq", Ns.Client).SetAttribute("type", "set").SetAttribute("id", id)
            .SetAttribute("from", owner.ToString()).SetAttribute("to", registration.GetAttribute("jid"));
        var pubsub = iq.AddChild("pubsub", "http://jabber.org/protocol/pubsub");
        pubsub.AddChild("publish").SetAttribute("node", registration.GetAttribute("node"))
            .AddChild("item").AddChild("notification", Namespace).Add(summary);
        if (registration.Child("x", DataForm.Namespace) is { } options)
        {
            pubsub.AddChild("publish-options").Add(options.Clone());
        }

        if (_pending.Count > 10_000)
        {
            _pending.Clear();
        }

        _pending[id] = (owner, key);
        _context.Log.Debug("Push notification {Id} for {User} to {Service}", id, owner, registration.GetAttribute("jid"));
        await _context.Router.RouteAsync(iq, owner, null, ct).ConfigureAwait(false);
    }

    /// <summary>The app server's answer: an error that means the registration is gone removes it (§6).</summary>
    private async ValueTask<bool> OnResponseAsync(StanzaContext ctx, CancellationToken ct)
    {
        if (ctx.Stanza.GetAttribute("id") is not { } id || !id.StartsWith("push", StringComparison.Ordinal) || !_pending.TryRemove(id, out var p) || p.Owner != ctx.To!.Bare)
        {
            return false;
        }

        var condition = ctx.Stanza.Child("error", ctx.Stanza.Namespace)?.FirstElement()?.Name;
        if (ctx.Type == "error" && condition is "item-not-found" or "not-authorized" or "forbidden" or "registration-required" or "service-unavailable")
        {
            _context.Log.Info("Push service of {User} refused a notification ({Condition}): registration removed", p.Owner, condition);
            await _context.Storage.Documents.SetAsync(p.Owner.Domain, p.Owner.Local!, Kind, p.Key, null, ct).ConfigureAwait(false);
            _registrations.TryRemove(p.Owner, out _);
        }

        return true;
    }
}
