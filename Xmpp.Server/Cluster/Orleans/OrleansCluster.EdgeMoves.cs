using System.Globalization;
using Orleans.Runtime;
using Xmpp.Core.Addressing;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;
using Xmpp.Server.Sessions;

namespace Xmpp.Server.Cluster.Orleans;

/// <summary>
/// Cluster mode: sessions bound on another node than their account's home through drains and resumption
/// (README, "Running a cluster"). A home that leaves takes its proxies along (their edges are told where it went);
/// an edge that leaves hands its resumable sessions to their homes, where their clients resume them; a client that
/// resumes on another node than its account's home takes its waiting session from there.
/// </summary>
public sealed partial class OrleansCluster
{
    /// <summary>The account's home leaves with its parked sessions: its proxies here go too, without ending.</summary>
    private List<string> ParkProxiesHere(Jid bare)
    {
        var parked = new List<string>();
        foreach (var (id, proxy) in _proxies)
        {
            if (proxy.Jid.Bare != bare || proxy.Stream is not EdgeCarrier carrier || !_proxies.TryRemove(new(id, proxy)) || proxy.Vacate() is null)
            {
                continue;
            }

            parked.Add(new Element("proxy", ClientSession.ParkedNamespace)
                .SetAttribute("jid", proxy.Jid.ToString())
                .SetAttribute("link", id.ToString(CultureInfo.InvariantCulture))
                .SetAttribute("edge", carrier.Edge)
                .SetAttribute("connection", carrier.ConnectionId.ToString(CultureInfo.InvariantCulture))
                .Add(proxy.Snapshot())
                .ToString());
        }

        return parked;
    }

    /// <summary>A proxy arrived with its account's home: bound here, and its edge told where its home is now.</summary>
    private void RestoreProxyHere(Element snapshot)
    {
        if (!Jid.TryParse(snapshot.GetAttribute("jid"), out var full) || snapshot.Child("session", ClientSession.ParkedNamespace) is not { } state ||
            !long.TryParse(snapshot.GetAttribute("link"), CultureInfo.InvariantCulture, out var id) || snapshot.GetAttribute("edge") is not { } edge)
        {
            _log.Warn("A session bound from another node arrived with its home, but its snapshot is incomplete");
            return;
        }

        var proxy = new ClientSession(_server!, full, state, _log);
        proxy.Attach(new EdgeCarrier(this, edge, id, long.TryParse(snapshot.GetAttribute("connection"), CultureInfo.InvariantCulture, out var c) ? c : 0));
        _proxies[id] = proxy;
        if (_server!.Sessions.Bind(proxy) is { } replaced && !ReferenceEquals(replaced, proxy))
        {
            replaced.Close(new StreamError(StreamErrorCondition.Conflict, "replaced by a new session"));
        }

        ToEdge(edge, new EdgeItem(id, EdgeItemKind.Home, _siloKey + "\n" + Node));
        _log.Info("Session of {Jid} (its connection on {Edge}) arrived with its account's home", full, NodeName(edge));
    }

