using System.Collections.Concurrent;
using System.Globalization;
using System.Threading.Channels;
using NLog;
using Orleans.Runtime;
using Xmpp.Core;
using Xmpp.Core.Addressing;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;
using Xmpp.Server.Routing;
using Xmpp.Server.Sessions;

namespace Xmpp.Server.Cluster.Orleans;

/// <summary>
/// Cluster mode: an account's sessions on several nodes. A client that logs in on a node other than its account's
/// home keeps its connection there (the session's edge) and is bound on the home through a stand-in session (its
/// proxy), which is what the home's registry, hooks and delivery rules see: conflicts, the session limit, carbons,
/// priorities and presence are decided where the account's other sessions are. What the client sends goes to the
/// home in the node-to-node batches and is acknowledged once routed there; what the home delivers to the proxy
/// comes back in order, one batch at a time per edge node, through the edge's own session (client state filter,
/// stream management). The stream-level state (XEP-0198 counters and queue, XEP-0352 filter) stays on the edge.
/// </summary>
public sealed partial class OrleansCluster
{
    /// <summary>This node's sessions whose accounts are homed elsewhere, by their link's id.</summary>
    private readonly ConcurrentDictionary<long, EdgeLink> _edges = new();

    /// <summary>The proxies on this node (the home) of sessions whose connections are on other nodes, by link id.</summary>
    private readonly ConcurrentDictionary<long, ClientSession> _proxies = new();
    private readonly ConcurrentDictionary<string, EdgePump> _edgePumps = new(StringComparer.Ordinal);

    /// <summary>What a home grain answers for a stanza it keeps while it moves with the session's proxy.</summary>
    internal const string Moving = "-";

    /// <summary>Sessions bound here for accounts homed on other nodes.</summary>
    public int EdgeCount => _edges.Count;

    /// <summary>Sessions homed here whose connections are on other nodes.</summary>
    public int ProxyCount => _proxies.Count;

    public async ValueTask<ISessionHome?> AttachAsync(ClientSession session, CancellationToken cancellationToken)
    {
        var bare = session.Jid.Bare;
        var link = new EdgeLink(this, session, BitConverter.ToInt64(System.Security.Cryptography.RandomNumberGenerator.GetBytes(8)) & long.MaxValue);

        // Known before the home knows of it: what the home delivers may arrive before its answer does.
        _edges[link.Id] = link;
        var state = session.Snapshot().ToString();
        try
        {
            for (var attempt = 0; attempt < 40; attempt++)
            {
                var (answered, reply, failure) = await CallHomeAsync(bare, grain => grain.AttachAsync(_silo!, session.Jid.ToString(), link.Id, session.ConnectionId, state), cancellationToken).ConfigureAwait(false);
                if (!answered)
                {
                    throw new XmppStreamException(StreamErrorCondition.RemoteConnectionFailed, "the account's home node does not answer: " + failure);
                }

                switch (reply!.Outcome)
                {
                    case AttachOutcome.Here:
                        _edges.TryRemove(link.Id, out _);
                        return null;
                    case AttachOutcome.Attached:
                        link.Bound(reply.Silo, reply.Node);
                        _homes[bare] = reply.Silo;
                        _ledger.Writer.TryWrite(new LedgerChange(session.Jid.ToString(), null, true, Edge: true));
                        return link;
                    case AttachOutcome.Refused:
                        // RFC 6120 §7.6.2.1 decided on the home, after the client was told it is bound: the stream ends.
                        _log.Warn("{Jid} may not be bound on its home node: {Reason}", session.Jid, reply.Reason);
                        throw new XmppStreamException(StreamErrorCondition.PolicyViolation, reply.Reason);
                    default:
                        await Task.Delay(TimeSpan.FromMilliseconds(25), cancellationToken).ConfigureAwait(false);
                        break;
                }
            }

            throw new XmppStreamException(StreamErrorCondition.ResourceConstraint, "the account is moving between nodes; try again");
        }
        catch
        {
            _edges.TryRemove(link.Id, out _);
            throw;
        }
    }

    // ---- on the home ----------------------------------------------------------------------------------

