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
    public required ServerOptions Options { get; init; }

    public required LogFactory Logs { get; init; }

    public required CertificateStore Certificates { get; init; }

    public required IStorage Storage { get; init; }

    public required ISessionRegistry Sessions { get; init; }

    public required HookBus Hooks { get; init; }

    public required IStanzaRouter Router { get; init; }

    public required ConnectionManager Connections { get; init; }

    public required AuthFailureTracker AuthFailures { get; init; }

    public required StreamFeatureRegistry StreamFeatures { get; init; }

    /// <summary>Features and requests before authentication (in-band registration).</summary>
    public PreAuthRegistry PreAuth { get; } = new();

    /// <summary>What a XEP-0386 Bind2 request may switch on inline.</summary>
    public Bind2Registry Bind2 { get; } = new();

    /// <summary>Handlers of non-stanza elements on bound client streams.</summary>
    public StreamElementRegistry StreamElements { get; } = new();

    /// <summary>What SASL answers for usernames without credentials, so that no account can be told apart from a missing one.</summary>
    public required Xmpp.Core.Sasl.DecoyCredentials Decoys { get; init; }

    /// <summary>Counters and gauges for the metrics endpoint.</summary>
    public required ServerMetrics Metrics { get; init; }

    /// <summary>XEP-0198 settings, when the stream management module is loaded.</summary>
    public StreamManagementOptions? StreamManagement { get; internal set; }

    /// <summary>Sessions that can be resumed (XEP-0198).</summary>
    public ResumableSessions Resumption { get; } = new();

    /// <summary>Federation (set right after the context is built: it needs the context itself).</summary>
    public S2s.S2sManager S2s { get; internal set; } = null!;
}
