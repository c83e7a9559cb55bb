using System.Collections.Concurrent;
using System.Diagnostics;
using System.Threading.Channels;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using NLog;
using Npgsql;
using Orleans;
using Orleans.Configuration;
using Orleans.Hosting;
using Orleans.Runtime;
using Xmpp.Core.Addressing;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;
using Xmpp.Server.Hosting;
using Xmpp.Server.Routing;
using Xmpp.Server.Sessions;

namespace Xmpp.Server.Cluster.Orleans;

/// <summary>
/// Cluster mode on Microsoft Orleans (README, "Running a cluster"): a silo in this process, members found
/// through the membership table in the shared PostgreSQL database, and one <see cref="IHomeGrain"/> per
/// account whose activation makes its silo the account's home. This file: start, forwarding, claims, membership,
/// shutdown; OrleansCluster.Parking.cs (drains and resumption on another node), OrleansCluster.Ledger.cs (what a
/// dead node leaves behind), OrleansCluster.Checkpoints.cs (rooms taken over after their node died),
/// OrleansCluster.Fence.cs (the self-fence), OrleansCluster.Accounts.cs (failed logins and the administration
/// commands across nodes).
/// </summary>
public sealed partial class OrleansCluster : ICluster, IAsyncDisposable
{
    /// <summary>How long a login's claim holds the home before its session is bound.</summary>
    private static readonly TimeSpan ClaimHold = TimeSpan.FromSeconds(30);

    private readonly Config.ClusterOptions _options;
    private readonly string _connectionString;

    /// <summary>The cluster's own queries (ledger, clean-up, parked sessions, self-check): a few connections at most, so that a drain of thousands of sessions queues here instead of exhausting the database's connection slots.</summary>
    private readonly NpgsqlDataSource _db;
    private readonly Logger _log;
    private readonly ConcurrentDictionary<Jid, byte> _homed = new();
    private readonly ConcurrentDictionary<Jid, long> _claims = new();
    private readonly ServerMetrics _metrics;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Channel<LedgerChange> _ledger = Channel.CreateUnbounded<LedgerChange>(new UnboundedChannelOptions { SingleReader = true });
    private readonly ConcurrentDictionary<string, byte> _cleaned = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _cleanupGate = new(1, 1);
    private Task _ledgerWriter = Task.CompletedTask;
    private string _siloKey = string.Empty;
    private IHost? _host;
    private IGrainFactory? _grains;
    private SiloAddress? _silo;
    private IClusterMembershipService? _membership;
    private ServerContext? _server;
    private Router? _router;
    private ISessionRegistry? _sessions;

    public OrleansCluster(Config.ClusterOptions options, string connectionString, LogFactory logs, ServerMetrics metrics)
    {
        _options = options;
        _connectionString = connectionString;
        _db = new NpgsqlDataSourceBuilder(connectionString) { ConnectionStringBuilder = { MaxPoolSize = 8 } }.Build();
        _log = logs.GetLogger("Cluster");
        _metrics = metrics;
        Logs = logs;
    }

    public string Node => _options.Node;

    internal LogFactory Logs { get; }

    /// <summary>Cross-node stanzas sent from this node, and the time their routing took on the home node.</summary>
    public long Forwarded => Interlocked.Read(ref _forwarded);

    private long _forwarded;

    /// <summary>This node's sessions, wrapped so that the end of an account's last one releases its home.</summary>
    public ISessionRegistry WrapSessions(ISessionRegistry local)
    {
        _sessions = local;
        return new ClusterSessions(local, Bound, jid => _ledger.Writer.TryWrite(new LedgerChange(jid.ToString(), null, false)), Released);
    }

    private void Bound(IClientSession session)
    {
        // The login's claim has its session now: the session holds the home from here on.
        _claims.TryRemove(session.Jid.Bare, out _);
        // A proxy's row names its edge node: that node's death ends it (see the clean-up).
        _ledger.Writer.TryWrite(new LedgerChange(session.Jid.ToString(), null, true, Via: (session as ClientSession)?.Stream is EdgeCarrier carrier ? carrier.Edge : null));

        // A session that arrived from another node (a drain) brings its directed presence.
        foreach (var target in session.DirectedPresence)
        {
            Directed(session.Jid, target, true);
        }
    }

