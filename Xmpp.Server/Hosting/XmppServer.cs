using System.Globalization;
using System.Net;
using System.Net.Sockets;
using NLog;
using Xmpp.Core.Stanzas;
using Xmpp.Server.Config;
using Xmpp.Server.Logging;
using Xmpp.Server.Modules;
using Xmpp.Server.Net;
using Xmpp.Server.Routing;
using Xmpp.Server.Sessions;
using Xmpp.Server.Storage;
using Xmpp.Server.Storage.Sqlite;
using Xmpp.Server.Tls;

namespace Xmpp.Server.Hosting;

/// <summary>
/// One running server: owns storage, certificates, sessions, router, modules and listeners. Nothing is
/// static, so tests run several servers in one process.
/// </summary>
public sealed class XmppServer : IAsyncDisposable
{
    private readonly CancellationTokenSource _shutdown = new();
    private readonly List<TcpListenerService> _listeners = [];
    private readonly Logger _log;
    private readonly SemaphoreSlim _reloadGate = new(1, 1);
    private readonly List<CertificateStore> _retiredCertificates = [];
    private bool _stopped;
    private readonly TaskCompletionSource _stopRequested = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes when something other than a signal asked the server to stop (<c>xmppserver drain</c>).</summary>
    public Task StopRequested => _stopRequested.Task;

    /// <summary>Asks the process running this server to stop it (gracefully: a cluster node drains first).</summary>
    public void RequestStop() => _stopRequested.TrySetResult();
    private bool _started;
    private Task _idleSweep = Task.CompletedTask;
    private Task _nativeMemory = Task.CompletedTask;
    private Task _control = Task.CompletedTask;
    private HttpHost? _http;

    private XmppServer(ServerContext context, Tls.Acme.AcmeCertificates? acme)
    {
        Context = context;
        Acme = acme;
        _log = context.Logs.GetLogger("Server");
        context.Reload = RequestReloadAsync;
        context.CheckConfiguration = CheckAsync;
    }

    /// <summary>Certificates from ACME (&lt;acme&gt;), or null.</summary>
    public Tls.Acme.AcmeCertificates? Acme { get; }

    public ServerContext Context { get; }

    /// <summary>The service manager to tell of reloads (sd_notify), or null (tests, no NOTIFY_SOCKET).</summary>
    internal SystemdNotifier? Systemd { get; set; }

    /// <summary>The module generation in force (a reload replaces it).</summary>
    public ModuleHost Modules => Context.Modules;

    public ServerOptions Options => Context.Options;

    public IReadOnlyList<TcpListenerService> Listeners => _listeners;

    /// <summary>The bound port of the first listener of a kind (for tests using port 0).</summary>
    public int PortOf(ListenerKind kind) =>
        kind == ListenerKind.Https ? _http!.Endpoints[0].Port : _listeners.First(l => l.Kind == kind).LocalEndPoint.Port;

    /// <summary>Completes when the HTTPS listener (if any) listens; faults when it cannot.</summary>
    public Task HttpReady { get; private set; } = Task.CompletedTask;

    public static IStorage CreateStorage(ServerOptions options, ServerMetrics? metrics = null) => options.Storage.Provider switch
    {
        "sqlite" => new SqliteStorage(options.Storage.File ?? Path.Combine(options.DataDirectory, "xmpp.db"), metrics),
        "postgresql" => new Storage.Postgres.PostgresStorage(options.Storage.ConnectionString ?? throw new ConfigException("storage type postgresql needs a connection string"), metrics),
        _ => throw new ConfigException($"unknown storage provider '{options.Storage.Provider}'"),
    };