    /// <summary>A session of the account is bound on <paramref name="edge"/>'s node: its proxy is bound here, replacing one of the same address.</summary>
    internal async Task<AttachReply> AttachHereAsync(Jid bare, string full, long id, long connection, string edge, string state)
    {
        var jid = Jid.Parse(full);
        var others = _sessions!.Resources(bare);
        var limit = _server!.Options.Limits.SessionsPerAccount;
        if (others.Count >= limit && !others.Any(o => o.Jid == jid))
        {
            return new AttachReply(AttachOutcome.Refused, string.Empty, string.Empty, $"at most {limit} sessions per account");
        }

        var proxy = new ClientSession(_server, jid, ElementParser.Parse(state), _log);
        proxy.Attach(new EdgeCarrier(this, edge, id, connection));
        _proxies[id] = proxy;
        var replaced = _server.Sessions.Bind(proxy);
        if (replaced is not null && !ReferenceEquals(replaced, proxy))
        {
            _log.Info("Resource {Jid} bound again on another node: replacing the older session", jid);
            replaced.Close(new StreamError(StreamErrorCondition.Conflict, "replaced by a new session"));
        }

        _log.Info("Bound {Jid} here, its home, for its connection on {Edge}", jid, NodeName(edge));
        var request = new Element("iq", Ns.Client).SetAttribute("type", "set");
        request.AddChild("bind", Ns.Bind);
        await _server.Hooks.FireAsync(HookNames.ResourceBound, new StanzaContext(request, jid, null, proxy, _router!), _stopping.Token).ConfigureAwait(false);
        return new AttachReply(AttachOutcome.Attached, _siloKey, Node, string.Empty);
    }

