using NLog;
using Xmpp.Server.Config;
using Xmpp.Server.Net;
using Xmpp.Server.Routing;
using Xmpp.Server.Sessions;
using Xmpp.Server.Storage;
using Xmpp.Server.Tls;

namespace Xmpp.Server.Hosting;

/// <summary>The components a connection needs, owned by one <see cref="XmppServer"/> (nothing static).</summary>
public sealed class ServerContext
{
    /// <summary>The configuration in force (a reload replaces it; read it at the point of use).</summary>
    public required ServerOptions Options { get; set; }

    public required LogFactory Logs { get; init; }

    /// <summary>The hosts' certificates (a reload replaces them: new connections use the new ones).</summary>
    public required CertificateStore Certificates { get; set; }

    /// <summary>The TLS options of every stream, and the check of every handshake against the policy.</summary>
    public required TlsContexts Tls { get; init; }

    public required IStorage Storage { get; init; }

    public required ISessionRegistry Sessions { get; init; }

    /// <summary>The modules in force, with everything they registered (a reload swaps the whole generation).</summary>
    public Modules.ModuleHost Modules { get; internal set; } = null!;

    public HookBus Hooks => Modules.Hooks;

    public required IStanzaRouter Router { get; init; }

    public required ConnectionManager Connections { get; init; }

    public required AuthFailureTracker AuthFailures { get; init; }

    /// <summary>What SASL answers for usernames without credentials, so that no account can be told apart from a missing one.</summary>
    public required Xmpp.Core.Sasl.DecoyCredentials Decoys { get; init; }

    /// <summary>Counters and gauges for the metrics endpoint.</summary>
    public required ServerMetrics Metrics { get; init; }

    /// <summary>The HTTPS listener's port once it listens (null without one).</summary>
    public Func<int?> HttpsPort { get; internal set; } = () => null;

    /// <summary>Federation (set right after the context is built: it needs the context itself).</summary>
    public S2s.S2sManager S2s { get; internal set; } = null!;

    /// <summary>Cluster mode (README, "Running a cluster"): where accounts are homed; null on a single node.</summary>
    public Cluster.ICluster? Cluster { get; internal set; }

    /// <summary>External components (XEP-0114), set with <see cref="S2s"/>.</summary>
    public Components.ComponentManager Components { get; internal set; } = null!;

    /// <summary>Reloads the configuration file as SIGHUP does (<see cref="XmppServer.RequestReloadAsync"/>): for the console.</summary>
    public Func<CancellationToken, Task<ReloadResult>> Reload { get; internal set; } = _ => Task.FromResult(NoServer);

    /// <summary>Checks the configuration file as a reload would load it, changing nothing (<see cref="XmppServer.CheckAsync"/>).</summary>
    public Func<CancellationToken, Task<ReloadResult>> CheckConfiguration { get; internal set; } = _ => Task.FromResult(NoServer);

    private static readonly ReloadResult NoServer = new(false, ["no server to reload"]);
}
