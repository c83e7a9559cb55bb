using System.Collections.Concurrent;
using NLog;
using Xmpp.Core.Stanzas;
using Xmpp.Server.Config;
using Xmpp.Server.Hosting;
using Xmpp.Server.Routing;
using Xmpp.Server.Streams;

namespace Xmpp.Server.Components;

/// <summary>
/// External components (XEP-0114): which configured component domains are connected, and the router's
/// way to them. Stanzas to a component domain are claimed from "route/remote" before federation sees
/// them; while the component is not connected they bounce with service-unavailable.
/// </summary>
[Specification("XEP-0114", "1.6", Note = "Component listener with a shared secret per domain; a reconnecting component replaces its old stream; stanzas to a disconnected component bounce.")]
public sealed class ComponentManager
{
    /// <summary>Ahead of federation's handler of the same hook.</summary>
    private const int RoutePriority = 100;

    private readonly ServerContext _ctx;
    private readonly Logger _log;
    private readonly ConcurrentDictionary<string, ComponentStateMachine> _connected = new(StringComparer.Ordinal);

    public ComponentManager(ServerContext ctx)
    {
        _ctx = ctx;
        _log = ctx.Logs.GetLogger("Component");
    }

    public void Register(HookBus hooks) => hooks.On(HookNames.RouteRemote, RouteAsync, RoutePriority);

    /// <summary>
    /// The configuration of a component domain, or null when no such component may connect. Read from the
    /// configuration in force: a reload can add a component, or remove one (its stream stays until it ends).
    /// </summary>
    public ComponentOptions? Find(string domain)
    {
        foreach (var c in _ctx.Options.Components)
        {
            if (c.Domain == domain)
            {
                return c;
            }
        }

        return null;
    }

    public bool IsConnected(string domain) => _connected.ContainsKey(domain);

    public int ConnectedCount => _connected.Count;

    /// <summary>
    /// Makes an authenticated stream the route to its domain. A stream already there is closed with
    /// &lt;conflict/&gt;: a component that restarts after a crash must not wait for its old, half-open
    /// connection to time out (the same choice RFC 6120 §7.7.2.2 makes for a resource conflict).
    /// </summary>
    internal void Attach(ComponentStateMachine connection)
    {
        ComponentStateMachine? old = null;
        _connected.AddOrUpdate(connection.Domain, connection, (_, existing) =>
        {
            old = existing;
            return connection;
        });
        if (old is not null && !ReferenceEquals(old, connection))
        {
            _log.Warn("Component {Domain} connected again: closing its previous stream c{Old}", connection.Domain, old.ConnectionId);
            old.Close(new StreamError(StreamErrorCondition.Conflict, "the component connected again"));
        }
    }

    /// <summary>Removes the route if it is still this stream.</summary>
    internal void Detach(ComponentStateMachine connection) =>
        _connected.TryRemove(new KeyValuePair<string, ComponentStateMachine>(connection.Domain, connection));

    private async ValueTask<bool> RouteAsync(StanzaContext context, CancellationToken ct)
    {
        var domain = context.To!.Domain;
        if (Find(domain) is null && !_connected.ContainsKey(domain))
        {
            return false;
        }

        if (_connected.TryGetValue(domain, out var connection))
        {
            switch (connection.Send(context.Stanza))
            {
                case Enqueued.Queued:
                    return true;
                case Enqueued.Full:
                    _log.Warn("Component {Domain} is not keeping up: bouncing a {Kind}", domain, context.Kind);
                    await _ctx.Router.BounceAsync(context.Stanza, new StanzaError(StanzaErrorCondition.ResourceConstraint, $"{domain} is not keeping up"), ct).ConfigureAwait(false);
                    return true;
            }
        }

        await _ctx.Router.BounceAsync(context.Stanza, new StanzaError(StanzaErrorCondition.ServiceUnavailable, $"{domain} is not connected"), ct).ConfigureAwait(false);
        return true;
    }
}
