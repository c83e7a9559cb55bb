namespace Xmpp.Server.Config;

public sealed record TlsOptions
{
    /// <summary>Whether clients must negotiate STARTTLS before authenticating (RFC 6120 §5.3.1).</summary>
    public bool Required { get; init; } = true;
}
