namespace Xmpp.Server.Tls;

/// <summary>
/// Where certificates for hosts without a configured &lt;certificate&gt; may come from instead of the
/// generated self-signed one (ACME: <see cref="Acme.AcmeCertificates"/>). The core asks it each time it
/// builds a <see cref="CertificateStore"/> (at start, at a reload, and when the source says it has a new one).
/// </summary>
public interface ICertificateSource
{
    /// <summary>The PEM certificate chain and key files for a host, or null when the source has none for it (yet).</summary>
    CertificateFiles? Find(string host);
}

/// <summary>A PEM file with the certificate first and its intermediates after it, and the PEM private key.</summary>
public sealed record CertificateFiles(string CertificateFile, string KeyFile);
