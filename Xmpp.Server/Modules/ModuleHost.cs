using NLog;
using Xmpp.Core.Addressing;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;
using Xmpp.Server.Config;
using Xmpp.Server.Hosting;
using Xmpp.Server.Modules.Roster;
using Xmpp.Server.Net;
using Xmpp.Server.Routing;
using Xmpp.Server.Sessions;
using Xmpp.Server.Storage;

namespace Xmpp.Server.Modules;

/// <summary>
/// Loads the modules named in the configuration and gives each its <see cref="IModuleContext"/>. One
/// host is one generation of modules with everything they registered (hooks, stream features, pre-auth
/// requests, Bind2 and stream-element handlers, disco): a reload builds a new host from the new
/// configuration and swaps it in whole (<see cref="ServerContext.Modules"/>), so a stanza always sees
/// one consistent set.
/// </summary>
public sealed class ModuleHost
{
    private readonly List<IXmppModule> _loaded = [];
    private readonly List<(string Module, Func<CancellationToken, Task> Work)> _background = [];
    private readonly List<Task> _running = [];
    private readonly List<Action> _afterLoad = [];
    private readonly List<Action<Jid>> _forgetAccount = [];
    private readonly List<Func<Jid, bool>> _keepsHome = [];
    private readonly List<Func<IReadOnlySet<Jid>, CancellationToken, Task>> _sessionsLost = [];
    private readonly Dictionary<Type, object> _shared = [];
    private CancellationTokenSource? _backgroundStop;

    private readonly ModuleHost? _previous;

    /// <param name="previous">The generation this one replaces (a reload): modules that keep state take it over, the roster manager carries on.</param>
    public ModuleHost(ServerContext server, ServerOptions options, ModuleHost? previous = null)
    {
        _previous = previous;
        Options = options;
        Logs = server.Logs;
        Sessions = server.Sessions;
        Router = server.Router;
        Storage = server.Storage;
        Server = server;
        Metrics = server.Metrics;
        // One roster manager for the server's life: its per-account locks must not split across a reload.
        Rosters = previous?.Rosters ?? new RosterManager(server.Storage.Roster, server.Sessions, server.Logs.GetLogger("Roster")) { MaxItems = options.Limits.RosterItems };
    }

    /// <summary>
    /// A generation built only to see whether <paramref name="options"/> loads (the configuration check): it takes
    /// nothing over from the running one, its gauges go to a scratch set and its log to <paramref name="logs"/>; it is
    /// never started, and is dropped.
    /// </summary>
    internal static ModuleHost Trial(ServerContext server, ServerOptions options, LogFactory logs) =>
        new(server, options) { Logs = logs, Metrics = new ServerMetrics() };

    /// <summary>This generation's hooks.</summary>
    public HookBus Hooks { get; } = new();

    /// <summary>This generation's extensions of the client stream (features, nonzas, requests before authentication).</summary>
    public Streams.C2sExtensions C2s { get; } = new();

    private readonly List<Func<Task>> _atShutdown = [];

    public DiscoRegistry Disco { get; } = new();

    /// <summary>HTTP paths this generation's modules serve on the HTTPS listener.</summary>
    public HttpRoutes HttpRoutes { get; } = new();

    /// <summary>The service domains this generation's modules answer for (see <see cref="IModuleContext.ServeDomain"/>).</summary>
    public IReadOnlySet<string> ServiceDomains => _serviceDomains;

    /// <summary>The service domains handled on one node as a whole in cluster mode (see <see cref="IModuleContext.HomeWhole"/>).</summary>
    public IReadOnlySet<string> WholeServiceDomains => _wholeDomains;

    private readonly HashSet<string> _wholeDomains = new(StringComparer.Ordinal);

    internal static IReadOnlySet<string> NoServiceDomains { get; } = new HashSet<string>();

    private readonly HashSet<string> _serviceDomains = new(StringComparer.Ordinal);

    public IReadOnlyList<IXmppModule> Loaded => _loaded;

    internal ServerOptions Options { get; }

    internal LogFactory Logs { get; private init; }

    /// <summary>Where the modules' gauges go: the server's (a trial's are its own).</summary>
    internal ServerMetrics Metrics { get; private init; }

    internal ISessionRegistry Sessions { get; }

    internal IStanzaRouter Router { get; }

    internal IStorage Storage { get; }

    internal ServerContext Server { get; }