    /// <summary>
    /// A drain: this node's resumable sessions whose accounts are homed elsewhere are parked and handed to their homes,
    /// where they wait for their clients to resume them (there, or on any node, which takes them from there).
    /// </summary>
    private async Task<int> DrainEdgesAsync(CancellationToken cancellationToken)
    {
        if (_server?.Modules?.Parking is not { } parking || _edges.IsEmpty)
        {
            return 0;
        }

        var handed = 0;
        await Parallel.ForEachAsync(_edges.Values.ToList(), new ParallelOptions { MaxDegreeOfParallelism = 64, CancellationToken = cancellationToken }, async (link, ct) =>
        {
            // Not resumable: it ends when this node stops, as at any shutdown.
            if (await parking.ParkAsync(link.Session).ConfigureAwait(false) is not { } snapshot)
            {
                return;
            }

            var bare = link.Session.Jid.Bare;
            for (var attempt = 0; attempt < 40; attempt++)
            {
                var (answered, outcome, failure) = await CallHomeAsync(bare, grain => grain.AdoptAsync(link.Id, snapshot.ToString()), ct).ConfigureAwait(false);
                if (answered && outcome == AttachOutcome.Moving)
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(25), ct).ConfigureAwait(false);
                    continue;
                }

                if (answered && outcome == AttachOutcome.Attached)
                {
                    Interlocked.Increment(ref handed);
                }
                else
                {
                    _log.Warn("{Jid}: its parked session could not be handed to its account's home ({Reason})", link.Session.Jid, failure ?? "it had ended there");
                }

                break;
            }

            ForgetEdge(link);
        }).ConfigureAwait(false);
        _log.Info("Drained: {Count} session(s) whose accounts are homed on other nodes handed to their homes", handed);
        return handed;
    }

    /// <summary>On the home: a session parked on its edge replaces its proxy, waiting here for its client to resume it.</summary>
    internal bool AdoptHere(Jid bare, long id, string parked)
    {
        if (_server?.Modules?.Parking is not { } parking || !_proxies.TryRemove(id, out var proxy) || proxy.Vacate() is null)
        {
            return false;
        }

        // The session's state (presence, priority, the modules' flags) is the proxy's; the edge had the stream's.
        var snapshot = ElementParser.Parse(parked);
        snapshot.RemoveChildren("session", ClientSession.ParkedNamespace);
        snapshot.Add(proxy.Snapshot());
        parking.Restore(bare, [snapshot]);
        return true;
    }

    /// <summary>
    /// On the home: a client resumes on another node a session waiting here, or waiting on the node its connection
    /// was on (it dropped there): its snapshot, with the session's state from its proxy here; or empty.
    /// </summary>
    internal async Task<string> TakeWaitingHereAsync(Jid bare, string resumeId)
    {
        if (_server?.Modules?.Parking?.TakeWaiting(bare, resumeId) is { } here)
        {
            return here.ToString();
        }

        foreach (var edge in _proxies.Values.Where(p => p.Jid.Bare == bare).Select(p => (p.Stream as EdgeCarrier)?.Edge).OfType<string>().Distinct(StringComparer.Ordinal).ToList())
        {
            string taken;
            try
            {
                taken = await _grains!.GetGrain<INodeGrain>(edge).TakeWaitingAsync(bare.ToString(), resumeId).ConfigureAwait(false);
            }
            catch (Exception ex) when (Unreachable.Is(ex, _stopping.Token))
            {
                _log.Debug("{Account}: asking {Node} for the session {Id}: {Reason}", bare, NodeName(edge), resumeId, ex.Message);
                continue;
            }

            var split = taken.IndexOf('\n', StringComparison.Ordinal);
            if (split < 0 || !long.TryParse(taken.AsSpan(0, split), CultureInfo.InvariantCulture, out var id) || !_proxies.TryRemove(id, out var proxy) || proxy.Vacate() is null)
            {
                continue;
            }

            // Its state (presence, priority, the modules' flags) is the proxy's; the edge had the stream's.
            var snapshot = ElementParser.Parse(taken[(split + 1)..]);
            snapshot.RemoveChildren("session", ClientSession.ParkedNamespace);
            snapshot.Add(proxy.Snapshot());
            return snapshot.ToString();
        }

        return string.Empty;
    }

    /// <summary>On a session's edge: its client resumes it on another node while it waits here; "link id, newline, snapshot", or empty.</summary>
    internal string TakeEdgeWaitingHere(Jid bare, string resumeId)
    {
        if (_server?.Modules?.Parking?.TakeWaiting(bare, resumeId) is not { } snapshot)
        {
            return string.Empty;
        }

        var link = _edges.Values.FirstOrDefault(l => l.Session.IsEnded && l.Session.Jid.ToString() == snapshot.GetAttribute("jid"));
        if (link is null || !ForgetEdge(link))
        {
            return string.Empty;
        }

        return link.Id.ToString(CultureInfo.InvariantCulture) + "\n" + snapshot;
    }

    /// <summary>A client resumes here a session that waits on its account's home, another node: taken from there.</summary>
    private async ValueTask<Element?> TakeFromHomeAsync(Jid bare, string resumeId, CancellationToken ct)
    {
        if (IsHome(bare))
        {
            return null;
        }

        var (answered, taken, failure) = await CallHomeAsync(bare, grain => grain.TakeWaitingAsync(resumeId), ct).ConfigureAwait(false);
        if (!answered)
        {
            _log.Warn("{Account}: its home did not answer for the session {Id} resumed here: {Reason}", bare, resumeId, failure);
            return null;
        }

        if (taken is not { Length: > 0 })
        {
            return null;
        }

        _log.Info("{Account}: the session {Id} was taken from its home for its client resuming here", bare, resumeId);
        return ElementParser.Parse(taken);
    }

    private static bool IsProxySnapshot(string parked) => parked.StartsWith("<proxy", StringComparison.Ordinal);
}
