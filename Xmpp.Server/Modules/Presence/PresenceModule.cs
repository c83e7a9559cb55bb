using System.Globalization;
using Xmpp.Core;
using Xmpp.Core.Addressing;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;
using Xmpp.Server.Modules.Roster;
using Xmpp.Server.Routing;
using Xmpp.Server.Sessions;
using Xmpp.Server.Storage;

namespace Xmpp.Server.Modules.Presence;

/// <summary>
/// Presence (RFC 6121 §3 and §4): subscriptions with the state tables of Appendix A and pre-approval,
/// initial presence with broadcast to subscribers and probes of subscriptions, answers to probes,
/// broadcast of changes, directed presence, and unavailable presence to every subscriber and directed
/// recipient when a resource goes offline, however its session ends. The time and status of the last
/// logout are kept for probe answers and XEP-0012.
/// </summary>
[Specification("RFC 6121", "§3, §4", Note = "Presence subscriptions with every state of Appendix A (none/to/from/both, pending in/out) and pre-approval (§3.4); initial presence, probes, broadcast, directed presence, priority, and unavailable presence to subscribers and directed recipients on every kind of session end.")]
[Specification("XEP-0203", "2.0", Note = "Delay stamps on probe answers for offline contacts (when they left).")]
public sealed class PresenceModule : IXmppModule
{
    private IModuleContext _context = null!;

    public string Name => "presence";

    private IStanzaRouter Router => _context.Router;

    private ISessionRegistry Sessions => _context.Sessions;

    private RosterManager Rosters => _context.Rosters;

    public void Register(IModuleContext context)
    {
        _context = context;

        // RFC 6121 §3.4: subscription pre-approval.
        context.AddStreamFeature(new Element("sub", "urn:xmpp:features:pre-approval"));
        context.Hook(HookNames.PresenceBroadcast, OnBroadcastAsync);
        context.Hook(HookNames.PresenceOutbound, OnOutboundAsync);
        context.Hook(HookNames.Stanza("presence", Target.Bare), OnInboundAsync, priority: -1);
        context.Hook(HookNames.Stanza("presence", Target.Full), OnInboundAsync, priority: -1);
        context.Hook(HookNames.Stanza("presence", Target.Host), (_, _) => ValueTask.FromResult(true), priority: -1);
        context.Hook(HookNames.ResourceUnbound, OnUnboundAsync);
    }

    /// <summary>RFC 6121 §4.7.2.3: an integer from -128 to 127, 0 when absent.</summary>
    public static int ParsePriority(Element presence)
    {
        var text = presence.ChildText("priority", presence.Namespace);
        return text is not null && int.TryParse(text.Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var p)
            ? Math.Clamp(p, -128, 127)
            : 0;
    }

    // ---- presence from the user's own client without 'to' (§4.2, §4.4, §4.5) ----------------------------

    private async ValueTask<bool> OnBroadcastAsync(StanzaContext ctx, CancellationToken ct)
    {
        var session = ctx.Origin;
        if (session is null)
        {
            return true;
        }

        switch (ctx.Type)
        {
            case null:
                await AvailableAsync(session, ctx, ct).ConfigureAwait(false);
                break;
            case "unavailable":
                await UnavailableAsync(session, ctx.Stanza, ct).ConfigureAwait(false);
                break;
            default:
                // Subscription stanzas and probes need a 'to'; an error without one means nothing.
                break;
        }

        return true;
    }

