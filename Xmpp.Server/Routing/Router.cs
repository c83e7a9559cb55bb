using NLog;
using Xmpp.Core.Addressing;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;
using Xmpp.Server.Sessions;

namespace Xmpp.Server.Routing;

/// <summary>
/// Decides where a stanza goes, and nothing else (Prosody's stanza_router): local domain → fires
/// "KIND/host|bare|full" (and "iq-TYPE/TARGET/NS:NAME" for requests) on the hook bus; a remote domain →
/// "route/remote"; nobody handled it → the RFC's error back to the sender. Never waits on a socket.
/// </summary>
public sealed class Router : IStanzaRouter
{
    private readonly Func<HookBus> _currentHooks;
    private readonly Func<IReadOnlySet<string>> _serviceDomains;
    private readonly Func<IReadOnlySet<string>> _wholeDomains;
    private readonly HashSet<string> _localHosts;
    private readonly Logger _log;

    private readonly Hosting.ServerMetrics? _metrics;

    /// <param name="hooks">The hooks in force (the current module generation's, which a reload replaces).</param>
    /// <param name="serviceDomains">The service domains in force (the current module generation's).</param>
    /// <param name="wholeDomains">The service domains handled on one node as a whole in cluster mode (the current module generation's).</param>
    public Router(Func<HookBus> hooks, IEnumerable<string> localHosts, Logger log, Hosting.ServerMetrics? metrics = null, Func<IReadOnlySet<string>>? serviceDomains = null, Func<IReadOnlySet<string>>? wholeDomains = null)
    {
        _serviceDomains = serviceDomains ?? (() => NoDomains);
        _wholeDomains = wholeDomains ?? (() => NoDomains);
        _metrics = metrics;
        _currentHooks = hooks;
        _localHosts = new HashSet<string>(localHosts, StringComparer.Ordinal);
        _log = log;
    }

    private static readonly IReadOnlySet<string> NoDomains = new HashSet<string>();

    /// <summary>Cluster mode: where accounts are homed (README, "Running a cluster"); null on a single node.</summary>
    public Cluster.ICluster? Cluster { get; set; }

    public bool IsLocal(string domain) => _localHosts.Contains(domain);

    public bool Serves(string domain) => _localHosts.Contains(domain) || _serviceDomains().Contains(domain);

    /// <summary>Routes a stanza whose 'from' is set and trusted (the server's own replies and notifications).</summary>
    public ValueTask RouteAsync(Element stanza, IClientSession? origin, CancellationToken cancellationToken)
    {
        if (!Jid.TryParse(stanza.GetAttribute("from"), out var from))
        {
            _log.Warn("Dropping {Kind} without a valid from", stanza.Name);
            return ValueTask.CompletedTask;
        }

        return RouteAsync(stanza, from, origin, cancellationToken);
    }

    /// <summary>Routes a stanza whose 'from' the receiving stream stamped with <paramref name="from"/> (no need to parse it again).</summary>
    public ValueTask RouteAsync(Element stanza, Jid from, IClientSession? origin, CancellationToken cancellationToken)
    {
        Jid? to = null;
        var toText = stanza.GetAttribute("to");
        if (toText is not null && !Jid.TryParse(toText, out to))
        {
            return BounceAsync(stanza.Freeze(), new StanzaError(StanzaErrorCondition.JidMalformed, "invalid 'to' address"), cancellationToken);
        }

        return RouteTimedAsync(stanza, from, to, origin, cancellationToken);
    }

    public ValueTask RouteParsedAsync(Element stanza, Jid from, Jid to, CancellationToken cancellationToken) =>
        RouteTimedAsync(stanza, from, to, null, cancellationToken);

    /// <summary>
    /// Cluster mode: a stanza another node forwarded to this one, the home of <paramref name="to"/>'s account.
    /// The sender's side (its filter, its outbound hooks) ran on the sender's home; this is the recipient's side.
    /// </summary>
    public ValueTask RouteForwardedAsync(Element stanza, Jid from, Jid to, CancellationToken cancellationToken) =>
        RouteTimedAsync(stanza, from, to, null, cancellationToken, forwarded: true);