    /// <summary>The session behind a proxy ended on its edge: the proxy ends (its contacts told).</summary>
    internal async Task DetachHereAsync(long id)
    {
        if (_proxies.TryRemove(id, out var proxy))
        {
            await proxy.EndAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Routes what a client sent on its edge as its proxy here; false when there is no such proxy here (any more).</summary>
    internal async Task<bool> FromEdgeHereAsync(string xml, string from, long id)
    {
        if (!_proxies.TryGetValue(id, out var proxy) || proxy.IsEnded || proxy.Jid.ToString() != from)
        {
            return false;
        }

        await _router!.RouteAsync(ElementParser.Parse(xml), proxy.Jid, proxy, _stopping.Token).ConfigureAwait(false);
        return true;
    }

    /// <summary>Queues something for a session on its edge node, in order with what was queued for it before.</summary>
    internal bool ToEdge(string edge, EdgeItem item)
    {
        if (_stopping.IsCancellationRequested)
        {
            return false;
        }

        var pump = _edgePumps.GetOrAdd(edge, key => new EdgePump(this, _grains!.GetGrain<INodeGrain>(key), _log, _stopping.Token));
        var seq = pump.Post(item);
        if (seq == 0)
        {
            return false;
        }

        _reach.Value?.Add(pump, seq);
        return true;
    }

    /// <summary>The edge items queued by the flow of work under way (<see cref="Track"/>).</summary>
    private readonly AsyncLocal<EdgeMarks?> _reach = new();

    public IReachScope Track()
    {
        // Set in this synchronous call, the value is the caller's from here on (an async method's own changes would
        // end with it); disposing gives the caller's outer scope back.
        var outer = _reach.Value;
        var marks = new EdgeMarks(outer, _reach);
        _reach.Value = marks;
        return marks;
    }

    /// <summary>
    /// The edge node no longer knows these sessions (they ended there meanwhile): their proxies end, and a message
    /// sent to one of them goes on as to an address without a session (RFC 6121 §8.5.3.2), so it is not lost.
    /// </summary>
    internal async Task UnknownAtEdgeAsync(IReadOnlyList<EdgeItem> items)
    {
        foreach (var id in items.Select(i => i.Id).Distinct())
        {
            await DetachHereAsync(id).ConfigureAwait(false);
            foreach (var item in items.Where(i => i.Id == id && i.Kind == EdgeItemKind.Stanza))
            {
                // A message to a full JID (this session's, or one without a session that fell back to it, §8.5.3.2.1);
                // not one delivered to the bare JID (its other sessions had it too) nor a carbon copy (XEP-0280).
                // Whether the proxy is still here or not: a later batch may carry more of its stanzas.
                var stanza = ElementParser.Parse(item.Xml);
                if (stanza.Name == "message" && Jid.TryParse(stanza.GetAttribute("to"), out var to) && to.Resource is not null &&
                    stanza.GetAttribute("type") is not ("error" or "groupchat" or "headline") &&
                    stanza.Child("sent", "urn:xmpp:carbons:2") is null && stanza.Child("received", "urn:xmpp:carbons:2") is null)
                {
                    await _router!.RouteAsync(stanza, null, _stopping.Token).ConfigureAwait(false);
                }
            }
        }
    }

    // ---- on the edge ----------------------------------------------------------------------------------

    /// <summary>What the home sent for sessions here; returns the ids of the items whose sessions are not here.</summary>
    internal long[] ToEdgesHere(EdgeItem[] batch)
    {
        List<long>? unknown = null;
        foreach (var item in batch)
        {
            if (!_edges.TryGetValue(item.Id, out var link))
            {
                (unknown ??= []).Add(item.Id);
                continue;
            }

            switch (item.Kind)
            {
                case EdgeItemKind.Stanza:
                    link.Session.TrySend(ElementParser.Parse(item.Xml));
                    break;
                case EdgeItemKind.Nonza:
                    link.Session.Stream?.WriteNonza(ElementParser.Parse(item.Xml));
                    break;
                case EdgeItemKind.Home:
                    var lines = item.Xml.Split('\n', 2);
                    link.Bound(lines[0], lines.Length > 1 ? lines[1] : lines[0]);
                    break;
                default:
                    var split = item.Xml.IndexOf('\n', StringComparison.Ordinal);
                    var condition = (StreamErrorCondition)int.Parse(split < 0 ? item.Xml : item.Xml[..split], CultureInfo.InvariantCulture);
                    link.Session.Close(new StreamError(condition, split < 0 ? null : item.Xml[(split + 1)..]));
                    break;
            }
        }

        return unknown is null ? [] : [.. unknown];
    }

    /// <summary>
    /// A node died: the proxies here of its sessions end (their contacts are told), and the sessions here whose
    /// home it was end too, their unacknowledged stanzas routed again to the account's new home.
    /// </summary>
    private void EdgesOfDeadNode(string silo)
    {
        if (_edgePumps.TryRemove(silo, out var pump))
        {
            pump.Dispose();
        }

        var proxies = _proxies.Where(p => p.Value.Stream is EdgeCarrier c && c.Edge == silo).Select(p => p.Key).ToList();
        var edges = _edges.Values.Where(l => l.HomeSilo == silo).ToList();
        if (proxies.Count + edges.Count > 0)
        {
            _log.Warn("{Node} died: ending {Proxies} session(s) whose connections were there and {Edges} session(s) here whose home it was", NodeName(silo), proxies.Count, edges.Count);
        }

        foreach (var id in proxies)
        {
            // Its rooms learn it from the crash ledger, as for the sessions bound there, and remove it with 333
            // (XEP-0045 §9: removed because of an error): a plain leave sent from here would race with that.
            if (_proxies.TryGetValue(id, out var proxy))
            {
                foreach (var room in proxy.DirectedPresence.Where(t => _server!.Modules.ServiceDomains.Contains(t.Domain)).ToList())
                {
                    proxy.DirectedPresence.Remove(room);
                }
            }

            _ = DetachHereAsync(id);
        }

        foreach (var link in edges)
        {
            link.Session.Close(new StreamError(StreamErrorCondition.Reset, "the account's home node is gone: log in again"));
        }
    }

    /// <summary>An edge session leaves this node (ended, or handed on): false when it had already.</summary>
    private bool ForgetEdge(EdgeLink link)
    {
        if (!_edges.TryRemove(link.Id, out _))
        {
            return false;
        }

        if (link.HomeSilo.Length > 0)
        {
            _ledger.Writer.TryWrite(new LedgerChange(link.Session.Jid.ToString(), null, false, Edge: true));
        }

        return true;
    }

    private string NodeName(string silo) =>
        _membership?.CurrentSnapshot.Members.Values.FirstOrDefault(m => m.SiloAddress.ToParsableString() == silo)?.Name ?? silo;

    /// <summary>An edge session's way to its home (<see cref="ClientSession.Home"/>).</summary>
    private sealed class EdgeLink(OrleansCluster cluster, ClientSession session, long id) : ISessionHome
    {
        public long Id => id;

        public ClientSession Session => session;

        public string HomeSilo { get; private set; } = string.Empty;

        public string Node { get; private set; } = string.Empty;

        public void Bound(string silo, string node)
        {
            HomeSilo = silo;
            Node = node;
        }

        public ValueTask RouteAsync(Element stanza, CancellationToken cancellationToken) => cluster.FromEdgeAsync(this, stanza, cancellationToken);

        public Task DetachAsync() => cluster.DetachAsync(this);

        public Task RedeliverAsync(Element message) => cluster.RedeliverAsync(this, message);
    }

    private async ValueTask FromEdgeAsync(EdgeLink link, Element stanza, CancellationToken ct)
    {
        // Nothing is acknowledged to a client of a node that was paused past its death (as for routing here).
        await FenceAsync(ct).ConfigureAwait(false);
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        var session = link.Session;
        var item = new Forwarded(stanza.ToString(), session.Jid.ToString(), stanza.GetAttribute("to") ?? string.Empty, link.Id);
        try
        {
            if (await Pump(link.HomeSilo).SendAsync(item).WaitAsync(ct).ConfigureAwait(false))
            {
                return;
            }

            var (answered, home, _) = await CallHomeAsync(session.Jid.Bare, grain => grain.FromEdgeAsync(item.Stanza, item.From, link.Id), ct).ConfigureAwait(false);
            if (answered && home == Moving)
            {
                // Kept by the home grain, which is moving with the proxy, and routed once it has arrived.
                return;
            }

            if (answered && home!.Length > 0)
            {
                link.Bound(home, NodeName(home));
                return;
            }

            // The home has no such session (any more): the client logs in again, and sends again what was not acknowledged.
            _log.Warn("{Jid}: its home node no longer has the session: closing its stream", session.Jid);
            session.Close(new StreamError(StreamErrorCondition.Reset, "the session ended on the account's home node: log in again"));
        }
        finally
        {
            _metrics.ClusterForwarded(System.Diagnostics.Stopwatch.GetTimestamp() - started);
        }
    }

    private async Task RedeliverAsync(EdgeLink link, Element message)
    {
        var (answered, _, failure) = await CallHomeAsync(link.Session.Jid.Bare, async grain =>
        {
            await grain.RedeliverAsync(message.ToString()).ConfigureAwait(false);
            return true;
        }, CancellationToken.None).ConfigureAwait(false);
        if (!answered)
        {
            _log.Error("A message {Jid} never acknowledged could not reach the account's home ({Reason}): it is in the account's archive", link.Session.Jid, failure);
        }
    }

    /// <summary>On the home: a message that a session on another node never acknowledged, that session over.</summary>
    internal async Task RedeliverHereAsync(Jid bare, string xml)
    {
        if (_server?.Modules?.Parking is { } parking)
        {
            await parking.RedeliverAsync(bare, ElementParser.Parse(xml)).ConfigureAwait(false);
        }
    }

    private async Task DetachAsync(EdgeLink link)
    {
        if (!ForgetEdge(link) || link.HomeSilo.Length == 0)
        {
            return;
        }

        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await Grain(link.Session.Jid.Bare).DetachAsync(link.Id).WaitAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is OrleansException or TimeoutException or OperationCanceledException)
        {
            // Its home died: the node that cleans up after it tells the session's contacts.
            _log.Debug("Ending {Jid} on its home: {Reason}", link.Session.Jid, ex.Message);
        }
    }
}

/// <summary>What a session's home sends to its edge: a stanza, an element that is not one, or the end of its stream.</summary>
[GenerateSerializer]
public enum EdgeItemKind
{
    Stanza,
    Nonza,
    Close,