    /// <summary>Opens storage (applying migrations), loads or generates certificates and loads modules; listens nowhere yet.</summary>
    public static async Task<XmppServer> CreateAsync(ServerOptions options, LogFactory logs, CancellationToken cancellationToken)
    {
#if !CLUSTER
        if (options.Cluster is not null)
        {
            throw new ConfigException("this build of xmppserver (Native AOT) has no cluster mode: cluster nodes run the JIT build (README, \"Running a cluster\")");
        }
#endif
        PrivateFiles.EnsureDirectory(options.DataDirectory);
        var secret = PrivateFiles.ReadOrCreateSecret(Path.Combine(options.DataDirectory, "server.secret"));
        var metrics = new ServerMetrics();
        var storage = CreateStorage(options, metrics);
        await storage.MigrateAsync(cancellationToken).ConfigureAwait(false);
        var dialback = await S2s.Dialback.LoadSharedAsync(storage.Documents, cancellationToken).ConfigureAwait(false);
        var acme = options.Acme is { } acmeOptions
            ? new Tls.Acme.AcmeCertificates(acmeOptions, options.DataDirectory, [.. options.Hosts.Where(h => h.CertificateFile is null).Select(h => h.Name)], logs)
            : null;
        var certificates = CertificateStore.Load(options, acme);
#if CLUSTER
        // Orleans' assemblies are loaded only when a cluster is configured (the helpers are not inlined here).
        ISessionRegistry sessions = new SessionManager();
        var cluster = options.Cluster is null ? null : CreateCluster(options, logs, metrics, ref sessions);
#else
        var sessions = new SessionManager();
#endif
        ServerContext? built = null;
        var router = new Router(() => built!.Hooks, options.Hosts.Select(h => h.Name), logs.GetLogger("Router"), metrics, () => built?.Modules?.ServiceDomains ?? ModuleHost.NoServiceDomains, () => built?.Modules?.WholeServiceDomains ?? ModuleHost.NoServiceDomains);
        var context = new ServerContext
        {
            Options = options,
            Logs = logs,
            Certificates = certificates,
            Tls = new TlsContexts(logs.GetLogger("Tls")),
            Storage = storage,
            Sessions = sessions,
            Router = router,
            Metrics = metrics,
            Connections = new ConnectionManager(),
            AuthFailures = new AuthFailureTracker(options.Auth, TimeProvider.System),
            Decoys = new Xmpp.Core.Sasl.DecoyCredentials(secret, options.Auth.Iterations),
        };
        metrics.Gauge("xmpp_connections", "Open connections, by kind (c2s, s2s_in, s2s_out, component).", () => context.Connections.CountByKind());
        metrics.Gauge("xmpp_sessions", "Bound client sessions.", () => context.Sessions.Count);
        built = context;
        context.S2s = new S2s.S2sManager(context, dialback);
        metrics.Gauge("xmpp_s2s_connections", "Server-to-server streams, by direction and state.", context.S2s.CountByState);
        metrics.Gauge("xmpp_components", "External components (XEP-0114) connected.", () => context.Components.ConnectedCount);
        context.Components = new Components.ComponentManager(context);
        var modules = new ModuleHost(context, options);
        modules.LoadAll();
        context.Modules = modules;
#if CLUSTER
        if (cluster is not null)
        {
            await StartClusterAsync(cluster, context, router, metrics, cancellationToken).ConfigureAwait(false);
        }
#endif
        return new XmppServer(context, acme);
    }

#if CLUSTER
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Performance", "CA1859", Justification = "The interface keeps Orleans' types out of CreateAsync, whose compilation would load them.")]
    private static Cluster.ICluster CreateCluster(ServerOptions options, LogFactory logs, ServerMetrics metrics, ref ISessionRegistry sessions)
    {
        var cluster = new Cluster.Orleans.OrleansCluster(options.Cluster!, options.Storage.ConnectionString!, logs, metrics);
        sessions = cluster.WrapSessions(sessions);
        return cluster;
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static async Task StartClusterAsync(Cluster.ICluster node, ServerContext context, Router router, ServerMetrics metrics, CancellationToken cancellationToken)
    {
        var cluster = (Cluster.Orleans.OrleansCluster)node;
        context.Cluster = cluster;
        router.Cluster = cluster;
        metrics.Gauge("xmpp_cluster_members", "Cluster mode: members by state, as this node sees them.", () => cluster.Members().GroupBy(m => m.Status).Select(g => ($"{{status=\"{g.Key}\"}}", (double)g.Count())));
        metrics.Gauge("xmpp_cluster_homed_accounts", "Cluster mode: accounts whose home is this node.", () => cluster.HomedCount);
        metrics.Gauge("xmpp_cluster_edge_sessions", "Cluster mode: sessions whose connection is on this node and whose account is homed on another.", () => cluster.EdgeCount);
        metrics.Gauge("xmpp_cluster_proxied_sessions", "Cluster mode: sessions of accounts homed on this node whose connection is on another.", () => cluster.ProxyCount);
        metrics.Gauge("xmpp_cluster_forwarded_stanzas", "Cluster mode: stanzas sent to their recipient's home on another node since the start.", () => cluster.Forwarded);
        metrics.Gauge("xmpp_cluster_batches", "Cluster mode: batches those stanzas went in (the rest went one by one through the recipient's home grain).", () => cluster.Batched.Batches);
        await cluster.StartAsync(context, router, cancellationToken).ConfigureAwait(false);
    }
#endif

    /// <summary>Binds every configured listener and starts accepting.</summary>
    public void Start()
    {
        _started = true;
        _control = ControlChannel.RunAsync(this, _shutdown.Token);
        Context.S2s.Start(_shutdown.Token);
        Modules.StartBackground(_shutdown.Token);
        var sweep = Options.Limits.IdleTimeout < Options.S2s.IdleTimeout ? Options.Limits.IdleTimeout : Options.S2s.IdleTimeout;
        _idleSweep = Context.Connections.RunIdleSweepAsync(sweep, _shutdown.Token);
        _nativeMemory = FreedNativeMemory.RunAsync(_log, TimeSpan.FromMinutes(1), _shutdown.Token);
        _http = new HttpHost(this);
        HttpReady = _http.StartAsync(_shutdown.Token);
        var http = _http;
        Context.HttpsPort = () => http.Endpoints.Count > 0 ? http.Endpoints[0].Port : null;
        Acme?.Start(host => Tls.Acme.AcmeCertificates.NamesFor(host, Context.Modules.ServiceDomains), InstallCertificatesAsync, _shutdown.Token);
        foreach (var l in Options.Listeners.Where(l => l.Kind != ListenerKind.Https))
        {
            foreach (var endpoint in Resolve(l))
            {
                TcpListenerService listener;
                try
                {
                    listener = new TcpListenerService(Context, l.Kind, endpoint);
                }
                catch (SocketException ex) when (l.Address == "localhost" && endpoint.AddressFamily == AddressFamily.InterNetworkV6)
                {
                    _log.Warn("IPv6 loopback unavailable ({Reason}); listening on IPv4 only", ex.Message);
                    continue;
                }
                catch (SocketException ex)
                {
                    throw new ConfigException($"cannot listen on {endpoint} ({l.Kind}): {ex.Message}", ex);
                }

                _listeners.Add(listener);
                listener.Start(_shutdown.Token);
                _log.Info("Listening for {Kind} on {Endpoint}", l.Kind.Name(), listener.LocalEndPoint);
            }
        }
    }

    public static IEnumerable<IPEndPoint> Resolve(ListenerOptions l) => l.Address switch
    {
        "localhost" => [new IPEndPoint(IPAddress.Loopback, l.Port), new IPEndPoint(IPAddress.IPv6Loopback, l.Port)],
        "*" => [new IPEndPoint(IPAddress.IPv6Any, l.Port)],
        _ => [new IPEndPoint(IPAddress.Parse(l.Address), l.Port)],
    };

    /// <summary>Graceful shutdown: stop accepting, close every stream with system-shutdown, flush storage.</summary>
    public async Task StopAsync()
    {
        if (_stopped)
        {
            return;
        }

        _stopped = true;
        foreach (var l in _listeners)
        {
            await l.StopAsync().ConfigureAwait(false);
        }

        if (_http is not null)
        {
            try
            {
                await HttpReady.ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is IOException or InvalidOperationException or OperationCanceledException)
            {
                // It never listened: nothing to stop.
            }
        }

        if (Context.Cluster is { } nodes)
        {
            // A rolling restart: what can be resumed moves to the other nodes before the rest closes.
            try
            {
                await nodes.DrainAsync(CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                _log.Error(ex, "Draining to the other nodes failed: the remaining sessions end here");
            }
        }

        var open = Context.Connections.All.ToList();
        if (open.Count > 0)
        {
            _log.Info("Closing {Count} connections", open.Count);
        }

        foreach (var c in open)
        {
            c.Close(new StreamError(StreamErrorCondition.SystemShutdown, "the server is shutting down"));
        }

        // Each stream waits up to close-timeout for the client's closing tag; then whatever is left is cancelled.
        await Context.Connections.WaitForAllAsync(Options.Limits.CloseTimeout + TimeSpan.FromSeconds(1)).ConfigureAwait(false);
        await _shutdown.CancelAsync().ConfigureAwait(false);
        if (Acme is not null)
        {
            await Acme.StopAsync().ConfigureAwait(false);
        }

        await Context.Connections.WaitForAllAsync(TimeSpan.FromSeconds(2)).ConfigureAwait(false);
        await _idleSweep.ConfigureAwait(false);
        await _nativeMemory.ConfigureAwait(false);
        await _control.ConfigureAwait(false);
        await Modules.ShutdownAsync().ConfigureAwait(false);
        if (_http is not null)
        {
            await _http.DisposeAsync().ConfigureAwait(false);
        }

        await Modules.StoppedAsync().ConfigureAwait(false);
        if (Context.Cluster is IAsyncDisposable cluster)
        {
            // After the sessions: the homes of their accounts are released as they end.
            await cluster.DisposeAsync().ConfigureAwait(false);
        }

        await Context.Storage.DisposeAsync().ConfigureAwait(false);
        _log.Info("Server stopped");
    }

    /// <summary>
    /// Reloads the configuration file the server started with (SIGHUP, <c>xmppserver reload</c>). A file
    /// that does not load is refused with the reason, and the running configuration stays.
    /// </summary>
    public async Task<ReloadResult> ReloadAsync(CancellationToken cancellationToken)
    {
        var (next, problem) = LoadSourceFile();
        if (next is null)
        {
            _log.Warn("Reload refused, the running configuration stays: {Reason}", problem);
            return new ReloadResult(false, [problem!]);
        }

        return await ReloadAsync(next, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Applies a new configuration without a restart: certificates (for new connections), the log level,
    /// limits and policies read per connection or stanza, and the modules (a new generation, built in full
    /// before it replaces the old one). Hosts, listeners, storage and the log format and file need a
    /// restart: they keep their running values, and the result says so.
    /// </summary>
    public async Task<ReloadResult> ReloadAsync(ServerOptions next, CancellationToken cancellationToken)
    {
        await _reloadGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            (next, var notes) = RestartOnly(Options, next);
            if (Build(next, () => new ModuleHost(Context, next, Context.Modules), out var certificates, out var modules) is { } refused)
            {
                _log.Warn("Reload refused, the running configuration stays: {Reason}", refused);
                return new ReloadResult(false, [refused]);
            }

            // From here on nothing can fail: swap everything, then move background work to the new modules.
            Context.Options = next;
            SwapCertificates(certificates!);
            LogSetup.SetLevel(Context.Logs, next.Logging.Level);
            var old = Context.Modules;
            Context.Modules = modules!;
            modules!.Rosters.MaxItems = next.Limits.RosterItems;
            await old.StopBackgroundAsync().ConfigureAwait(false);
            if (_started && !_stopped)
            {
                modules.StartBackground(_shutdown.Token);
            }

            notes.Insert(0, $"configuration {next.SourceFile ?? "(built-in defaults)"} reloaded; modules: {string.Join(", ", next.Modules.Keys)}; log level {next.Logging.Level}");
            foreach (var note in notes)
            {
                _log.Info("Reload: {Note}", note);
            }

            foreach (var cert in certificates!.All)
            {
                _log.Info("Certificate for {Host}: {File} SHA-256 {Fingerprint}", cert.Host, cert.CertificateFile, cert.Fingerprint);
            }

            return new ReloadResult(true, notes);
        }
        finally
        {
            _reloadGate.Release();
        }
    }

    /// <summary>
    /// The reload SIGHUP and the console ask for: <see cref="ReloadAsync(CancellationToken)"/>, told to the service
    /// manager as it starts (RELOADING=1) and ends (READY=1 with the outcome as STATUS, sd_notify(3)).
    /// </summary>
    public async Task<ReloadResult> RequestReloadAsync(CancellationToken cancellationToken)
    {
        // The notifications are not cancelled: a RELOADING=1 must be followed by READY=1 whatever happens.
        if (Systemd is { } systemd)
        {
            await systemd.ReloadingAsync(CancellationToken.None).ConfigureAwait(false);
        }

        var result = new ReloadResult(false, ["the reload was cancelled"]);
        try
        {
            result = await ReloadAsync(cancellationToken).ConfigureAwait(false);
            return result;
        }
        finally
        {
            if (Systemd is { } done)
            {
                var status = result.Applied ? "configuration reloaded; " + Describe(Options) : "reload refused, the running configuration stays: " + string.Join("; ", result.Messages);
                await done.ReadyAsync(status, CancellationToken.None).ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// What a reload of the configuration file would do, without doing it (the console's check): the file is
    /// loaded, and its certificates and a generation of modules built, as <see cref="ReloadAsync(CancellationToken)"/>
    /// does; then they are dropped. Refused with the very reasons a reload would give, or "applied" with the notes it
    /// would give, followed by what the modules logged at Warn and above while loading (logged nowhere else).
    /// </summary>
    public async Task<ReloadResult> CheckAsync(CancellationToken cancellationToken)
    {
        var (next, problem) = LoadSourceFile();
        if (next is null)
        {
            return new ReloadResult(false, [problem!]);
        }

        await _reloadGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var (options, notes) = RestartOnly(Options, next);
            // The trial's modules log to a factory of their own: what they say is part of the answer, not of the server's log.
            using var logs = new LogFactory();
            var warnings = new RecentLog();
            var config = new NLog.Config.LoggingConfiguration(logs);
            config.AddRule(LogLevel.Warn, LogLevel.Fatal, warnings);
            logs.Configuration = config;
            if (Build(options, () => ModuleHost.Trial(Context, options, logs), out var certificates, out _) is { } refused)
            {
                return new ReloadResult(false, [refused]);
            }

            certificates!.Dispose();
            notes.Insert(0, $"configuration {options.SourceFile ?? "(built-in defaults)"} OK; modules: {string.Join(", ", options.Modules.Keys)}; log level {options.Logging.Level}");
            notes.AddRange(warnings.Entries().Reverse().Select(w => $"{w.Level.ToLowerInvariant()}: {w.Logger}: {w.Message}"));
            return new ReloadResult(true, notes);
        }
        finally
        {
            _reloadGate.Release();
        }
    }

    /// <summary>The configuration file the server started with, loaded again (the built-in defaults without one); null with the reason when it does not load.</summary>
    private (ServerOptions? Options, string? Problem) LoadSourceFile()
    {
        try
        {
            return (Options.SourceFile is { } file ? ConfigLoader.Load(file) : new ServerOptions(), null);
        }
        catch (ConfigException ex)
        {
            return (null, ex.Message);
        }
    }

    /// <summary>
    /// <paramref name="next"/> with what only a restart changes (hosts, listeners, storage, the log format and file,
    /// ACME) kept at its running values, and a note for each that changed.
    /// </summary>
    private static (ServerOptions Next, List<string> Notes) RestartOnly(ServerOptions current, ServerOptions next)
    {
        var notes = new List<string>();
        if (!current.Hosts.Select(h => h.Name).SequenceEqual(next.Hosts.Select(h => h.Name)))
        {
            notes.Add("hosts changed: they take effect at the next restart");
            next = next with { Hosts = current.Hosts };
        }

        if (!current.Listeners.SequenceEqual(next.Listeners))
        {
            notes.Add("listeners changed: they take effect at the next restart");
            next = next with { Listeners = current.Listeners };
        }

        if (current.DataDirectory != next.DataDirectory || current.Storage != next.Storage)
        {
            notes.Add("the data directory or storage changed: they take effect at the next restart");
            next = next with { DataDirectory = current.DataDirectory, Storage = current.Storage };
        }

        if (current.Logging with { Level = next.Logging.Level } != next.Logging)
        {
            notes.Add("the log format or file changed: they take effect at the next restart");
            next = next with { Logging = current.Logging with { Level = next.Logging.Level } };
        }

        // The mechanisms offered, PLAIN and the iterations are read per login; the failure limits live in the tracker.
        if (current.Acme != next.Acme)
        {
            notes.Add("<acme> changed: it takes effect at the next restart");
            next = next with { Acme = current.Acme };
        }

        if (current.Auth with { Scram = next.Auth.Scram, AllowPlain = next.Auth.AllowPlain, Iterations = next.Auth.Iterations } != next.Auth
            || current.S2s.DnsServer != next.S2s.DnsServer || current.S2s.CaFile != next.S2s.CaFile)
        {
            notes.Add("authentication failure limits, the s2s DNS server and CA file take effect at the next restart");
        }

        return (next, notes);
    }

    /// <summary>Loads the certificates of <paramref name="next"/> and builds its generation of modules; the reason when either fails (nothing is kept then).</summary>
    private string? Build(ServerOptions next, Func<ModuleHost> generation, out CertificateStore? certificates, out ModuleHost? modules)
    {
        modules = null;
        try
        {
            certificates = CertificateStore.Load(next, Acme);
        }
        catch (ConfigException ex)
        {
            certificates = null;
            return ex.Message;
        }

        try
        {
            modules = generation();
            modules.LoadAll();
            return null;
        }
        catch (Exception ex) when (ex is ConfigException or InvalidOperationException or ArgumentException)
        {
            certificates.Dispose();
            certificates = null;
            modules = null;
            return ex.Message;
        }
    }

    /// <summary>What the service manager's status shows: the hosts and the listeners.</summary>
    internal static string Describe(ServerOptions options) =>
        "serving " + string.Join(", ", options.Hosts.Select(h => h.Name)) + "; listening on " +
        string.Join(", ", options.Listeners.Select(l => string.Create(CultureInfo.InvariantCulture, $"{l.Kind} {l.Address}:{l.Port}")));

    /// <summary>
    /// Rebuilds the certificates with the same configuration (a certificate source has a new one): new
    /// connections get them, existing ones keep theirs, as after a reload. False (logged) when they do not load.
    /// </summary>
    public async Task<bool> InstallCertificatesAsync(CancellationToken cancellationToken)
    {
        await _reloadGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            CertificateStore certificates;
            try
            {
                certificates = CertificateStore.Load(Options, Acme);
            }
            catch (ConfigException ex)
            {
                _log.Error("New certificates not installed, the running ones stay: {Reason}", ex.Message);
                return false;
            }

            SwapCertificates(certificates);
            return true;
        }
        finally
        {
            _reloadGate.Release();
        }
    }

    /// <summary>New connections use <paramref name="certificates"/>; the old store is retired (its shared TLS contexts released) and disposed at the end.</summary>
    private void SwapCertificates(CertificateStore certificates)
    {
        var retired = Context.Certificates;
        _retiredCertificates.Add(retired);
        Context.Certificates = certificates;
        retired.Retire();
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync().ConfigureAwait(false);
        if (Acme is not null)
        {
            await Acme.DisposeAsync().ConfigureAwait(false);
        }

        Context.Certificates.Dispose();
        foreach (var retired in _retiredCertificates)
        {
            // Connections still in a handshake with these are gone by now.
            retired.Dispose();
        }

        _reloadGate.Dispose();
        _shutdown.Dispose();
    }
}

/// <summary>What a reload did: applied or refused, with what to tell the admin.</summary>
public sealed record ReloadResult(bool Applied, IReadOnlyList<string> Messages);
