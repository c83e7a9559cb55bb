using System.Security.Cryptography.X509Certificates;
using Org.BouncyCastle.Asn1;
using Org.BouncyCastle.Asn1.X509;
using Org.BouncyCastle.X509.Extension;
using Xmpp.Core.Addressing;

namespace Xmpp.Server.S2s;

/// <summary>
/// Checks a peer server's certificate: a chain to a trusted root (the system's or the configured CA
/// file), within its validity, and an identity matching the domain (RFC 6120 §13.7.1.2, RFC 6125):
/// an SRV-ID "_xmpp-server.DOMAIN" or xmppAddr otherName (read with BouncyCastle, which .NET does not
/// expose), or a DNS name with at most a leftmost wildcard label; the subject CN only when the
/// certificate has no subjectAltName at all.
/// </summary>
public sealed class PeerCertificates
{
    private const string XmppAddrOid = "1.3.6.1.5.5.7.8.5";
    private const string SrvNameOid = "1.3.6.1.5.5.7.8.7";
    private readonly X509Certificate2Collection _extraRoots;

    public PeerCertificates(X509Certificate2Collection extraRoots)
    {
        _extraRoots = extraRoots;
    }

    public static PeerCertificates Load(string? caFile)
    {
        var roots = new X509Certificate2Collection();
        if (caFile is not null)
        {
            roots.ImportFromPemFile(caFile);
        }

        return new PeerCertificates(roots);
    }

    /// <summary>Null when the certificate is trusted for the domain, else why not.</summary>
    public string? Check(X509Certificate2? certificate, string domain, DateTimeOffset now)
    {
        if (certificate is null)
        {
            return "no certificate";
        }

        if (now < certificate.NotBefore.ToUniversalTime() || now > certificate.NotAfter.ToUniversalTime())
        {
            return $"certificate not valid now (valid {certificate.NotBefore:u} to {certificate.NotAfter:u})";
        }

        if (!ChainIsTrusted(certificate, now))
        {
            return "certificate not issued by a trusted authority";
        }

        return MatchesDomain(certificate, domain) ? null : $"certificate is not for {domain}";
    }

    private bool ChainIsTrusted(X509Certificate2 certificate, DateTimeOffset now)
    {
        using var system = new X509Chain();
        system.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        system.ChainPolicy.VerificationTime = now.UtcDateTime;
        if (system.Build(certificate))
        {
            return true;
        }

        if (_extraRoots.Count == 0)
        {
            return false;
        }

        using var custom = new X509Chain();
        custom.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        custom.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        custom.ChainPolicy.CustomTrustStore.AddRange(_extraRoots);
        custom.ChainPolicy.VerificationTime = now.UtcDateTime;
        return custom.Build(certificate);
    }

    /// <summary>RFC 6125 §6 matching of the reference identifiers for an XMPP server domain.</summary>
    public static bool MatchesDomain(X509Certificate2 certificate, string domain)
    {
        var (dnsNames, xmppAddrs, srvNames, hasSan) = ReadSubjectAltNames(certificate);
        if (srvNames.Any(s => s.Equals("_xmpp-server." + domain, StringComparison.OrdinalIgnoreCase)))
        {
            return true;
        }

        if (xmppAddrs.Any(x => Jid.TryParse(x, out var j) && j.Local is null && j.Resource is null && j.Domain == domain))
        {
            return true;
        }

        if (dnsNames.Any(d => DnsNameMatches(d, domain)))
        {
            return true;
        }

        if (!hasSan)
        {
            var cn = certificate.GetNameInfo(X509NameType.SimpleName, forIssuer: false);
            return cn is not null && DnsNameMatches(cn, domain);
        }

        return false;
    }

    /// <summary>Exact match, or "*.example.org" matching exactly one leftmost label.</summary>
    public static bool DnsNameMatches(string pattern, string domain)
    {
        pattern = pattern.TrimEnd('.').ToLowerInvariant();
        domain = domain.TrimEnd('.').ToLowerInvariant();
        if (pattern == domain)
        {
            return true;
        }

        if (!pattern.StartsWith("*.", StringComparison.Ordinal))
        {
            return false;
        }

        var dot = domain.IndexOf('.', StringComparison.Ordinal);
        return dot > 0 && domain[(dot + 1)..] == pattern[2..] && pattern[2..].Contains('.', StringComparison.Ordinal);
    }

    public static (List<string> Dns, List<string> XmppAddr, List<string> SrvName, bool HasSan) ReadSubjectAltNames(X509Certificate2 certificate)
    {
        var dns = new List<string>();
        var xmpp = new List<string>();
        var srv = new List<string>();
        var bc = new Org.BouncyCastle.X509.X509CertificateParser().ReadCertificate(certificate.RawData);
        var ext = bc.GetExtensionValue(X509Extensions.SubjectAlternativeName);
        if (ext is null)
        {
            return (dns, xmpp, srv, false);
        }

        var names = GeneralNames.GetInstance(X509ExtensionUtilities.FromExtensionValue(ext));
        foreach (var name in names.GetNames())
        {
            if (name.TagNo == GeneralName.DnsName)
            {
                dns.Add(DerIA5String.GetInstance(name.Name).GetString());
            }
            else if (name.TagNo == GeneralName.OtherName)
            {
                var seq = Asn1Sequence.GetInstance(name.Name);
                var oid = DerObjectIdentifier.GetInstance(seq[0]).Id;
                var value = Asn1TaggedObject.GetInstance(seq[1]).GetExplicitBaseObject();
                if (oid == XmppAddrOid && value is DerUtf8String utf8)
                {
                    xmpp.Add(utf8.GetString());
                }
                else if (oid == SrvNameOid && value is DerIA5String ia5)
                {
                    srv.Add(ia5.GetString());
                }
            }
        }

        return (dns, xmpp, srv, true);
    }
}