    /// <summary>The session's proxy moved with its account's home: the new home's silo address and node name.</summary>
    Home,
}

/// <summary>One thing for the session with link <paramref name="Id"/> on its edge node.</summary>
[GenerateSerializer]
[Immutable]
public sealed record EdgeItem([property: Id(0)] long Id, [property: Id(1)] EdgeItemKind Kind, [property: Id(2)] string Xml);

/// <summary>The outcome of binding a session on its account's home from its edge.</summary>
[GenerateSerializer]
public enum AttachOutcome
{
    /// <summary>The home is (now) the caller's node: the session is bound there as any other.</summary>
    Here,

    /// <summary>The proxy is bound on the home.</summary>
    Attached,

    /// <summary>The home is moving: ask again.</summary>
    Moving,

    /// <summary>The home refused (the session limit).</summary>
    Refused,
}

[GenerateSerializer]
[Immutable]
public sealed record AttachReply([property: Id(0)] AttachOutcome Outcome, [property: Id(1)] string Silo, [property: Id(2)] string Node, [property: Id(3)] string Reason);

/// <summary>The stream of a proxy on the home: what is written to it goes to the session's edge node.</summary>
internal sealed class EdgeCarrier(OrleansCluster node, string edge, long id, long connection) : ISessionCarrier
{
    public string Edge => edge;

    public long ConnectionId => connection;

    public bool TryWrite(Element stanza) => node.ToEdge(edge, new EdgeItem(id, EdgeItemKind.Stanza, stanza.ToString()));

    public void WriteNonza(Element element) => node.ToEdge(edge, new EdgeItem(id, EdgeItemKind.Nonza, element.ToString()));

    public Task FlushAsync() => Task.CompletedTask;

    public void Close(StreamError? streamError) =>
        node.ToEdge(edge, new EdgeItem(id, EdgeItemKind.Close, ((int)(streamError?.Condition ?? StreamErrorCondition.SystemShutdown)).ToString(CultureInfo.InvariantCulture) + (streamError?.Text is { } text ? "\n" + text : string.Empty)));
}
