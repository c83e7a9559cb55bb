namespace Xmpp.Server.Config;

/// <summary>
/// &lt;acme&gt;: certificates from an ACME server (RFC 8555) for every host without a &lt;certificate&gt;,
/// validated by HTTP-01 on a plain-HTTP listener of its own, renewed in the background.
/// </summary>
public sealed record AcmeOptions
{
    /// <summary>The ACME server's directory URL (https).</summary>
    public required Uri Directory { get; init; }

    /// <summary>Contact URIs for the account (mailto:), possibly none.</summary>
    public IReadOnlyList<string> Contact { get; init; } = [];

    /// <summary>Where the HTTP-01 responder listens: an IP address, "localhost" or "*".</summary>
    public string HttpAddress { get; init; } = "*";

    /// <summary>The HTTP-01 responder's port: 80, unless something in front forwards to another.</summary>
    public int HttpPort { get; init; } = 80;

    /// <summary>Renew when fewer than this many days of validity remain.</summary>
    public int RenewBeforeDays { get; init; } = 30;

    /// <summary>How often the certificates are looked at.</summary>
    public TimeSpan CheckInterval { get; init; } = TimeSpan.FromDays(1);

    /// <summary>The wait after a failure; it doubles at each failure in a row, up to <see cref="CheckInterval"/>.</summary>
    public TimeSpan RetryDelay { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>Extra trusted roots (PEM) for the ACME server's own HTTPS (a test CA such as pebble's); the system's when null.</summary>
    public string? CaFile { get; init; }
}