    private async ValueTask RouteTimedAsync(Element stanza, Jid from, Jid? to, IClientSession? origin, CancellationToken cancellationToken, bool forwarded = false)
    {
        // From here the stanza is shared (hooks, queues, copies): nobody changes it, they change copies.
        stanza.Freeze();
        if (Cluster is { } cluster)
        {
            await cluster.FenceAsync(cancellationToken).ConfigureAwait(false);
        }

        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        try
        {
            await RouteCoreAsync(stanza, from, to, origin, forwarded, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _metrics?.Routed(stanza.Name, System.Diagnostics.Stopwatch.GetTimestamp() - started);
        }
    }

    private async ValueTask RouteCoreAsync(Element stanza, Jid from, Jid? to, IClientSession? origin, bool forwarded, CancellationToken cancellationToken)
    {
        // One generation of hooks for the whole of this stanza's routing, even if a reload swaps them meanwhile.
        var hooks = _currentHooks();

        if (to is null)
        {
            // RFC 6120 §10.3: no 'to' from a client means the account itself (presence: a broadcast).
            if (stanza.Name == "presence")
            {
                var broadcast = new StanzaContext(stanza, from, null, origin, this);
                await hooks.FireAsync(HookNames.PresenceBroadcast, broadcast, cancellationToken).ConfigureAwait(false);
                return;
            }

            to = from.Bare;
        }

        // Cluster mode: a local account homed on another node gets the stanza there, after the sender's side here;
        // one homed here is marked as being routed to until its routing is over, so that its sessions never leave
        // for another node (a drain) while a stanza on its way to them could still miss them. A stanza forwarded
        // here whose account has left meanwhile follows it.
        // The same for an entity of one of our service domains (a multi-user chat room), which has a home node too,
        // and for a service domain handled as a whole on one node (a publish-subscribe service).
        Cluster.RoutingMark mark = default;
        var elsewhere = false;
        var entityElsewhere = false;
        if (Cluster is { } cluster &&
            (to.Local is not null ? IsLocal(to.Domain) || _serviceDomains().Contains(to.Domain) : _wholeDomains().Contains(to.Domain)))
        {
            mark = cluster.EnterRouting(to.Bare);
            if (!cluster.IsHome(to.Bare))
            {
                mark.Dispose();
                mark = default;
                elsewhere = IsLocal(to.Domain);
                entityElsewhere = !elsewhere;
            }
        }

        try
        {
            await RouteToAsync(hooks, stanza, from, to, origin, forwarded, elsewhere, entityElsewhere, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            mark.Dispose();
        }
    }

    private async ValueTask RouteToAsync(HookBus hooks, Element stanza, Jid from, Jid to, IClientSession? origin, bool forwarded, bool elsewhere, bool entityElsewhere, CancellationToken cancellationToken)
    {
        var context = new StanzaContext(stanza, from, to, origin, this);
        if ((from.Local is not null || to.Local is not null) && from.Bare != to.Bare && (IsLocal(from.Domain) || IsLocal(to.Domain)))
        {
            if ((!forwarded && await hooks.FireAsync(HookNames.FilterOutbound, context, cancellationToken).ConfigureAwait(false)) ||
                (!elsewhere && await hooks.FireAsync(HookNames.FilterInbound, context, cancellationToken).ConfigureAwait(false)))
            {
                return;
            }
        }

        if (origin is not null &&
            await hooks.FireAsync(HookNames.Outbound(stanza.Name), context, cancellationToken).ConfigureAwait(false))
        {
            return;
        }

        if (!IsLocal(to.Domain))
        {
            // Cluster mode: an entity of one of our service domains (a multi-user chat room) homed elsewhere.
            if (entityElsewhere)
            {
                await Cluster!.ForwardAsync(stanza, from, to, cancellationToken).ConfigureAwait(false);
                return;
            }

            if (!await hooks.FireAsync(HookNames.RouteRemote, context, cancellationToken).ConfigureAwait(false))
            {
                await BounceAsync(stanza, new StanzaError(StanzaErrorCondition.RemoteServerNotFound, $"no route to {to.Domain}"), cancellationToken).ConfigureAwait(false);
            }

            return;
        }

        if (elsewhere)
        {
            await Cluster!.ForwardAsync(stanza, from, to, cancellationToken).ConfigureAwait(false);
            return;
        }

        var target = to.Local is null ? Target.Host : to.Resource is null ? Target.Bare : Target.Full;
        if (stanza.Name == "iq")
        {
            var type = stanza.GetAttribute("type");
            var payload = stanza.FirstElement();
            if ((type == "get" || type == "set") && payload is not null && target != Target.Full &&
                await hooks.FireAsync(HookNames.Iq(type, target, payload.Namespace, payload.Name), context, cancellationToken).ConfigureAwait(false))
            {
                return;
            }
        }

        if (await hooks.FireAsync(HookNames.Stanza(stanza.Name, target), context, cancellationToken).ConfigureAwait(false))
        {
            return;
        }

        // Unhandled: requests and messages get service-unavailable (RFC 6120 §8.4, RFC 6121 §8.5); presence is dropped.
        if (stanza.Name == "presence" || (stanza.Name == "iq" && stanza.GetAttribute("type") is not ("get" or "set")))
        {
            return;
        }

        await BounceAsync(stanza, StanzaError.ServiceUnavailable, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Sends the error reply for a stanza back to its sender, unless the stanza is itself an error or result.</summary>
    public ValueTask BounceAsync(Element stanza, StanzaError error, CancellationToken cancellationToken)
    {
        if (!Stanza.MayReplyWithError(stanza) || stanza.GetAttribute("from") is null)
        {
            return ValueTask.CompletedTask;
        }

        _metrics?.StanzaError(error.Condition);
        var reply = Stanza.ErrorReply(stanza, error, includeOriginal: stanza.Name == "message");
        if (reply.GetAttribute("from") is { } replyFrom && !Jid.TryParse(replyFrom, out _))
        {
            reply.SetAttribute("from", null);
        }

        if (reply.GetAttribute("from") is null)
        {
            // An error about a stanza without 'to' comes from the sender's own server.
            if (Jid.TryParse(stanza.GetAttribute("from"), out var sender))
            {
                reply.SetAttribute("from", sender.Domain);
            }
        }

        return RouteAsync(reply, null, cancellationToken);
    }
}