    /// <summary>Rosters of local accounts (RFC 6121 §2), shared by the roster and presence modules.</summary>
    public RosterManager Rosters { get; }

    /// <summary>Cluster mode: another node died with these sessions (<see cref="IModuleContext.OnSessionsLost"/>).</summary>
    public async Task SessionsLostAsync(IReadOnlySet<Jid> sessions, CancellationToken cancellationToken)
    {
        foreach (var lost in _sessionsLost)
        {
            await lost(sessions, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Cluster mode: whether a module holds live state of an entity homed here (<see cref="IModuleContext.KeepsHome"/>).</summary>
    public bool HoldsHome(Jid bare) => (bare.Local is null && _wholeDomains.Contains(bare.Domain)) || _keepsHome.Exists(holds => holds(bare));

    /// <summary>Cluster mode: the module that parks sessions for resumption on another node (<see cref="IModuleContext.ParksSessions"/>), if loaded.</summary>
    public ISessionParking? Parking => _parking.Count == 0 ? null : _allParking ??= new CompositeParking(_parking);

    private readonly List<ISessionParking> _parking = [];
    private CompositeParking? _allParking;

    /// <summary>Every module's parking in one: each parks what it holds of an entity and restores its own snapshots.</summary>
    private sealed class CompositeParking(List<ISessionParking> all) : ISessionParking
    {
        public IReadOnlyCollection<Jid> ParkableAccounts() => all.SelectMany(p => p.ParkableAccounts()).ToHashSet();

        public bool AllWaiting(Jid bare) => all.Exists(p => p.AllWaiting(bare));

        public async Task<IReadOnlyList<Element>> ParkAsync(Jid bare)
        {
            var parked = new List<Element>();
            foreach (var p in all)
            {
                parked.AddRange(await p.ParkAsync(bare).ConfigureAwait(false));
            }

            return parked;
        }

        public async Task<Element?> ParkAsync(ClientSession session)
        {
            foreach (var p in all)
            {
                if (await p.ParkAsync(session).ConfigureAwait(false) is { } parked)
                {
                    return parked;
                }
            }

            return null;
        }

        public async Task RedeliverAsync(Jid bare, Element message)
        {
            foreach (var p in all)
            {
                await p.RedeliverAsync(bare, message).ConfigureAwait(false);
            }
        }

        public Element? TakeWaiting(Jid bare, string resumeId) => all.Select(p => p.TakeWaiting(bare, resumeId)).FirstOrDefault(t => t is not null);

        public void Restore(Jid bare, IReadOnlyList<Element> snapshots)
        {
            foreach (var p in all)
            {
                p.Restore(bare, snapshots);
            }
        }

        public bool Checkpoints(Jid bare) => all.Exists(p => p.Checkpoints(bare));

        public async ValueTask<Element?> CheckpointAsync(Jid bare, bool listing = false)
        {
            // One module keeps an entity's checkpoint (a room's is the MUC module's).
            foreach (var p in all)
            {
                if (p.Checkpoints(bare))
                {
                    return await p.CheckpointAsync(bare, listing).ConfigureAwait(false);
                }
            }

            return null;
        }
    }

    /// <summary>
    /// Cluster mode: this node has just become the home of an account (or room). What the modules cached of it
    /// while another node was its home may be stale, so they forget it and read it again when needed.
    /// </summary>
    public void ForgetAccount(Jid bare)
    {
        Rosters.Forget(bare);
        foreach (var forget in _forgetAccount)
        {
            forget(bare);
        }
    }

    /// <summary>Every module this build knows, by configuration name.</summary>
    public static IReadOnlyDictionary<string, Func<IXmppModule>> Available { get; } = new Dictionary<string, Func<IXmppModule>>
    {
        ["disco"] = () => new Disco.DiscoModule(),
        ["ping"] = () => new Ping.PingModule(),
        ["version"] = () => new Version.VersionModule(),
        ["offline"] = () => new Offline.OfflineModule(),
        ["last"] = () => new LastActivity.LastActivityModule(),
        ["time"] = () => new Time.TimeModule(),
        ["contact"] = () => new ContactAddresses.ContactAddressesModule(),
        ["private"] = () => new PrivateStorage.PrivateStorageModule(),
        ["vcard"] = () => new VCard.VCardModule(),
        ["carbons"] = () => new Carbons.CarbonsModule(),
        ["blocking"] = () => new Blocking.BlockingModule(),
        ["pep"] = () => new Pep.PepModule(),
        ["mam"] = () => new Mam.MamModule(),
        ["sm"] = () => new StreamManagement.StreamManagementModule(),
        ["csi"] = () => new ClientState.ClientStateModule(),
        ["extdisco"] = () => new ExternalServices.ExternalServicesModule(),
        ["register"] = () => new Registration.RegistrationModule(),
        ["push"] = () => new Push.PushModule(),
        ["metrics"] = () => new Metrics.MetricsModule(),
        ["adhoc"] = () => new AdHoc.AdHocModule(),
        ["admin"] = () => new Admin.AdminModule(),
        ["muc"] = () => new Muc.MucModule(),
        ["upload"] = () => new Upload.UploadModule(),
        ["pubsub"] = () => new PubSub.PubSubModule(),
        ["invites"] = () => new Invites.InvitesModule(),
        ["console"] = () => new Console.ConsoleModule(),
    };

    /// <summary>Modules of RFC 6120/6121 core behaviour, always loaded.</summary>
    public static IReadOnlyList<Func<IXmppModule>> Core { get; } =
    [
        () => new Delivery.MessageDeliveryModule(),
        () => new Delivery.IqDeliveryModule(),
        () => new Presence.PresenceModule(),
        () => new Roster.RosterModule(),
        () => new Sasl2.Sasl2Module(),
        () => new Bind2.Bind2Module(),
        () => new Fast.FastModule(),
    ];

    /// <summary>Starts the modules' background work (<see cref="IModuleContext.RunInBackground"/>), until shutdown or <see cref="StopBackgroundAsync"/>.</summary>
    internal void StartBackground(CancellationToken shutdown)
    {
        _backgroundStop = CancellationTokenSource.CreateLinkedTokenSource(shutdown);
        var stopping = _backgroundStop.Token;
        foreach (var (module, work) in _background)
        {
            var log = Logs.GetLogger("Module." + module);
            _running.Add(Task.Run(
                async () =>
                {
                    try
                    {
                        await work(stopping).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException) when (stopping.IsCancellationRequested)
                    {
                    }
                    catch (Exception ex)
                    {
                        log.Error(ex, "Background work of module {Module} failed", module);
                    }
                },
                CancellationToken.None));
        }
    }

    /// <summary>Runs what this generation's modules asked to do when the server stops (see <see cref="IModuleContext.AtShutdown"/>).</summary>
    internal async Task ShutdownAsync()
    {
        foreach (var action in _atShutdown)
        {
            try
            {
                await action().ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                Logs.GetLogger("Modules").Error(ex, "A module's shutdown work failed");
            }
        }
    }

    /// <summary>Waits for the background work to end (after the token given to <see cref="StartBackground"/> is cancelled).</summary>
    internal Task StoppedAsync() => Task.WhenAll(_running);

    /// <summary>Ends this generation's background work (it was replaced by a reload) and waits for it.</summary>
    internal async Task StopBackgroundAsync()
    {
        if (_backgroundStop is not null)
        {
            await _backgroundStop.CancelAsync().ConfigureAwait(false);
        }

        await StoppedAsync().ConfigureAwait(false);
        _backgroundStop?.Dispose();
    }

    public void LoadAll()
    {
        // What the core claims on every generation's hooks: federation and external components.
        Server.S2s.Register(Hooks);
        Server.Components.Register(Hooks);
        foreach (var factory in Core)
        {
            Load(factory(), new Dictionary<string, string>());
        }

        foreach (var (name, moduleOptions) in Options.Modules)
        {
            if (!Available.TryGetValue(name, out var factory))
            {
                throw new ConfigException($"{Options.SourceFile ?? "configuration"}: unknown module '{name}' (available: {string.Join(", ", Available.Keys)})");
            }

            Load(factory(), moduleOptions);
        }

        foreach (var action in _afterLoad)
        {
            action();
        }

        Hooks.Freeze();
    }

    private void Load(IXmppModule module, IReadOnlyDictionary<string, string> moduleOptions)
    {
        var context = new Context(this, module, moduleOptions);
        try
        {
            module.Register(context);
        }
        catch (ConfigException) when (UnknownOption(module, context, moduleOptions) is { } typo)
        {
            // A misspelt attribute is the likelier cause of whatever the module found missing.
            throw new ConfigException(typo);
        }

        if (UnknownOption(module, context, moduleOptions) is { } unknown)
        {
            throw new ConfigException(unknown);
        }

        if (module is IKeepsStateAcrossReload keeper && _previous?._loaded.Find(m => m.GetType() == module.GetType()) is { } before)
        {
            keeper.TakeOver(before);
        }

        _loaded.Add(module);
    }

    private static string? UnknownOption(IXmppModule module, Context context, IReadOnlyDictionary<string, string> moduleOptions)
    {
        var unknown = moduleOptions.Keys.Where(k => !context.Asked.Contains(k)).Order(StringComparer.Ordinal).FirstOrDefault();
        if (unknown is null)
        {
            return null;
        }

        var allowed = context.Asked.Count == 0 ? "it has none" : "allowed: " + string.Join(", ", context.Asked.Order(StringComparer.Ordinal));
        return $"module {module.Name}: unknown option '{unknown}' ({allowed})";
    }

    private sealed class Context(ModuleHost host, IXmppModule module, IReadOnlyDictionary<string, string> moduleOptions) : IModuleContext
    {
        public ServerOptions Options => host.Options;

        public string ModuleName => module.Name;

        /// <summary>The attribute names the module asked for.</summary>
        public HashSet<string> Asked { get; } = new(StringComparer.Ordinal);

        public string? Option(string name)
        {
            Asked.Add(name);
            return moduleOptions.TryGetValue(name, out var value) ? value : null;
        }

        public Logger Log { get; } = host.Logs.GetLogger("Module." + module.Name);

        public ISessionRegistry Sessions => host.Sessions;

        public ServerMetrics Metrics => host.Metrics;

        public IStanzaRouter Router => host.Router;

        public IStorage Storage => host.Storage;

        public DiscoRegistry Disco => host.Disco;

        public RosterManager Rosters => host.Rosters;

        public void AddStreamFeature(Element feature) => host.C2s.AddFeature(Streams.C2sFeaturePhase.AfterAuthentication, _ => feature);

        public void AddStreamFeature(Func<Streams.IC2sContext, Element?> feature) => host.C2s.AddFeature(Streams.C2sFeaturePhase.AfterAuthentication, feature);

        public void HandleHttp(string pathPrefix, HttpHandler handler, params string[] methods) => host.HttpRoutes.Add(pathPrefix, handler, methods);

        public void HandleSameOriginHttp(string pathPrefix, HttpHandler handler, params string[] methods) => host.HttpRoutes.Add(pathPrefix, handler, cors: false, methods);

        public ServerContext Server => host.Server;

        public Uri? HttpsBase(string domain) =>
            host.Server.HttpsPort() is { } port ? new UriBuilder("https", domain, port).Uri : null;

        public void ServeDomain(string domain)
        {
            if (host.Options.Hosts.Any(h => h.Name == domain) || host.Options.Components.Any(c => c.Domain == domain))
            {
                throw new ConfigException($"module {module.Name}: {domain} is already a host or a component");
            }

            if (!host._serviceDomains.Add(domain))
            {
                throw new ConfigException($"module {module.Name}: {domain} is already served by another module");
            }
        }

        public void HomeWhole(string domain)
        {
            if (!host._serviceDomains.Contains(domain))
            {
                throw new ConfigException($"module {module.Name}: {domain} is not a domain it serves");
            }

            host._wholeDomains.Add(domain);
        }

        public void AfterLoad(Action action) => host._afterLoad.Add(action);

        public void OnAccountArrived(Action<Jid> forget) => host._forgetAccount.Add(forget);

        public void KeepsHome(Func<Jid, bool> holds) => host._keepsHome.Add(holds);

        public void Changed(Jid entity, bool urgent = false) => host.Server.Cluster?.Changed(entity, urgent);

        public void DirectedPresence(Jid session, Jid target, bool available) => host.Server.Cluster?.Directed(session, target, available);

        public ValueTask<IReadOnlyList<(Jid Entity, Element Snapshot)>> CheckpointsElsewhereAsync(string domain, CancellationToken cancellationToken) =>
            host.Server.Cluster?.CheckpointsElsewhereAsync(domain, cancellationToken) ?? ValueTask.FromResult<IReadOnlyList<(Jid, Element)>>([]);

        public void OnSessionsLost(Func<IReadOnlySet<Jid>, CancellationToken, Task> lost) => host._sessionsLost.Add(lost);

        public void ParksSessions(ISessionParking parking) => host._parking.Add(parking);

        public T Shared<T>()
            where T : class, new()
        {
            if (!host._shared.TryGetValue(typeof(T), out var shared))
            {
                shared = new T();
                host._shared[typeof(T)] = shared;
            }

            return (T)shared;
        }

        public void AddPreAuthStreamFeature(Element feature) => host.C2s.AddFeature(Streams.C2sFeaturePhase.BeforeAuthentication, _ => feature);

        public void AddPreAuthStreamFeature(Func<Streams.IC2sContext, Element?> feature) => host.C2s.AddFeature(Streams.C2sFeaturePhase.BeforeAuthentication, feature);

        public void HandlePreAuthIq(string ns, Streams.PreAuthIqHandler handler) => host.C2s.AddPreAuthQuery(ns, handler);

        public void HandleStreamElement(string ns, Streams.C2sElementHandler handler) => host.C2s.AddElementHandler(ns, handler);

        public void AtShutdown(Func<Task> action) => host._atShutdown.Add(action);

        public void RunInBackground(Func<CancellationToken, Task> work) => host._background.Add((module.Name, work));

        public void Hook(string name, StanzaHandler handler, int priority = 0) => host.Hooks.On(name, handler, priority);

        public ValueTask<bool> FireAsync(string name, StanzaContext context, CancellationToken cancellationToken) =>
            host.Hooks.FireAsync(name, context, cancellationToken);

        public async ValueTask<bool> AccountExistsAsync(Jid account, CancellationToken cancellationToken) =>
            account.Local is not null && host.Router.IsLocal(account.Domain) &&
            (host.Sessions.Resources(account.Bare).Count > 0 ||
             await host.Storage.Users.ExistsAsync(account.Domain, account.Local, cancellationToken).ConfigureAwait(false));

        public void HandleIq(string type, string ns, string name, IqTarget targets, IqHandler handler)
        {
            async ValueTask<bool> Invoke(StanzaContext ctx, CancellationToken ct)
            {
                var payload = ctx.Stanza.FirstElement()!;
                Element reply;

                // Cluster mode: what the request caused for clients on other nodes reaches them before its answer
                // leaves (a roster removal's unsubscribe is at the contact's client before the remover has the result).
                using var reach = host.Server.Cluster?.Track();
                try
                {
                    // RFC 6121 §8.5.1: an iq to the bare JID of an account that does not exist gets
                    // service-unavailable, whatever it asks, unless the handler answers for such JIDs itself.
                    if (ctx.To is { Local: not null } to && to.Bare != ctx.From.Bare && !targets.HasFlag(IqTarget.AnyAccount) &&
                        !await AccountExistsAsync(to, ct).ConfigureAwait(false))
                    {
                        throw new StanzaErrorException(StanzaErrorCondition.ServiceUnavailable);
                    }

                    var result = await handler(ctx, payload, ct).ConfigureAwait(false);
                    if (ReferenceEquals(result, IqReply.Answered))
                    {
                        return true;
                    }

                    reply = Stanza.IqResult(ctx.Stanza, result);
                }
                catch (StanzaErrorException ex)
                {
                    host.Server.Metrics.StanzaError(ex.Error.Condition);
                    reply = Stanza.ErrorReply(ctx.Stanza, ex.Error);
                }

                if (reply.GetAttribute("from") is null)
                {
                    // An iq without 'to' was answered by the account (RFC 6120 §10.3.3): say so.
                    reply.SetAttribute("from", ctx.To?.ToString());
                }

                if (reach is not null)
                {
                    await reach.ReachedAsync(ct).ConfigureAwait(false);
                }

                // The reply goes back the way the request came, with the addresses the router parsed for it.
                if (ctx.To is { } answering)
                {
                    await ctx.Router.RouteParsedAsync(reply, answering, ctx.From, ct).ConfigureAwait(false);
                }
                else
                {
                    await ctx.SendAsync(reply, ct).ConfigureAwait(false);
                }

                return true;
            }

            if (targets.HasFlag(IqTarget.Host))
            {
                host.Hooks.On(HookNames.Iq(type, Target.Host, ns, name), Invoke);
            }

            if (targets.HasFlag(IqTarget.Bare))
            {
                host.Hooks.On(HookNames.Iq(type, Target.Bare, ns, name), Invoke);
            }
        }
    }
}