    public void Directed(Jid session, Jid target, bool available) => _ledger.Writer.TryWrite(new LedgerChange(session.ToString(), target.ToString(), available));

    /// <summary>Creates the membership tables if needed and starts the silo; returns once this node is an active member.</summary>
    public async Task StartAsync(ServerContext server, Router router, CancellationToken cancellationToken)
    {
        _server = server;
        _router = router;
        await ClusterSchema.EnsureAsync(_connectionString, cancellationToken).ConfigureAwait(false);
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true, ApplicationName = "xmppserver" });
        builder.Logging.ClearProviders();
        builder.Logging.AddProvider(new OrleansLogging(Logs, () => _leaving));
        builder.Logging.SetMinimumLevel(Microsoft.Extensions.Logging.LogLevel.Warning);
        builder.Services.AddSingleton(this);
        builder.UseOrleans(silo =>
        {
            silo.Configure<global::Orleans.Configuration.ClusterOptions>(o =>
            {
                o.ClusterId = _options.Id;
                o.ServiceId = _options.Id;
            });
            silo.Configure<SiloOptions>(o => o.SiloName = _options.Node);
            silo.Configure<EndpointOptions>(o =>
            {
                o.AdvertisedIPAddress = _options.Address;
                o.SiloPort = _options.Port;
                o.SiloListeningEndpoint = new System.Net.IPEndPoint(_options.Address, _options.Port);

                // No Orleans clients connect from outside: no gateway.
                o.GatewayPort = 0;
            });
            silo.UseAdoNetClustering(o =>
            {
                o.Invariant = "Npgsql";
                o.ConnectionString = _connectionString;
            });
            silo.Configure<ClusterMembershipOptions>(o =>
            {
                o.ProbeTimeout = _options.ProbeTimeout;
                o.NumMissedProbesLimit = _options.MissedProbes;
                o.TableRefreshTimeout = TimeSpan.FromSeconds(Math.Max(1, _options.ProbeTimeout.TotalSeconds * 2));
                o.IAmAliveTablePublishTimeout = TimeSpan.FromSeconds(Math.Max(5, _options.ProbeTimeout.TotalSeconds * 5));
                o.DefunctSiloExpiration = TimeSpan.FromHours(1);
            });
            silo.Configure<GrainCollectionOptions>(o => o.CollectionAge = TimeSpan.FromMinutes(15));

            // One home per account and one instance per room rest on there being one activation per grain. The
            // default directory is eventually consistent: when a node leaves, another may activate a grain that
            // still lives (seen in the drain test: a second home for an account whose home had just moved). The
            // strong directory hands its registrations off when a node leaves, and never lets a grain be active on
            // two members. Orleans still marks it experimental (ORLEANSEXP003); README says so.
#pragma warning disable ORLEANSEXP003
            silo.AddDistributedGrainDirectory();
#pragma warning restore ORLEANSEXP003

            // After a node's crash the strong directory holds the grains it had (and the directory ranges it owned)
            // for a lease, in case the node still runs them: by default long enough that a dead node's contacts
            // waited more than 20 s for their unavailable presence (the SIGSTOP test). A node that is still running
            // learns it was declared dead at its next membership read and stops, and one that was paused fences
            // itself before routing anything (FenceAsync): the lease need only cover failure detection plus two reads.
            silo.Configure<GrainDirectoryOptions>(o => o.RangeLeaseDuration = (_options.ProbeTimeout * _options.MissedProbes) + TimeSpan.FromSeconds(4 * Math.Max(1, _options.ProbeTimeout.TotalSeconds)));
            silo.Services.AddPlacementDirector<SiloKeyPlacement, SiloKeyPlacementDirector>();
        });
        var host = builder.Build();
        var started = Stopwatch.GetTimestamp();
        await host.StartAsync(cancellationToken).ConfigureAwait(false);
        _host = host;
        _grains = host.Services.GetRequiredService<IGrainFactory>();
        _silo = host.Services.GetRequiredService<ILocalSiloDetails>().SiloAddress;
        _membership = host.Services.GetRequiredService<IClusterMembershipService>();
        _siloKey = _silo.ToParsableString();
        _ledgerWriter = WriteLedgerAsync(_stopping.Token);
        _checkpointWriter = WriteCheckpointsAsync(_stopping.Token);
        _log.Info("Joined cluster {Cluster} as {Node} ({Silo}) in {Elapsed:0} ms: {Members}", _options.Id, _options.Node, _silo, Stopwatch.GetElapsedTime(started).TotalMilliseconds, string.Join(", ", Members().Select(m => m.Node + " " + m.Status)));
        _ = WatchMembershipAsync(_stopping.Token);
        _ = CleanUpAsync(_stopping.Token);
        Volatile.Write(ref _lastTick, Stopwatch.GetTimestamp());
        _ = WatchdogAsync(_stopping.Token);
    }

    public bool IsHome(Jid bare) => _homed.ContainsKey(bare);

    private readonly RoutingStripes _routing = new();

    public RoutingMark EnterRouting(Jid bare) => _routing.Enter(bare);

    public async ValueTask ForwardAsync(Element stanza, Jid from, Jid to, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        Interlocked.Increment(ref _forwarded);
        var scope = _pipeline.Value is { IsOpen: true } open ? open : null;
        var item = new Forwarded(stanza.ToString(), from.ToString(), to.ToString(), Ordered: scope is not null);
        var bare = to.Bare;
        var pipelined = false;
        try
        {
            // Known home: in the next batch to that node (queued now, in order). A client's message does not wait
            // for it here: its stream's window does (ForwardWindow). Unknown, moved or gone: through the home grain,
            // which activates where it must and says where it is.
            if (_homes.TryGetValue(bare, out var home))
            {
                var sent = Pump(home).SendAsync(item);
                if (!sent.IsCompleted && scope is not null)
                {
                    scope.Add(FinishForwardAsync(sent, item, stanza, bare, scope.Before, started));
                    pipelined = true;
                    return;
                }

                if (await sent.WaitAsync(cancellationToken).ConfigureAwait(false))
                {
                    return;
                }
            }

            Remember(bare, await RouteThroughHomeAsync(item, stanza, bare, cancellationToken).ConfigureAwait(false));
        }
        finally
        {
            if (!pipelined)
            {
                _metrics.ClusterForwarded(Stopwatch.GetTimestamp() - started);
            }
        }
    }

    private readonly AsyncLocal<PipelineScope?> _pipeline = new();

    public PipelineScope Pipeline(Task before)
    {
        // Set in this synchronous call, the value is the caller's from here on (as for Track); disposing gives the
        // caller's outer value back.
        var scope = new PipelineScope(before, _pipeline.Value, _pipeline);
        _pipeline.Value = scope;
        return scope;
    }

    /// <summary>What is left of a forward the client's stream did not wait for (<see cref="ForwardWindow"/>).</summary>
    private async Task FinishForwardAsync(Task<bool> sent, Forwarded item, Element stanza, Jid bare, Task before, long started)
    {
        try
        {
            if (await sent.ConfigureAwait(false))
            {
                return;
            }

            // Not homed there any more, or that node is gone: through the home grain, as below, after the stream's
            // earlier messages (one to the same recipient may be on the same detour).
            await before.ConfigureAwait(false);
            Remember(bare, await RouteThroughHomeAsync(item, stanza, bare, _stopping.Token).ConfigureAwait(false));
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
            // Stopping.
        }
        finally
        {
            _metrics.ClusterForwarded(Stopwatch.GetTimestamp() - started);
        }
    }

    private void Remember(Jid bare, string home)
    {
        // Empty: the home is moving with parked sessions; nothing to remember.
        if (home.Length > 0 && home != _siloKey)
        {
            if (_homes.Count >= MaxKnownHomes)
            {
                _homes.Clear();
            }

            _homes[bare] = home;
        }
    }

    /// <summary>How long a stanza waits for its recipient's home to answer again after its node stopped answering: detection, the directory's lease, and a margin.</summary>
    private TimeSpan ForwardPatience => (_options.ProbeTimeout * _options.MissedProbes * 2) + TimeSpan.FromSeconds(4 * Math.Max(1, _options.ProbeTimeout.TotalSeconds)) + TimeSpan.FromSeconds(10);

    /// <summary>
    /// Through the recipient's home grain. A home whose node stopped answering (killed, cut off) comes back on a live
    /// node once the node is declared dead and the directory's lease is over: the stanza waits for it (it is not
    /// acknowledged meanwhile), and is bounced only if that takes longer than <see cref="ForwardPatience"/>. Never
    /// an exception to the sender's stream, whose session has nothing to do with the failure.
    /// </summary>
    private async Task<string> RouteThroughHomeAsync(Forwarded item, Element stanza, Jid bare, CancellationToken ct)
    {
        var (answered, home, failure) = await CallHomeAsync(bare, grain => grain.RouteAsync(item.Stanza, item.From, item.To), ct).ConfigureAwait(false);
        if (answered)
        {
            return home!;
        }

        _log.Error("A {Stanza} for {Account} found no home in {Seconds:0} s ({Reason}): bounced", stanza.Name, bare, ForwardPatience.TotalSeconds, failure);
        await _router!.BounceAsync(stanza, new StanzaError(StanzaErrorCondition.RemoteServerTimeout, "the recipient's node does not answer"), ct).ConfigureAwait(false);
        return string.Empty;
    }

    /// <summary>
    /// Calls an account's or room's home grain until it answers: one whose node stopped answering comes back on a
    /// live node once the node is declared dead and the directory's lease is over. Not answered (with the last
    /// failure) after <see cref="ForwardPatience"/>.
    /// </summary>
    private async Task<(bool Answered, T? Value, string? Failure)> CallHomeAsync<T>(Jid bare, Func<IHomeGrain, Task<T>> call, CancellationToken ct)
    {
        var started = Stopwatch.GetTimestamp();
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                return (true, await call(Grain(bare)).WaitAsync(ct).ConfigureAwait(false), null);
            }
            catch (Exception ex) when (Unreachable.Is(ex, ct))
            {
                if (Stopwatch.GetElapsedTime(started) > ForwardPatience)
                {
                    return (false, default, ex.Message);
                }

                if (attempt == 0)
                {
                    _log.Warn("The home of {Account} does not answer ({Reason}): waiting for it to come back on a live node", bare, ex.Message);
                }

                await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(1000, 50 << Math.Min(attempt, 5))), ct).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Where the accounts and rooms this node sent to were homed at the last answer (bounded).</summary>
    private readonly ConcurrentDictionary<Jid, string> _homes = new();
    private readonly ConcurrentDictionary<string, NodePump> _pumps = new(StringComparer.Ordinal);
    private const int MaxKnownHomes = 1_000_000;

    private readonly BatchCounters _batches = new();

    private NodePump Pump(string silo) => _pumps.GetOrAdd(silo, key => new NodePump(_grains!.GetGrain<INodeGrain>(key), _siloKey, _log, _batches, _stopping.Token));

    /// <summary>Batches sent to other nodes, and the stanzas in them.</summary>
    public (long Batches, long Stanzas) Batched => (_batches.Batches, _batches.Stanzas);

    /// <summary>The routing under way of each sender's last ordered message (<see cref="Forwarded.Ordered"/>) whose routing did not finish at once.</summary>
    private readonly ConcurrentDictionary<string, Task<bool>> _routingFrom = new(StringComparer.Ordinal);

    /// <summary>
    /// On the node a batch reached: routes a stanza if its recipient is homed here. A client's stream sends its messages
    /// without waiting for each (ForwardWindow), so several of one sender's may be in one batch or in batches that
    /// overlap: each such message is routed after the sender's one before it (RFC 6120 §10.1), which costs nothing
    /// while routing finishes at once (a delivery to a session). Only those: a stanza whose routing sends another of
    /// the same sender back here (a presence broadcast, a probe) would otherwise wait for itself. Called in batch
    /// order within the node grain's turns.
    /// </summary>
    internal Task<bool> TryRouteHereAsync(Forwarded item)
    {
        if (!item.Ordered)
        {
            return TryRouteHereNowAsync(item);
        }

        Task<bool> task;
        if (_routingFrom.TryGetValue(item.From, out var before) && !before.IsCompleted)
        {
            task = AfterAsync(before, item);
        }
        else
        {
            task = TryRouteHereNowAsync(item);
            if (task.IsCompleted)
            {
                return task;
            }
        }

        _routingFrom[item.From] = task;
        _ = task.ContinueWith(t => _routingFrom.TryRemove(new KeyValuePair<string, Task<bool>>(item.From, t)), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        return task;

        async Task<bool> AfterAsync(Task<bool> earlier, Forwarded next)
        {
            try
            {
                await earlier.ConfigureAwait(false);
            }
            catch (Exception)
            {
                // its own caller saw it
            }

            return await TryRouteHereNowAsync(next).ConfigureAwait(false);
        }
    }

    private async Task<bool> TryRouteHereNowAsync(Forwarded item)
    {
        if (item.Edge != 0)
        {
            return await FromEdgeHereAsync(item.Stanza, item.From, item.Edge).ConfigureAwait(false);
        }

        var to = Jid.Parse(item.To);
        if (!IsHome(to.Bare))
        {
            return false;
        }

        // Done (for the sender) once what it caused reached the clients' nodes too: the sender's next stanza, or
        // the answer to the request that sent this one, comes after it there.
        using var reach = Track();
        await RouteHereAsync(item.Stanza, item.From, to).ConfigureAwait(false);
        await reach.ReachedAsync(_stopping.Token).ConfigureAwait(false);
        return true;
    }

    /// <summary>This node's silo address, as other nodes name it.</summary>
    internal string SiloKey => _siloKey;

    public async ValueTask<bool> ClaimAsync(Jid bare, CancellationToken cancellationToken)
    {
        for (var attempt = 0; attempt < 40; attempt++)
        {
            // A home on a node that just died answers again once that node is declared dead (its client logs in
            // again at once, often before): the login waits for it, as a stanza to the account would.
            var (answered, reply, failure) = await CallHomeAsync(bare, grain => grain.ClaimAsync(_silo!), cancellationToken).ConfigureAwait(false);
            if (!answered)
            {
                _log.Warn("{Account}: its home does not answer ({Reason}): login refused", bare, failure);
                throw new XmppStreamException(StreamErrorCondition.RemoteConnectionFailed, "the account's home node does not answer; try again");
            }

            switch (reply!.Outcome)
            {
                case ClaimOutcome.Granted:
                    return true;
                case ClaimOutcome.Elsewhere:
                    _log.Debug("{Account} has sessions on another node ({Node}): its session from here will be bound there", bare, reply.Node);
                    return false;
                default:
                    await Task.Delay(TimeSpan.FromMilliseconds(25), cancellationToken).ConfigureAwait(false);
                    break;
            }
        }

        _log.Warn("{Account}: its home did not move here in time", bare);
        throw new XmppStreamException(StreamErrorCondition.ResourceConstraint, "the account is moving between nodes; try again");
    }

    public IReadOnlyList<ClusterMember> Members()
    {
        if (_membership is null)
        {
            return [];
        }

        return [.. _membership.CurrentSnapshot.Members.Values
            .OrderBy(m => m.Name, StringComparer.Ordinal)
            .Select(m => new ClusterMember(m.Name, m.SiloAddress.ToString(), m.Status.ToString(), m.SiloAddress.Equals(_silo)))];
    }

    /// <summary>Accounts homed on this node now.</summary>
    public int HomedCount => _homed.Count;

    // ---- called by the grain, on this node ------------------------------------------------------------

    internal void Arrived(Jid bare)
    {
        _homed[bare] = 0;

        // Whatever this node cached of the account while it was homed elsewhere may be stale.
        _server?.Modules?.ForgetAccount(bare);
    }

    internal void Left(Jid bare, string? why)
    {
        _homed.TryRemove(bare, out _);
        _log.Debug("{Account} is no longer homed here ({Reason})", bare, why);
    }

    internal void Hold(Jid bare) => _claims[bare] = Stopwatch.GetTimestamp();

    /// <summary>Whether the account has a session here (or a login that will bind one soon), or a module keeps state of the entity here (a room's occupants).</summary>
    internal bool Holds(Jid bare) =>
        _sessions!.Resources(bare).Count > 0 ||
        (_claims.TryGetValue(bare, out var at) && Stopwatch.GetElapsedTime(at) < ClaimHold) ||
        (_server?.Modules?.HoldsHome(bare) ?? false);

    internal Task RouteHereAsync(string xml, string from, string to) => RouteHereAsync(xml, from, Jid.Parse(to));

    private async Task RouteHereAsync(string xml, string from, Jid to) =>
        await _router!.RouteForwardedAsync(ElementParser.Parse(xml), Jid.Parse(from), to, _stopping.Token).ConfigureAwait(false);

    private void Released(Jid bare)
    {
        _claims.TryRemove(bare, out _);
        if (_grains is not null && !_stopping.IsCancellationRequested)
        {
            _ = ReleaseAsync(bare);
        }
    }

    private async Task ReleaseAsync(Jid bare)
    {
        try
        {
            await Grain(bare).ReleaseAsync().ConfigureAwait(false);
        }
        catch (Exception ex) when (Unreachable.Is(ex, _stopping.Token) || ex is InvalidOperationException)
        {
            _log.Debug("Releasing {Account}: {Reason}", bare, ex.Message);
        }
    }

    private IHomeGrain Grain(Jid bare) => _grains!.GetGrain<IHomeGrain>(bare.ToString());

    private async Task WatchMembershipAsync(CancellationToken ct)
    {
        try
        {
            var known = Members().ToDictionary(m => m.Address, m => m.Status, StringComparer.Ordinal);
            await foreach (var snapshot in _membership!.MembershipUpdates.WithCancellation(ct).ConfigureAwait(false))
            {
                foreach (var m in snapshot.Members.Values)
                {
                    var address = m.SiloAddress.ToString();
                    var status = m.Status.ToString();
                    if (!known.TryGetValue(address, out var before) || before != status)
                    {
                        known[address] = status;
                        _log.Info("Cluster member {Node} ({Silo}) is {Status}", m.Name, address, status);
                        // Leaving (a drain, a shutdown) or gone: stanzas for what was homed there go through the homes' grains.
                        if (m.Status is SiloStatus.Dead or SiloStatus.ShuttingDown or SiloStatus.Stopping)
                        {
                            var key = m.SiloAddress.ToParsableString();
                            foreach (var entry in _homes.Where(e => e.Value == key))
                            {
                                _homes.TryRemove(entry);
                            }

                            if (_pumps.TryRemove(key, out var pump))
                            {
                                pump.Dispose();
                            }

                            if (m.Status == SiloStatus.Dead)
                            {
                                EdgesOfDeadNode(key);
                            }
                        }
                    }
                }

                _ = CleanUpAsync(ct);
            }
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }
    }

    /// <summary>Set when this node starts leaving the cluster (a drain, a shutdown).</summary>
    private volatile bool _leaving;

    public async ValueTask DisposeAsync()
    {
        _leaving = true;
        _log.Info("Leaving the cluster: {Forwarded} stanza(s) forwarded to other nodes, {Stanzas} of them in {Batches} batch(es)", Forwarded, _batches.Stanzas, _batches.Batches);
        _ledger.Writer.TryComplete();
        await _stopping.CancelAsync().ConfigureAwait(false);
        await _ledgerWriter.ConfigureAwait(false);
        await ForgetCheckpointsAsync().ConfigureAwait(false);
        if (_host is { } host)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            try
            {
                await host.StopAsync(timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                _log.Warn("The silo did not stop within 30 s");
            }

            host.Dispose();
        }

        _stopping.Dispose();
        _cleanupGate.Dispose();
        await _db.DisposeAsync().ConfigureAwait(false);
    }

}
