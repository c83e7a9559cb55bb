using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using NLog;
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
    private readonly Logger _log;
    private readonly ConcurrentDictionary<Jid, byte> _homed = new();
    private readonly ConcurrentDictionary<Jid, long> _claims = new();
    private readonly ServerMetrics _metrics;
    private readonly CancellationTokenSource _stopping = new();
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
        return new ClusterSessions(local, Released);
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
        });
        var host = builder.Build();
        var started = Stopwatch.GetTimestamp();
        await host.StartAsync(cancellationToken).ConfigureAwait(false);
        _host = host;
        _grains = host.Services.GetRequiredService<IGrainFactory>();
        _silo = host.Services.GetRequiredService<ILocalSiloDetails>().SiloAddress;
        _membership = host.Services.GetRequiredService<IClusterMembershipService>();
        _log.Info("Joined cluster {Cluster} as {Node} ({Silo}) in {Elapsed:0} ms: {Members}", _options.Id, _options.Node, _silo, Stopwatch.GetElapsedTime(started).TotalMilliseconds, string.Join(", ", Members().Select(m => m.Node + " " + m.Status)));
        _ = WatchMembershipAsync(_stopping.Token);
    }

    public bool IsHome(Jid bare) => _homed.ContainsKey(bare);

    public async ValueTask ForwardAsync(Element stanza, Jid from, Jid to, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        Interlocked.Increment(ref _forwarded);
        try
        {
            await Grain(to.Bare).RouteAsync(stanza.ToString(), from.ToString(), to.ToString()).WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _metrics.ClusterForwarded(Stopwatch.GetTimestamp() - started);
        }
    }

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

    internal async Task RouteHereAsync(string xml, string from, string to)
    {
        var stanza = ElementParser.Parse(xml);
        await _router!.RouteForwardedAsync(stanza, Jid.Parse(from), Jid.Parse(to), _stopping.Token).ConfigureAwait(false);
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
                    }
                }
            }
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
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
    }

    private static string FormatAddress(System.Net.IPAddress address, int port) =>
        address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{address}]:{port}" : $"{address}:{port}";
}
