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

/// <param name="Domain">The component's domain (a subdomain of a host, by convention), which it serves entirely.</param>
/// <param name="Secret">The shared secret of its XEP-0114 handshake.</param>
public sealed record ComponentOptions(string Domain, string Secret);

public sealed record HostOptions(string Name, string? CertificateFile = null, string? KeyFile = null);

public enum ListenerKind
{
    /// <summary>Client-to-server with STARTTLS (RFC 6120), default port 5222.</summary>
    C2s,

    /// <summary>Client-to-server with TLS from the first byte (XEP-0368), default port 5223.</summary>
    C2sDirectTls,

    /// <summary>Server-to-server with STARTTLS (RFC 6120), default port 5269.</summary>
    S2s,

    /// <summary>Server-to-server with TLS from the first byte (XEP-0368), default port 5270.</summary>
    S2sDirectTls,

    /// <summary>External components (XEP-0114, jabber:component:accept), default port 5347.</summary>
    Component,

    /// <summary>HTTPS with the hosts' certificates (Kestrel): XMPP over WebSocket (RFC 7395) and host-meta (XEP-0156), default port 5443.</summary>
    Https,
}

public static class ListenerKinds
{
    public static string Name(this ListenerKind kind) => kind switch
    {
        ListenerKind.C2s => "c2s (STARTTLS)",
        ListenerKind.C2sDirectTls => "c2s (direct TLS)",
        ListenerKind.S2s => "s2s (STARTTLS)",
        ListenerKind.Component => "components (XEP-0114)",
        ListenerKind.Https => "https (WebSocket, host-meta)",
        _ => "s2s (direct TLS)",
    };

    public static bool IsDirectTls(this ListenerKind kind) => kind is ListenerKind.C2sDirectTls or ListenerKind.S2sDirectTls;

    public static bool IsServer(this ListenerKind kind) => kind is ListenerKind.S2s or ListenerKind.S2sDirectTls;
}

/// <summary>Server-to-server (federation) policy.</summary>
public sealed record S2sOptions
{
    /// <summary>Whether peers must use TLS (RFC 6120 §5.3.1); outbound streams without TLS are refused too.</summary>
    public bool RequireEncryption { get; init; } = true;

    /// <summary>
    /// Whether a peer whose certificate does not validate may authenticate with Server Dialback
    /// (XEP-0220), as deployed servers allow; when false, only SASL EXTERNAL with a valid certificate.
    /// </summary>
    public bool AllowDialback { get; init; } = true;

    /// <summary>Extra trusted certificate authorities (a PEM file), besides the system's.</summary>
    public string? CaFile { get; init; }

    /// <summary>DNS server for SRV and address lookups ("address" or "address:port"); the system's when null.</summary>
    public string? DnsServer { get; init; }

    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>An outgoing stream with nothing to send for this long is closed.</summary>
    public TimeSpan IdleTimeout { get; init; } = TimeSpan.FromSeconds(600);

    /// <summary>Stanzas waiting for one remote domain (while connecting, or for a slow peer).</summary>
    public int QueueLimit { get; init; } = 1000;

    /// <summary>Per-domain overrides of DNS: connect to this host and port.</summary>
    public IReadOnlyDictionary<string, S2sRoute> Routes { get; init; } = new Dictionary<string, S2sRoute>();
}

/// <param name="Host">A host name (resolved with the configured DNS server) or an IP address.</param>
public sealed record S2sRoute(string Host, int Port, bool DirectTls);

/// <param name="Address">An IP address, "localhost" (both loopback addresses) or "*" (all interfaces).</param>
public sealed record ListenerOptions(ListenerKind Kind, string Address, int Port);

/// <summary>The HTTPS listener's CORS settings: which web origins may call the WebSocket, BOSH, upload and host-meta endpoints.</summary>
public sealed record HttpOptions
{
    /// <summary>"*" (any origin, the default: web clients are served from anywhere) or exact origins.</summary>
    public IReadOnlyList<string> CorsOrigins { get; init; } = ["*"];

    /// <summary>The Access-Control-Allow-Origin answer for a request's Origin, or null when that origin is not allowed.</summary>
    public string? AllowOrigin(string? origin) =>
        CorsOrigins.Contains("*") ? "*" : origin is not null && CorsOrigins.Contains(origin) ? origin : null;

    public bool Equals(HttpOptions? other) => other is not null && CorsOrigins.SequenceEqual(other.CorsOrigins);

    public override int GetHashCode() => string.Join(' ', CorsOrigins).GetHashCode(StringComparison.Ordinal);
}

public sealed record TlsOptions
{
    /// <summary>Whether clients must negotiate STARTTLS before authenticating (RFC 6120 §5.3.1).</summary>
    public bool Required { get; init; } = true;
}

public sealed record StorageOptions
{
    /// <summary>"sqlite" (embedded, the default) or "postgresql".</summary>
    public string Provider { get; init; } = "sqlite";

    /// <summary>The SQLite database file (absolute); defaults to xmpp.db in the data directory.</summary>
    public string? File { get; init; }

    /// <summary>The PostgreSQL connection string (Npgsql's keywords: Host, Port, Database, Username, Password, ...).</summary>
    public string? ConnectionString { get; init; }
}

public sealed record AuthOptions
{
    /// <summary>PBKDF2 iterations for newly stored SCRAM credentials (at least 4096).</summary>
    public int Iterations { get; init; } = 4096;

    /// <summary>Offer SASL PLAIN (only ever over TLS).</summary>
    public bool AllowPlain { get; init; } = true;