    private async ValueTask AvailableAsync(IClientSession session, StanzaContext ctx, CancellationToken ct)
    {
        var stanza = ctx.Stanza;
        var wasAvailable = session.IsAvailable;
        var oldPriority = session.Priority;
        session.Priority = ParsePriority(stanza);
        session.LastPresence = stanza;
        session.IsAvailable = true;
        var owner = session.Jid.Bare;
        var roster = await Rosters.GetAsync(owner, ct).ConfigureAwait(false);

        // §4.2.2 / §4.4.2: to every contact subscribed to the user and to all the user's available resources.
        // The stanza is frozen: each contact gets a shallow copy with its own 'to', sharing the children,
        // and the router is given the addresses parsed already.
        foreach (var contact in roster.SubscriberJids)
        {
            await Router.RouteParsedAsync(stanza.Copy().SetAttribute("to", contact.ToString()), session.Jid, contact, ct).ConfigureAwait(false);
        }

        foreach (var r in Sessions.Resources(owner))
        {
            if (r.IsAvailable)
            {
                r.TrySend(stanza.Copy().SetAttribute("to", r.Jid.ToString()));
            }
        }

        if (!wasAvailable)
        {
            // §4.2.2: probe the contacts the user is subscribed to (from the full JID, so that only the
            // new resource gets the answers), and show it the account's other available resources.
            foreach (var contact in roster.SubscriptionJids)
            {
                var probe = new Element("presence", Ns.Client)
                    .SetAttribute("type", "probe")
                    .SetAttribute("from", session.Jid.ToString())
                    .SetAttribute("to", contact.ToString());
                await Router.RouteParsedAsync(probe, session.Jid, contact, ct).ConfigureAwait(false);
            }

            foreach (var r in Sessions.Resources(owner))
            {
                if (!ReferenceEquals(r, session) && r.IsAvailable && r.LastPresence is { } other)
                {
                    session.TrySend(other.Copy().SetAttribute("to", session.Jid.ToString()));
                }
            }

            // §3.1.3: subscription requests that arrived while the user was offline (or unanswered).
            foreach (var item in roster.Items.Values)
            {
                if (item is { PendingIn: true, PendingInRequest: { } request })
                {
                    session.TrySend(ParseStored(request, item.Jid, owner));
                }
            }
        }

        if (session.Priority >= 0 && (!wasAvailable || oldPriority < 0))
        {
            await _context.FireAsync(HookNames.PresenceInitial, ctx, ct).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// §4.5.2: unavailable to the subscribers (when the resource was available), to everyone that got
    /// directed presence (§4.6.3), and to the account's other available resources.
    /// </summary>
    private async ValueTask UnavailableAsync(IClientSession session, Element stanza, CancellationToken ct)
    {
        var wasAvailable = session.IsAvailable;
        session.IsAvailable = false;
        session.LastPresence = null;
        var owner = session.Jid.Bare;
        var targets = new HashSet<Jid>();
        if (wasAvailable)
        {
            var roster = await Rosters.GetAsync(owner, ct).ConfigureAwait(false);
            targets.UnionWith(roster.SubscriberJids);
        }

        targets.UnionWith(session.DirectedPresence);
        foreach (var target in session.DirectedPresence)
        {
            _context.DirectedPresence(session.Jid, target, false);
        }

        session.DirectedPresence.Clear();
        foreach (var target in targets)
        {
            await Router.RouteParsedAsync(stanza.Copy().SetAttribute("to", target.ToString()), session.Jid, target, ct).ConfigureAwait(false);
        }

        var othersAvailable = false;
        foreach (var r in Sessions.Resources(owner))
        {
            if (r.IsAvailable || ReferenceEquals(r, session))
            {
                othersAvailable |= r.IsAvailable;
                r.TrySend(stanza.Copy().SetAttribute("to", r.Jid.ToString()));
            }
        }

        if (wasAvailable && !othersAvailable)
        {
            var status = stanza.ChildText("status", stanza.Namespace);
            await _context.Storage.LastActivity.SetAsync(owner.Domain, owner.Local!, new Storage.LastActivity(DateTimeOffset.UtcNow, status), ct).ConfigureAwait(false);
        }
    }

    private async ValueTask<bool> OnUnboundAsync(StanzaContext ctx, CancellationToken ct)
    {
        var session = ctx.Origin!;

        // However the session ended (closing tag, stream error, dropped connection, idle timeout), the
        // server speaks for the client (RFC 6121 §4.5.3.2 / §4.6.3).
        if (session.IsAvailable || session.DirectedPresence.Count > 0)
        {
            var unavailable = new Element("presence", Ns.Client)
                .SetAttribute("type", "unavailable")
                .SetAttribute("from", session.Jid.ToString());
            await UnavailableAsync(session, unavailable, ct).ConfigureAwait(false);
        }

        if (Sessions.Resources(session.Jid.Bare).Count == 0)
        {
            await Rosters.EvictAsync(session.Jid).ConfigureAwait(false);
        }

        return false;
    }

    // ---- presence with 'to' from the user's own client, before routing --------------------------------

    private async ValueTask<bool> OnOutboundAsync(StanzaContext ctx, CancellationToken ct)
    {
        var type = ctx.Type;
        switch (type)
        {
            case null:
                // §4.6.2: directed presence is remembered so that the recipient hears when the user leaves.
                if (ctx.Origin!.DirectedPresence.Add(ctx.To!))
                {
                    _context.DirectedPresence(ctx.Origin.Jid, ctx.To!, true);
                }

                return false;
            case "unavailable":
                if (ctx.Origin!.DirectedPresence.Remove(ctx.To!))
                {
                    _context.DirectedPresence(ctx.Origin.Jid, ctx.To!, false);
                }

                return false;
            case "subscribe" or "subscribed" or "unsubscribe" or "unsubscribed":
                await OutboundSubscriptionAsync(ctx, type, ct).ConfigureAwait(false);
                return true;
            default:
                return false;
        }
    }

    private async ValueTask OutboundSubscriptionAsync(StanzaContext ctx, string type, CancellationToken ct)
    {
        var user = ctx.From.Bare;
        var contact = ctx.To!.Bare;
        if (contact == user)
        {
            return;
        }

        var key = contact.ToString();
        SubscriptionOutcome outcome = default;
        RosterItem? before;
        try
        {
            (before, _) = await Rosters.ChangeAsync(user, contact, item =>
            {
                outcome = type switch
                {
                    "subscribe" => SubscriptionRules.OutboundSubscribe(item, key),
                    "unsubscribe" => SubscriptionRules.OutboundUnsubscribe(item),
                    "subscribed" => SubscriptionRules.OutboundSubscribed(item, key),
                    _ => SubscriptionRules.OutboundUnsubscribed(item),
                };
                return outcome.Item;
            }, ct).ConfigureAwait(false);
        }
        catch (RosterFullException)
        {
            await Router.BounceAsync(ctx.Stanza, new StanzaError(StanzaErrorCondition.ResourceConstraint, "the roster holds the maximum number of items"), ct).ConfigureAwait(false);
            return;
        }

        if (!outcome.Forward)
        {
            return;
        }

        // §3.1.2: the server stamps the bare JIDs on subscription stanzas.
        var routed = ctx.Stanza.Clone().SetAttribute("from", user.ToString()).SetAttribute("to", key);
        await Router.RouteAsync(routed, null, ct).ConfigureAwait(false);
        if (type == "subscribed")
        {
            // §3.1.5: the new subscriber gets the user's current presence.
            await SendPresenceOfResourcesAsync(user, contact, ct).ConfigureAwait(false);
        }
        else if (type == "unsubscribed" && before is { HasFrom: true })
        {
            // §3.2.2: a cancelled subscriber sees the user go offline.
            await SendUnavailableOfResourcesAsync(user, contact, ct).ConfigureAwait(false);
        }
    }

    // ---- presence to a local account or resource ------------------------------------------------------

    private async ValueTask<bool> OnInboundAsync(StanzaContext ctx, CancellationToken ct)
    {
        var to = ctx.To!;
        var type = ctx.Type;
        switch (type)
        {
            case "subscribe" or "subscribed" or "unsubscribe" or "unsubscribed":
                await InboundSubscriptionAsync(ctx, type, ct).ConfigureAwait(false);
                return true;
            case "probe":
                await AnswerProbeAsync(ctx, ct).ConfigureAwait(false);
                return true;
            default:
                break;
        }

        // Available, unavailable and error presence: to the one resource (if bound), or to every
        // available resource of the account (RFC 6121 §8.5.2.1.1, §8.5.3.1); never bounced (§8.5.1).
        if (to.Resource is not null)
        {
            Sessions.Find(to)?.TrySend(ctx.Stanza);
        }
        else
        {
            DeliverToAvailable(to, ctx.Stanza);
        }

        return true;
    }

    private async ValueTask InboundSubscriptionAsync(StanzaContext ctx, string type, CancellationToken ct)
    {
        var user = ctx.To!.Bare;
        var contact = ctx.From.Bare;
        if (contact == user)
        {
            return;
        }

        if (!await _context.AccountExistsAsync(user, ct).ConfigureAwait(false))
        {
            // §8.5.1: "For a presence stanza of type subscribe, subscribed, unsubscribe or unsubscribed, the server
            // MUST silently ignore the stanza." An 'unsubscribed' answer would also tell a stranger which accounts
            // exist, since a request to an existing account gets none until its owner decides.
            return;
        }

        var key = contact.ToString();
        var stanza = ctx.Stanza.Clone().SetAttribute("from", key).SetAttribute("to", user.ToString());
        SubscriptionOutcome outcome = default;
        RosterItem? before;
        try
        {
            (before, _) = await Rosters.ChangeAsync(user, contact, item =>
            {
                outcome = type switch
                {
                    "subscribe" => SubscriptionRules.InboundSubscribe(item, key, stanza.ToString()),
                    "unsubscribe" => SubscriptionRules.InboundUnsubscribe(item),
                    "subscribed" => SubscriptionRules.InboundSubscribed(item),
                    _ => SubscriptionRules.InboundUnsubscribed(item),
                };
                return outcome.Item;
            }, ct).ConfigureAwait(false);
        }
        catch (RosterFullException)
        {
            _context.Log.Warn("Ignoring subscription request from {Contact} to {User}: roster full", contact, user);
            return;
        }

        if (outcome.AutoReply)
        {
            // §3.1.3 (already subscribed) and §3.4.3 (pre-approved): the server answers for the user.
            await Router.RouteAsync(SubscriptionStanza("subscribed", user, contact), null, ct).ConfigureAwait(false);
            await SendPresenceOfResourcesAsync(user, contact, ct).ConfigureAwait(false);
        }

        if (outcome.Forward)
        {
            DeliverToAvailable(user, stanza);
        }

        if (type == "unsubscribe" && before is { HasFrom: true })
        {
            // §3.3.3: the former subscriber sees the user go offline.
            await SendUnavailableOfResourcesAsync(user, contact, ct).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// §4.3.2: a subscriber gets the last presence of each available resource (or of the one probed),
    /// else the last unavailable presence with its time; anyone else gets 'unsubscribed' (which never
    /// cancels a pre-approval) and learns nothing.
    /// </summary>
    private async ValueTask AnswerProbeAsync(StanzaContext ctx, CancellationToken ct)
    {
        var user = ctx.To!.Bare;
        var prober = ctx.From;
        // §4.3.2: only a contact with a subscription from the user gets an answer. One entry is read, not
        // the roster: an unknown account has none either, and gets the same 'unsubscribed'.
        var subscribed = prober.Bare == user || await Rosters.FindAsync(user, prober, ct).ConfigureAwait(false) is { HasFrom: true };

        if (!subscribed)
        {
            await Router.RouteAsync(SubscriptionStanza("unsubscribed", user, prober.Bare), null, ct).ConfigureAwait(false);
            return;
        }

        var answered = false;
        foreach (var r in Sessions.Resources(user))
        {
            if (r.IsAvailable && r.LastPresence is { } last && (ctx.To.Resource is null || r.Jid == ctx.To))
            {
                answered = true;
                await Router.RouteParsedAsync(last.Copy().SetAttribute("to", prober.ToString()), r.Jid, prober, ct).ConfigureAwait(false);
            }
        }

        if (answered)
        {
            return;
        }

        var unavailable = new Element("presence", Ns.Client)
            .SetAttribute("type", "unavailable")
            .SetAttribute("from", user.ToString())
            .SetAttribute("to", prober.ToString());
        var lastActivity = await _context.Storage.LastActivity.GetAsync(user.Domain, user.Local!, ct).ConfigureAwait(false);
        if (lastActivity is not null)
        {
            if (!string.IsNullOrEmpty(lastActivity.Status))
            {
                unavailable.AddChild("status").AddText(lastActivity.Status);
            }

            // XEP-0203: when the user went offline.
            unavailable.Add(Forwarded.Delay(lastActivity.When, user.ToString()));
        }

        await Router.RouteAsync(unavailable, null, ct).ConfigureAwait(false);
    }

    // ---- helpers ----------------------------------------------------------------------------------------

    private void DeliverToAvailable(Jid user, Element stanza)
    {
        foreach (var r in Sessions.Resources(user))
        {
            if (r.IsAvailable)
            {
                r.TrySend(stanza);
            }
        }
    }

    private async ValueTask SendPresenceOfResourcesAsync(Jid user, Jid contact, CancellationToken ct)
    {
        foreach (var r in Sessions.Resources(user))
        {
            if (r.IsAvailable && r.LastPresence is { } last)
            {
                await Router.RouteParsedAsync(last.Copy().SetAttribute("to", contact.ToString()), r.Jid, contact, ct).ConfigureAwait(false);
            }
        }
    }

    private async ValueTask SendUnavailableOfResourcesAsync(Jid user, Jid contact, CancellationToken ct)
    {
        foreach (var r in Sessions.Resources(user))
        {
            if (r.IsAvailable)
            {
                var unavailable = new Element("presence", Ns.Client)
                    .SetAttribute("type", "unavailable")
                    .SetAttribute("from", r.Jid.ToString())
                    .SetAttribute("to", contact.ToString());
                await Router.RouteParsedAsync(unavailable, r.Jid, contact, ct).ConfigureAwait(false);
            }
        }
    }

    private static Element SubscriptionStanza(string type, Jid from, Jid to) =>
        new Element("presence", Ns.Client).SetAttribute("type", type).SetAttribute("from", from.ToString()).SetAttribute("to", to.ToString());

    /// <summary>A stored subscription request, or a plain one when the stored text cannot be read.</summary>
    private static Element ParseStored(string xml, string from, Jid to)
    {
        try
        {
            return ElementParser.Parse(xml);
        }
        catch (System.Xml.XmlException)
        {
            return new Element("presence", Ns.Client).SetAttribute("type", "subscribe").SetAttribute("from", from).SetAttribute("to", to.ToString());
        }
    }
}
