using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Xmpp.Server.Tls;

/// <summary>A host's certificate with its private key, ready for SslStream.</summary>
public sealed class HostCertificate : IDisposable
{
    public HostCertificate(string host, X509Certificate2 certificate, bool generated, string certificateFile)
    {
        Host = host;
        Certificate = certificate;
        Generated = generated;
        CertificateFile = certificateFile;
        Context = SslStreamCertificateContext.Create(certificate, additionalCertificates: null, offline: true);
        Fingerprint = string.Join(':', Convert.ToHexString(SHA256.HashData(certificate.RawData)).Chunk(2).Select(c => new string(c)));
        EndPointBinding = ComputeEndPointBinding(certificate);
    }

    public string Host { get; }

    public X509Certificate2 Certificate { get; }

    public SslStreamCertificateContext Context { get; }

    public bool Generated { get; }

    public string CertificateFile { get; }

    /// <summary>SHA-256 fingerprint, colon-separated hex, as clients show it.</summary>
    public string Fingerprint { get; }

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

    public void Dispose() => Certificate.Dispose();
}
