using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Xmpp.Server.Tls;

/// <summary>A host's certificate with its private key, ready for SslStream.</summary>
public sealed class HostCertificate : IDisposable
{
    public HostCertificate(string host, X509Certificate2 certificate, bool generated, string certificateFile, X509Certificate2Collection? intermediates = null)
    {
        Host = host;
        Certificate = certificate;
        Generated = generated;
        CertificateFile = certificateFile;
        // The intermediates (an ACME chain) go out with the certificate: peers and clients only know the roots.
        Context = SslStreamCertificateContext.Create(certificate, additionalCertificates: intermediates, offline: true);
        Fingerprint = Hex(SHA256.HashData(certificate.RawData));
#pragma warning disable CA5350 // Not for security: Pidgin and Profanity show the SHA-1 fingerprint, so people compare that.
        FingerprintSha1 = Hex(SHA1.HashData(certificate.RawData));
#pragma warning restore CA5350
        EndPointBinding = ComputeEndPointBinding(certificate);
    }

    public string Host { get; }

    public X509Certificate2 Certificate { get; }

    public SslStreamCertificateContext Context { get; }

    /// <summary>The runtime's SSL_CTXs made with this certificate, restricted to the policy (<see cref="TlsContexts"/>).</summary>
    internal SharedSslContexts SharedContexts { get; } = new();

    public bool Generated { get; }

    public string CertificateFile { get; }

    /// <summary>SHA-256 fingerprint, colon-separated hex, as clients show it.</summary>
    public string Fingerprint { get; }

    /// <summary>SHA-1 fingerprint, which Pidgin and Profanity show.</summary>
    public string FingerprintSha1 { get; }

    /// <summary>tls-server-end-point channel binding data (RFC 5929 §4.1).</summary>
    public byte[] EndPointBinding { get; }

    /// <summary>
    /// RFC 5929 §4.1: the hash of the certificate with the hash function of its signature algorithm,
    /// SHA-256 where that is MD5 or SHA-1.
    /// </summary>
    public static byte[] ComputeEndPointBinding(X509Certificate2 certificate)
    {
        var oid = certificate.SignatureAlgorithm.Value;
        return oid switch
        {
            "1.2.840.10045.4.3.3" or "1.2.840.113549.1.1.12" => SHA384.HashData(certificate.RawData),
            "1.2.840.10045.4.3.4" or "1.2.840.113549.1.1.13" => SHA512.HashData(certificate.RawData),
            _ => SHA256.HashData(certificate.RawData),
        };
    }

    private static string Hex(byte[] hash) => string.Join(':', Convert.ToHexString(hash).Chunk(2).Select(c => new string(c)));

    public void Dispose()
    {
        SharedContexts.Dispose();
        Certificate.Dispose();
    }
}
