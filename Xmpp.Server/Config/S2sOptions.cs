namespace Xmpp.Server.Config;

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