    /// <summary>
    /// The SCRAM hashes offered, strongest first. Accounts imported from Prosody or ejabberd have SHA-1 keys
    /// only: while they are many, offering fewer (or only PLAIN, which stores the stronger keys at the
    /// next login) lets clients that pick the strongest mechanism log in to them.
    /// </summary>
    public IReadOnlyList<Xmpp.Core.Sasl.ScramHash> Scram { get; init; } = [Xmpp.Core.Sasl.ScramHash.Sha512, Xmpp.Core.Sasl.ScramHash.Sha256, Xmpp.Core.Sasl.ScramHash.Sha1];

    /// <summary>
    /// Failed attempts allowed on one stream before it is closed: RFC 6120 §6.4.5 asks for 2 to 5 retries,
    /// so 3 to 6 attempts. 6 lets libpurple try each of its SCRAM mechanisms twice and then tell the user
    /// the password is wrong.
    /// </summary>
    public int MaxFailuresPerStream { get; init; } = 6;

    /// <summary>Base delay before answering a failed attempt beyond the first three from one address, doubling with each further one.</summary>
    public TimeSpan FailureDelay { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Upper bound of that delay.</summary>
    public TimeSpan MaxFailureDelay { get; init; } = TimeSpan.FromSeconds(16);

    /// <summary>
    /// Failed attempts from one address within 10 minutes after which that address may not try again for
    /// <see cref="BlockTime"/>; 0: never blocked.
    /// </summary>
    public int FailuresPerIp { get; init; } = 30;

    /// <summary>
    /// Failed attempts for one username (whether the account exists or not) within 10 minutes after which
    /// that username may not try again for <see cref="BlockTime"/>, from anywhere; 0: never blocked.
    /// </summary>
    public int FailuresPerAccount { get; init; } = 10;

    /// <summary>How long a blocked address or username is refused.</summary>
    public TimeSpan BlockTime { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>Equal settings, the SCRAM list compared by its hashes (a record compares lists by reference).</summary>
    public bool Equals(AuthOptions? other) =>
        other is not null && Iterations == other.Iterations && AllowPlain == other.AllowPlain && Scram.SequenceEqual(other.Scram)
        && MaxFailuresPerStream == other.MaxFailuresPerStream && FailureDelay == other.FailureDelay && MaxFailureDelay == other.MaxFailureDelay
        && FailuresPerIp == other.FailuresPerIp && FailuresPerAccount == other.FailuresPerAccount && BlockTime == other.BlockTime;

    public override int GetHashCode() => HashCode.Combine(Iterations, AllowPlain, Scram.Count, MaxFailuresPerStream, FailuresPerIp, FailuresPerAccount, BlockTime);
}

public sealed record LimitOptions
{
    /// <summary>Bytes of one top-level element on a client stream (policy-violation beyond it).</summary>
    public int StanzaSize { get; init; } = 256 * 1024;

    /// <summary>The same on a server-to-server stream, which carries other servers' larger stanzas (Prosody's default).</summary>
    public int S2sStanzaSize { get; init; } = 512 * 1024;

    public int MaxDepth { get; init; } = 64;

    /// <summary>Attributes on one element, namespace declarations not counted.</summary>
    public int MaxAttributes { get; init; } = 64;

    /// <summary>Namespace declarations on one element.</summary>
    public int MaxNamespaces { get; init; } = 32;

    /// <summary>Open connections (client and server streams together) from one IP address; 0: no limit.</summary>
    public int ConnectionsPerIp { get; init; } = 100;

    /// <summary>
    /// Stanzas (and other top-level elements) a client stream may send per second, sustained; a token
    /// bucket of <see cref="StanzaBurst"/> tokens refilled at this rate. A client that empties it gets a
    /// policy-violation stream error. 0: no limit.
    /// </summary>
    public double StanzaRate { get; init; } = 50;

    /// <summary>Size of that bucket: how many elements a client may send at once.</summary>
    public int StanzaBurst { get; init; } = 250;

    /// <summary>Resources bound at once to one account; one more is refused with resource-constraint (RFC 6120 §7.6.2.1).</summary>
    public int SessionsPerAccount { get; init; } = 16;

    /// <summary>How long a connection may take from accept to a bound resource.</summary>
    public TimeSpan AuthTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Stanzas queued for one connection before it is treated as a stuck reader and closed.</summary>
    public int OutputQueue { get; init; } = 10_000;

    /// <summary>
    /// Bytes queued for one connection (estimated from the stanzas' size on the wire) before it is treated
    /// as a stuck reader and closed: without it, 10,000 stanzas of 256 KiB could hold 2.5 GiB.
    /// </summary>
    public long OutputBytes { get; init; } = 16 * 1024 * 1024;

    /// <summary>How long to wait for the peer's closing tag after sending ours.</summary>
    public TimeSpan CloseTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// A bound connection silent this long is closed with connection-timeout (and its session ends, so its
    /// contacts see it go offline); halfway through the silence the server pings the client (XEP-0199).
    /// </summary>
    public TimeSpan IdleTimeout { get; init; } = TimeSpan.FromSeconds(300);

    /// <summary>Roster entries per account (items and remembered subscription requests together).</summary>
    public int RosterItems { get; init; } = 2000;
}

public sealed record LoggingOptions
{
    public string Level { get; init; } = "Info";

    /// <summary>"text" or "json".</summary>
    public string Format { get; init; } = "text";

    /// <summary>Optional log file (absolute); the console is always written.</summary>
    public string? File { get; init; }
}
