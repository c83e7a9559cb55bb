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
/// account whose activation makes its silo the account's home.
/// </summary>
public sealed class OrleansCluster : ICluster, IAsyncDisposable
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
    private readonly Channel<(bool Bound, string Jid)> _ledger = Channel.CreateUnbounded<(bool, string)>(new UnboundedChannelOptions { SingleReader = true });
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

    public OrleansCluster(Config.ClusterOptions options, string connectionString, int? clientPort, LogFactory logs, ServerMetrics metrics)
    {
        _options = options;
        _connectionString = connectionString;
        _db = new NpgsqlDataSourceBuilder(connectionString) { ConnectionStringBuilder = { MaxPoolSize = 8 } }.Build();
        _log = logs.GetLogger("Cluster");
        _metrics = metrics;
        Logs = logs;
        ClientAddress = options.ClientAddress ?? FormatAddress(options.Address, clientPort ?? 5222);
    }

    public string Node => _options.Node;

    /// <summary>What a client of another node is sent here with (see-other-host).</summary>
    public string ClientAddress { get; }

    internal LogFactory Logs { get; }

    /// <summary>Cross-node stanzas sent from this node, and the time their routing took on the home node.</summary>
    public long Forwarded => Interlocked.Read(ref _forwarded);

    private long _forwarded;

    /// <summary>This node's sessions, wrapped so that the end of an account's last one releases its home.</summary>
    public ISessionRegistry WrapSessions(ISessionRegistry local)
    {
        _sessions = local;
        return new ClusterSessions(local, Bound, jid => _ledger.Writer.TryWrite((false, jid.ToString())), Released);
    }

    private void Bound(Jid full)
    {
        // The login's claim has its session now: the session holds the home from here on.
        _claims.TryRemove(full.Bare, out _);
        _ledger.Writer.TryWrite((true, full.ToString()));
    }

    /// <summary>Creates the membership tables if needed and starts the silo; returns once this node is an active member.</summary>
    public async Task StartAsync(ServerContext server, Router router, CancellationToken cancellationToken)
    {
        _server = server;
        _router = router;
        await ClusterSchema.EnsureAsync(_connectionString, cancellationToken).ConfigureAwait(false);
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true, ApplicationName = "xmppserver" });
        builder.Logging.ClearProviders();
        builder.Logging.AddProvider(new OrleansLogging(Logs));
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
        try
        {
            var item = new Forwarded(stanza.ToString(), from.ToString(), to.ToString());
            var bare = to.Bare;

            // Known home: in the next batch to that node. Unknown, moved or gone: through the home grain, which
            // activates where it must and says where it is.
            if (_homes.TryGetValue(bare, out var home) && await Pump(home).SendAsync(item).WaitAsync(cancellationToken).ConfigureAwait(false))
            {
                return;
            }

            home = await RouteThroughHomeAsync(item, stanza, bare, cancellationToken).ConfigureAwait(false);

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
        finally
        {
            _metrics.ClusterForwarded(Stopwatch.GetTimestamp() - started);
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
        var started = Stopwatch.GetTimestamp();
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                return await Grain(bare).RouteAsync(item.Stanza, item.From, item.To).WaitAsync(ct).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is OrleansException or TimeoutException)
            {
                if (Stopwatch.GetElapsedTime(started) > ForwardPatience)
                {
                    _log.Error("A {Stanza} for {Account} found no home in {Seconds:0} s ({Reason}): bounced", stanza.Name, bare, ForwardPatience.TotalSeconds, ex.Message);
                    await _router!.BounceAsync(stanza, new StanzaError(StanzaErrorCondition.RemoteServerTimeout, "the recipient's node does not answer"), ct).ConfigureAwait(false);
                    return string.Empty;
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

    private NodePump Pump(string silo) => _pumps.GetOrAdd(silo, key => new NodePump(_grains!.GetGrain<INodeGrain>(key), _log, _batches, _stopping.Token));

    /// <summary>Batches sent to other nodes, and the stanzas in them.</summary>
    public (long Batches, long Stanzas) Batched => (_batches.Batches, _batches.Stanzas);

    /// <summary>On the node a batch reached: routes a stanza if its recipient is homed here.</summary>
    internal async Task<bool> TryRouteHereAsync(Forwarded item)
    {
        var to = Jid.Parse(item.To);
        if (!IsHome(to.Bare))
        {
            return false;
        }

        await RouteHereAsync(item.Stanza, item.From, to).ConfigureAwait(false);
        return true;
    }

    /// <summary>This node's silo address, as other nodes name it.</summary>
    internal string SiloKey => _siloKey;

    public async ValueTask<string?> ClaimAsync(Jid bare, CancellationToken cancellationToken)
    {
        for (var attempt = 0; attempt < 40; attempt++)
        {
            var reply = await Grain(bare).ClaimAsync(_silo!).WaitAsync(cancellationToken).ConfigureAwait(false);
            switch (reply.Outcome)
            {
                case ClaimOutcome.Granted:
                    return null;
                case ClaimOutcome.Elsewhere:
                    _log.Info("{Account} has sessions on another node: sending the client to {Address}", bare, reply.ClientAddress);
                    return reply.ClientAddress;
                default:
                    await Task.Delay(TimeSpan.FromMilliseconds(25), cancellationToken).ConfigureAwait(false);
                    break;
            }
        }

        _log.Warn("{Account}: its home did not move here in time", bare);
        throw new XmppStreamException(StreamErrorCondition.ResourceConstraint, "the account is moving between nodes; try again");
    }

    public async ValueTask<int> AccountFailedAsync(string account, CancellationToken cancellationToken)
    {
        var auth = _server!.Options.Auth;
        try
        {
            var count = await _grains!.GetGrain<IAuthThrottleGrain>(account).FailedAsync(auth.FailuresPerAccount, auth.BlockTime, Net.AuthFailureTracker.Window).WaitAsync(cancellationToken).ConfigureAwait(false);
            if (auth.FailuresPerAccount > 0 && count >= auth.FailuresPerAccount)
            {
                // Here at once; the other nodes hear it from the grain.
                _server.AuthFailures.Block(account, DateTimeOffset.UtcNow + auth.BlockTime);
            }

            return count;
        }
        catch (Exception ex) when (ex is OrleansException or TimeoutException)
        {
            _log.Warn("Counting a failed authentication for {Account} cluster-wide failed (counted on this node only): {Reason}", account, ex.Message);
            return 0;
        }
    }

    /// <summary>Failures on the nodes together blocked a username: every active node is told (a one-way call each).</summary>
    internal async Task BlockEverywhereAsync(string account, DateTimeOffset until)
    {
        _log.Warn("{Account} is blocked on every node until {Until:HH:mm:ss} after failed authentications across the cluster", account, until);
        foreach (var member in _membership!.CurrentSnapshot.Members.Values.Where(m => m.Status == SiloStatus.Active))
        {
            try
            {
                await _grains!.GetGrain<INodeGrain>(member.SiloAddress.ToParsableString()).BlockAsync(account, until).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is OrleansException or TimeoutException)
            {
                _log.Warn("Telling node {Node} that {Account} is blocked failed: {Reason}", member.Name, account, ex.Message);
            }
        }
    }

    internal void BlockHere(string account, DateTimeOffset until)
    {
        _log.Info("{Account} is blocked here until {Until:HH:mm:ss}: failed authentications across the cluster", account, until);
        _server?.AuthFailures.Block(account, until);
    }

    public async ValueTask<IReadOnlyList<Jid>> SessionsAsync(CancellationToken cancellationToken)
    {
        var all = _sessions!.All.Select(s => s.Jid).ToHashSet();
        var others = _membership!.CurrentSnapshot.Members.Values
            .Where(m => m.Status is SiloStatus.Active or SiloStatus.ShuttingDown && !m.SiloAddress.Equals(_silo))
            .Select(m => m.SiloAddress.ToParsableString())
            .ToArray();
        if (others.Length > 0)
        {
            await using var connection = await _db.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await using var cmd = new NpgsqlCommand("SELECT jid FROM cluster_sessions WHERE cleaned_at IS NULL AND silo = ANY($1::text[])", connection) { Parameters = { new() { Value = others } } };
            await using var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                if (Jid.TryParse(reader.GetString(0), out var jid))
                {
                    all.Add(jid);
                }
            }
        }

        return [.. all];
    }

    public async ValueTask<int> EndSessionsAsync(Jid jid, CancellationToken cancellationToken)
    {
        if (_sessions!.Named(jid).Count > 0)
        {
            return await EndHereAsync(jid.ToString()).ConfigureAwait(false);
        }

        // Bound on the account's home (if anywhere): ended there.
        return await Grain(jid.Bare).EndSessionsAsync(jid.ToString()).WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>On the account's home: an administrator on some node ends these sessions.</summary>
    internal async Task<int> EndHereAsync(string text)
    {
        var sessions = _sessions!.Named(Jid.Parse(text));
        if (sessions.Count > 0)
        {
            await _sessions!.EndAsync(sessions, SessionEnding.EndedByAdministrator, _stopping.Token).ConfigureAwait(false);
        }

        return sessions.Count;
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

    /// <summary>Whether the account's sessions here may leave with its home for a login on another node: all of them wait to be resumed.</summary>
    internal bool CanHandOver(Jid bare) =>
        !(_claims.TryGetValue(bare, out var at) && Stopwatch.GetElapsedTime(at) < ClaimHold) &&
        !(_server?.Modules?.HoldsHome(bare) ?? false) &&
        (_server?.Modules?.Parking?.AllWaiting(bare) ?? false);

    /// <summary>
    /// Parks the account's resumable sessions for its next home (called by its home grain, here): from now on
    /// stanzas for it go through the grain, which keeps them for that node.
    /// </summary>
    internal async Task<string[]> ParkHereAsync(Jid bare)
    {
        _homed.TryRemove(bare, out _);

        // Stanzas that found the account homed here are routed to its sessions first; those routed from now on
        // go through its home grain, which keeps them for the next node.
        if (!await _routing.QuietAsync(bare, TimeSpan.FromSeconds(5)).ConfigureAwait(false))
        {
            _log.Warn("{Account}: routings to it still under way after 5 s; parking its sessions anyway", bare);
        }

        IReadOnlyList<Element> parked = _server?.Modules?.Parking is { } parking ? await parking.ParkAsync(bare).ConfigureAwait(false) : [];
        if (parked.Count == 0)
        {
            // Nothing could leave: the account stays homed here.
            _homed[bare] = 0;
        }
        else if (_sessions!.Resources(bare).Count > 0)
        {
            _log.Info("{Account}: {Count} session(s) that cannot be resumed stay until this node stops", bare, _sessions.Resources(bare).Count);
        }

        return [.. parked.Select(p => p.ToString())];
    }

    /// <summary>The account's parked sessions arrived with its home: they wait here for their clients.</summary>
    internal void RestoreHere(Jid bare, string[] parked)
    {
        if (_server?.Modules?.Parking is not { } parking)
        {
            _log.Warn("{Account}: {Count} parked session(s) arrived, but stream management is not loaded here: they are lost", bare, parked.Length);
            return;
        }

        var snapshots = parked.Select(ElementParser.Parse).ToList();
        parking.Restore(bare, snapshots);
        _ = ForgetParkedAsync([.. snapshots.Select(s => s.GetAttribute("id")).OfType<string>()]);
    }

    /// <summary>
    /// Parked sessions are also written to cluster_parked while they move, so that a client can resume one even if
    /// the move loses it (the node that parked it dies first): <see cref="TakeParkedAsync"/>.
    /// </summary>
    internal async Task SaveParkedAsync(Jid bare, string[] parked)
    {
        try
        {
            await using var connection = await _db.OpenConnectionAsync(CancellationToken.None).ConfigureAwait(false);
            var ids = parked.Select(p => ElementParser.Parse(p).GetAttribute("id") ?? string.Empty).ToArray();
            await using var cmd = new NpgsqlCommand("INSERT INTO cluster_parked (resume_id, jid, snapshot) SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) ON CONFLICT (resume_id) DO UPDATE SET jid = excluded.jid, snapshot = excluded.snapshot, parked_at = now()", connection)
            {
                Parameters = { new() { Value = ids }, new() { Value = Enumerable.Repeat(bare.ToString(), parked.Length).ToArray() }, new() { Value = parked } },
            };
            await cmd.ExecuteNonQueryAsync(CancellationToken.None).ConfigureAwait(false);
        }
        catch (NpgsqlException ex)
        {
            _log.Warn("{Account}: its parked sessions could not be written to the database (they still move with its home): {Reason}", bare, ex.Message);
        }
    }

    private async Task ForgetParkedAsync(string[] ids)
    {
        try
        {
            await using var connection = await _db.OpenConnectionAsync(CancellationToken.None).ConfigureAwait(false);
            await using var cmd = new NpgsqlCommand("DELETE FROM cluster_parked WHERE resume_id = ANY($1::text[])", connection) { Parameters = { new() { Value = ids } } };
            await cmd.ExecuteNonQueryAsync(CancellationToken.None).ConfigureAwait(false);
        }
        catch (NpgsqlException ex)
        {
            _log.Debug("Forgetting parked sessions that arrived: {Reason}", ex.Message);
        }
    }

    public async ValueTask<Element?> TakeParkedAsync(Jid bare, string resumeId, CancellationToken cancellationToken)
    {
        await using var connection = await _db.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var cmd = new NpgsqlCommand("DELETE FROM cluster_parked WHERE resume_id = $1 AND jid = $2 RETURNING snapshot", connection)
        {
            Parameters = { new() { Value = resumeId }, new() { Value = bare.ToString() } },
        };
        if (await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is not string snapshot)
        {
            return null;
        }

        _log.Warn("{Account}: a parked session did not arrive with its home; restored from the database for its client's resumption", bare);
        return ElementParser.Parse(snapshot);
    }

    /// <summary>What reached the account's home while its sessions were being parked or moved: routed here, now that they are here.</summary>
    internal async Task RouteQueuedAsync(Jid bare, List<Forwarded> queued)
    {
        _log.Info("{Account}: routing {Count} stanza(s) that arrived while its sessions moved", bare, queued.Count);
        foreach (var item in queued)
        {
            try
            {
                await RouteHereAsync(item.Stanza, item.From, item.To).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                _log.Warn(ex, "{Account}: a stanza kept while its sessions moved could not be routed", bare);
            }
        }
    }

    /// <summary>
    /// A rolling restart: each account with resumable sessions here is parked through its home grain, which moves
    /// to another active node (in turn) and restores them there; this waits until each home has arrived.
    /// </summary>
    public async Task<int> DrainAsync(CancellationToken cancellationToken)
    {
        var accounts = _server?.Modules?.Parking?.ParkableAccounts() ?? [];
        if (accounts.Count == 0 || _membership is null)
        {
            return 0;
        }

        var targets = _membership.CurrentSnapshot.Members.Values
            .Where(m => m.Status == SiloStatus.Active && !m.SiloAddress.Equals(_silo))
            .Select(m => m.SiloAddress)
            .OrderBy(a => a.ToParsableString(), StringComparer.Ordinal)
            .ToArray();
        if (targets.Length == 0)
        {
            _log.Warn("Draining: no other active node to take {Count} account(s) with resumable sessions; they end as at any shutdown", accounts.Count);
            return 0;
        }

        var started = Stopwatch.GetTimestamp();
        var parked = 0;
        var failed = 0;
        await Parallel.ForEachAsync(accounts.Select((account, i) => (account, target: targets[i % targets.Length])), new ParallelOptions { MaxDegreeOfParallelism = 64, CancellationToken = cancellationToken }, async (item, ct) =>
        {
            try
            {
                var grain = Grain(item.account);
                var count = await grain.DrainAsync(_silo!, item.target).WaitAsync(ct).ConfigureAwait(false);
                if (count > 0)
                {
                    Interlocked.Add(ref parked, count);

                    // Answered by the new activation once the move is over.
                    if (await grain.WhereAsync().WaitAsync(ct).ConfigureAwait(false) == _siloKey)
                    {
                        Interlocked.Increment(ref failed);
                        _log.Error("{Account}: its home did not leave this node; its parked sessions are lost", item.account);
                    }
                }
            }
            catch (Exception ex) when (ex is OrleansException or TimeoutException)
            {
                Interlocked.Increment(ref failed);
                _log.Error("Draining {Account} failed: {Reason}", item.account, ex.Message);
            }
        }).ConfigureAwait(false);
        _log.Info("Drained: {Parked} session(s) and room(s) of {Accounts} account(s) and room(s) parked on {Targets} other node(s) in {Elapsed:0} ms{Failed}", parked, accounts.Count, targets.Length, Stopwatch.GetElapsedTime(started).TotalMilliseconds, failed > 0 ? $", {failed} failed" : string.Empty);
        return parked;
    }

    internal Task RouteHereAsync(string xml, string from, string to) => RouteHereAsync(xml, from, Jid.Parse(to));

    private async Task RouteHereAsync(string xml, string from, Jid to) =>
        await _router!.RouteForwardedAsync(ElementParser.Parse(xml), Jid.Parse(from), to, _stopping.Token).ConfigureAwait(false);

    /// <summary>
    /// On the account's home: sessions of it died with their node. Each contact with a subscription to its presence
    /// gets unavailable presence from each (RFC 6121 §4.5.2, which the dead node can no longer send).
    /// </summary>
    internal async Task LostHereAsync(Jid bare, string[] sessions)
    {
        var roster = await _server!.Modules.Rosters.GetAsync(bare, _stopping.Token).ConfigureAwait(false);
        var told = 0;
        foreach (var text in sessions)
        {
            var full = Jid.Parse(text);
            if (_sessions!.Find(full) is not null)
            {
                continue; // bound again here since: it is alive
            }

            foreach (var contact in roster.SubscriberJids)
            {
                var unavailable = new Element("presence", Core.Ns.Client)
                    .SetAttribute("type", "unavailable")
                    .SetAttribute("from", full.ToString())
                    .SetAttribute("to", contact.ToString());
                await _router!.RouteParsedAsync(unavailable, full, contact, _stopping.Token).ConfigureAwait(false);
                told++;
            }
        }

        _log.Info("{Account}: {Sessions} session(s) lost with their node; {Told} unavailable presence(s) sent to contacts", bare, sessions.Length, told);
    }

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
        catch (Exception ex) when (ex is OrleansException or TimeoutException or InvalidOperationException)
        {
            _log.Debug("Releasing {Account}: {Reason}", bare, ex.Message);
        }
    }

    private IHomeGrain Grain(Jid bare) => _grains!.GetGrain<IHomeGrain>(bare.ToString());

    // ---- the crash ledger: the sessions bound on each silo ---------------------------------------------

    /// <summary>Writes binds and unbinds to cluster_sessions in batches (one transaction per batch), in order.</summary>
    private async Task WriteLedgerAsync(CancellationToken ct)
    {
        var reader = _ledger.Reader;
        while (true)
        {
            try
            {
                if (!await reader.WaitToReadAsync(ct).ConfigureAwait(false))
                {
                    return;
                }
            }
            catch (OperationCanceledException)
            {
                // Stopping: what is queued is still written below, once.
            }

            var last = new Dictionary<string, bool>(StringComparer.Ordinal);
            while (reader.TryRead(out var change))
            {
                last[change.Jid] = change.Bound;
            }

            if (last.Count > 0)
            {
                try
                {
                    await using var connection = await _db.OpenConnectionAsync(CancellationToken.None).ConfigureAwait(false);
                    await using var batch = new NpgsqlBatch(connection);
                    var bound = last.Where(p => p.Value).Select(p => p.Key).ToArray();
                    var unbound = last.Where(p => !p.Value).Select(p => p.Key).ToArray();
                    if (bound.Length > 0)
                    {
                        batch.BatchCommands.Add(new NpgsqlBatchCommand("INSERT INTO cluster_sessions (silo, jid) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING") { Parameters = { new() { Value = _siloKey }, new() { Value = bound } } });
                    }

                    if (unbound.Length > 0)
                    {
                        batch.BatchCommands.Add(new NpgsqlBatchCommand("DELETE FROM cluster_sessions WHERE silo = $1 AND jid = ANY($2::text[])") { Parameters = { new() { Value = _siloKey }, new() { Value = unbound } } });
                    }

                    await batch.ExecuteNonQueryAsync(CancellationToken.None).ConfigureAwait(false);
                }
                catch (NpgsqlException ex)
                {
                    _log.Warn("Cannot write {Count} session change(s) to the cluster ledger: {Reason}", last.Count, ex.Message);
                }
            }

            if (ct.IsCancellationRequested)
            {
                return;
            }
        }
    }

    /// <summary>
    /// What a dead node left behind (README, "Running a cluster"): every node removes the node's sessions from
    /// the rooms it runs (status 333); the first active member in address order sends the unavailable presence
    /// the dead node owed its users' contacts, through each account's home, and marks the node's rows cleaned.
    /// Runs when this node joins and whenever the membership changes.
    /// </summary>
    private async Task CleanUpAsync(CancellationToken ct)
    {
        // One clean-up at a time; a change that arrives meanwhile makes the running one look again.
        Interlocked.Exchange(ref _cleanupAgain, 1);
        if (!await _cleanupGate.WaitAsync(0, ct).ConfigureAwait(false))
        {
            return;
        }

        try
        {
            while (Interlocked.Exchange(ref _cleanupAgain, 0) == 1)
            {
                await CleanUpOnceAsync(ct).ConfigureAwait(false);
            }
        }
        finally
        {
            _cleanupGate.Release();
        }
    }

    private int _cleanupAgain;

    // ---- the self-fence: a node that was paused checks it is still a member before going on -------------

    private long _lastTick = Stopwatch.GetTimestamp();
    private volatile bool _fenced;
    private Task? _verifying;
    private readonly object _fenceGate = new();

    /// <summary>A pause this long could have let the others declare this node dead (half their detection time).</summary>
    private TimeSpan FenceAfter => _options.ProbeTimeout * _options.MissedProbes / 2;

    public ValueTask FenceAsync(CancellationToken cancellationToken)
    {
        if (!_fenced && Stopwatch.GetElapsedTime(Volatile.Read(ref _lastTick)) < FenceAfter)
        {
            return ValueTask.CompletedTask;
        }

        _fenced = true;
        return new ValueTask(Verify().WaitAsync(cancellationToken));
    }

    /// <summary>Ticks every 250 ms; a late tick means the process was paused, and fences it until verified.</summary>
    private async Task WatchdogAsync(CancellationToken ct)
    {
        try
        {
            while (!ct.IsCancellationRequested)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(250), ct).ConfigureAwait(false);
                if (Stopwatch.GetElapsedTime(Volatile.Read(ref _lastTick)) >= FenceAfter)
                {
                    _fenced = true;
                    _ = Verify();
                }

                if (!_fenced)
                {
                    Volatile.Write(ref _lastTick, Stopwatch.GetTimestamp());
                }
            }
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }
    }

    private Task Verify()
    {
        lock (_fenceGate)
        {
            return _verifying ??= VerifyAsync();
        }
    }

    /// <summary>Reads this node's own membership row: dead, the process stops at once; otherwise routing goes on.</summary>
    private async Task VerifyAsync()
    {
        var paused = Stopwatch.GetElapsedTime(Volatile.Read(ref _lastTick));
        _log.Warn("This node was paused for {Paused:0.0} s: checking that it is still a cluster member before routing anything", paused.TotalSeconds);
        while (true)
        {
            try
            {
                await using var connection = await _db.OpenConnectionAsync(CancellationToken.None).ConfigureAwait(false);
                await using var cmd = new NpgsqlCommand("SELECT status FROM orleansmembershiptable WHERE deploymentid = $1 AND address = $2 AND port = $3 AND generation = $4", connection)
                {
                    Parameters = { new() { Value = _options.Id }, new() { Value = _silo!.Endpoint.Address.ToString() }, new() { Value = _silo.Endpoint.Port }, new() { Value = _silo.Generation } },
                };
                var status = await cmd.ExecuteScalarAsync(CancellationToken.None).ConfigureAwait(false);
                if (status is int s && (SiloStatus)s == SiloStatus.Dead)
                {
                    // The others have cleaned up after this node; going on would be a second home for its accounts and rooms.
                    _log.Fatal("This node was declared dead while it was paused: stopping now, without routing anything more");
                    Logs.Flush(TimeSpan.FromSeconds(2));
                    Environment.Exit(75);
                }

                _log.Info("Still a member ({Status}): routing goes on", status is int st ? ((SiloStatus)st).ToString() : "not in the table yet");
                break;
            }
            catch (NpgsqlException ex)
            {
                _log.Warn("Cannot read the membership table ({Reason}): routing stays held", ex.Message);
                await Task.Delay(TimeSpan.FromSeconds(1)).ConfigureAwait(false);
            }
        }

        lock (_fenceGate)
        {
            Volatile.Write(ref _lastTick, Stopwatch.GetTimestamp());
            _fenced = false;
            _verifying = null;
        }
    }

    private async Task CleanUpOnceAsync(CancellationToken ct)
    {
        try
        {
            var snapshot = _membership!.CurrentSnapshot;
            var live = snapshot.Members.Values.Where(m => m.Status != SiloStatus.Dead).Select(m => m.SiloAddress.ToParsableString()).ToHashSet(StringComparer.Ordinal);
            var elected = snapshot.Members.Values.Where(m => m.Status == SiloStatus.Active).Select(m => m.SiloAddress.ToParsableString()).Order(StringComparer.Ordinal).FirstOrDefault() == _siloKey;
            var rows = new List<(string Silo, string Jid, bool Cleaned)>();
            await using (var connection = await _db.OpenConnectionAsync(ct).ConfigureAwait(false))
            {
                await using var cmd = new NpgsqlCommand("SELECT silo, jid, cleaned_at IS NOT NULL FROM cluster_sessions WHERE cleaned_at IS NULL OR cleaned_at > now() - interval '10 minutes'", connection);
                await using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
                while (await reader.ReadAsync(ct).ConfigureAwait(false))
                {
                    rows.Add((reader.GetString(0), reader.GetString(1), reader.GetBoolean(2)));
                }
            }

            foreach (var dead in rows.Where(r => !live.Contains(r.Silo) && !_cleaned.ContainsKey(r.Silo)).GroupBy(r => r.Silo))
            {
                var sessions = dead.Select(r => Jid.Parse(r.Jid)).ToHashSet();
                _log.Warn("Node {Silo} is gone with {Count} session(s): cleaning up after it{Role}", dead.Key, sessions.Count, elected ? " (contacts are told by this node)" : string.Empty);
                await _server!.Modules.SessionsLostAsync(sessions, ct).ConfigureAwait(false);
                if (elected && dead.Any(r => !r.Cleaned))
                {
                    foreach (var account in sessions.GroupBy(j => j.Bare))
                    {
                        try
                        {
                            await Grain(account.Key).LostAsync([.. account.Select(j => j.ToString())]).WaitAsync(ct).ConfigureAwait(false);
                        }
                        catch (Exception ex) when (ex is OrleansException or TimeoutException)
                        {
                            _log.Warn("Telling the contacts of {Account} it is gone failed: {Reason}", account.Key, ex.Message);
                        }
                    }

                    await using var connection = await _db.OpenConnectionAsync(ct).ConfigureAwait(false);
                    await using var mark = new NpgsqlCommand("UPDATE cluster_sessions SET cleaned_at = now() WHERE silo = $1 AND cleaned_at IS NULL", connection) { Parameters = { new() { Value = dead.Key } } };
                    await mark.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
                }

                _cleaned[dead.Key] = 0;
            }

            if (elected)
            {
                await using var connection = await _db.OpenConnectionAsync(ct).ConfigureAwait(false);
                await using var purge = new NpgsqlCommand("DELETE FROM cluster_sessions WHERE cleaned_at < now() - interval '10 minutes'; DELETE FROM cluster_parked WHERE parked_at < now() - interval '1 day'", connection);
                await purge.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }
        catch (NpgsqlException ex)
        {
            _log.Warn("Cluster clean-up failed (tried again at the next membership change): {Reason}", ex.Message);
        }
    }

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

    public async ValueTask DisposeAsync()
    {
        _log.Info("Leaving the cluster: {Forwarded} stanza(s) forwarded to other nodes, {Stanzas} of them in {Batches} batch(es)", Forwarded, _batches.Stanzas, _batches.Batches);
        _ledger.Writer.TryComplete();
        await _stopping.CancelAsync().ConfigureAwait(false);
        await _ledgerWriter.ConfigureAwait(false);
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

    private static string FormatAddress(System.Net.IPAddress address, int port) =>
        address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{address}]:{port}" : $"{address}:{port}";
}
