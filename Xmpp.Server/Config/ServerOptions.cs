namespace Xmpp.Server.Config;

/// <summary>The whole server configuration, immutable, validated once at start-up.</summary>
public sealed record ServerOptions
{
    public IReadOnlyList<HostOptions> Hosts { get; init; } = [new HostOptions("localhost")];

    public IReadOnlyList<ListenerOptions> Listeners { get; init; } =
    [
        new ListenerOptions(ListenerKind.C2s, "localhost", 5222),
        new ListenerOptions(ListenerKind.C2sDirectTls, "localhost", 5223),
        new ListenerOptions(ListenerKind.S2s, "localhost", 5269),
    ];

    /// <summary>Absolute path of the data directory (database, generated certificates).</summary>
    public string DataDirectory { get; init; } = Path.GetFullPath("data");

    public TlsOptions Tls { get; init; } = new();

    /// <summary>Settings of the HTTPS listener's answers (CORS).</summary>
    public HttpOptions Http { get; init; } = new();

    public S2sOptions S2s { get; init; } = new();

    /// <summary>Certificates from an ACME server (RFC 8555); null when off.</summary>
    public AcmeOptions? Acme { get; init; }

    /// <summary>&lt;cluster&gt;: this server is one node of a cluster, or null (a single node).</summary>
    public ClusterOptions? Cluster { get; init; }

    public StorageOptions Storage { get; init; } = new();

    public AuthOptions Auth { get; init; } = new();

    public LimitOptions Limits { get; init; } = new();

    public LoggingOptions Logging { get; init; } = new();

    /// <summary>External components (XEP-0114) allowed to connect, each with its domain and shared secret.</summary>
    public IReadOnlyList<ComponentOptions> Components { get; init; } = [];

    /// <summary>
    /// Accounts (bare JIDs) that may use the service administration commands (XEP-0133) on every host
    /// this server serves.
    /// </summary>
    public IReadOnlyList<Xmpp.Core.Addressing.Jid> Admins { get; init; } = [];

    public bool IsAdmin(Xmpp.Core.Addressing.Jid jid)
    {
        foreach (var admin in Admins)
        {
            if (admin.Local == jid.Local && admin.Domain == jid.Domain)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Enabled modules by name, each with its options (attribute name to value).</summary>
    public IReadOnlyDictionary<string, IReadOnlyDictionary<string, string>> Modules { get; init; } = DefaultModules;

    /// <summary>Where this configuration came from (for messages); null when built in code.</summary>
    public string? SourceFile { get; init; }

    public static IReadOnlyDictionary<string, IReadOnlyDictionary<string, string>> DefaultModules { get; } =
        new Dictionary<string, IReadOnlyDictionary<string, string>>
        {
            ["disco"] = new Dictionary<string, string>(),
            ["ping"] = new Dictionary<string, string>(),
            ["version"] = new Dictionary<string, string>(),
            ["offline"] = new Dictionary<string, string>(),
            ["last"] = new Dictionary<string, string>(),
            ["time"] = new Dictionary<string, string>(),
            ["private"] = new Dictionary<string, string>(),
            ["vcard"] = new Dictionary<string, string>(),
            ["carbons"] = new Dictionary<string, string>(),
            ["blocking"] = new Dictionary<string, string> { ["max-items"] = "1000" },
            ["pep"] = new Dictionary<string, string> { ["max-items"] = "256", ["max-nodes"] = "256" },
            ["mam"] = new Dictionary<string, string> { ["default"] = "always", ["expire-days"] = "0", ["max-per-user"] = "0", ["max-page"] = "250" },
            ["sm"] = new Dictionary<string, string> { ["resume-timeout"] = "300", ["max-unacked"] = "10000" },
            ["csi"] = new Dictionary<string, string> { ["max-held"] = "100" },
            ["push"] = new Dictionary<string, string> { ["include-body"] = "false" },
            ["adhoc"] = new Dictionary<string, string>(),
            ["admin"] = new Dictionary<string, string>(),
            ["muc"] = new Dictionary<string, string> { ["subdomain"] = "conference", ["create"] = "local", ["lock-new-rooms"] = "true", ["max-history"] = "50", ["max-rooms"] = "100000" },
            ["upload"] = new Dictionary<string, string> { ["max-size"] = "104857600", ["quota"] = "1073741824", ["expire-days"] = "30" },
            ["pubsub"] = new Dictionary<string, string> { ["subdomain"] = "pubsub", ["create"] = "local", ["max-items"] = "1000", ["max-nodes"] = "10000", ["max-subscriptions"] = "10000" },
        };
}
