using System.Security.Cryptography.X509Certificates;
using Org.BouncyCastle.Asn1;
using Org.BouncyCastle.Asn1.Pkcs;
using Org.BouncyCastle.Asn1.Sec;
using Org.BouncyCastle.Asn1.X509;
using Org.BouncyCastle.Crypto;
using Org.BouncyCastle.Crypto.Generators;
using Org.BouncyCastle.Crypto.Operators;
using Org.BouncyCastle.Crypto.Parameters;
using Org.BouncyCastle.Math;
using Org.BouncyCastle.OpenSsl;
using Org.BouncyCastle.Pkcs;
using Org.BouncyCastle.Security;
using Org.BouncyCastle.X509;
using Xmpp.Server.Config;

namespace Xmpp.Server.Tls;

/// <summary>
/// Certificates per host: the configured PEM certificate and key; else one from the certificate source
/// (ACME) when it has one; else a self-signed one generated on first start into the data directory
/// (certs/HOST.crt and HOST.key) and reused afterwards.
/// </summary>
public sealed class CertificateStore : IDisposable
{
    /// <summary>id-on-xmppAddr (RFC 6120 §13.7.1.4).</summary>
    public const string XmppAddrOid = "1.3.6.1.5.5.7.8.5";

    /// <summary>id-on-dnsSRV (RFC 4985).</summary>
    public const string DnsSrvOid = "1.3.6.1.5.5.7.8.7";

    private readonly Dictionary<string, HostCertificate> _byHost = new(StringComparer.Ordinal);

    private CertificateStore()
    {
    }

    public IReadOnlyCollection<HostCertificate> All => _byHost.Values;

    public static CertificateStore Load(ServerOptions options, ICertificateSource? source = null)
    {
        var store = new CertificateStore();
        try
        {
            foreach (var host in options.Hosts)
            {
                store._byHost[host.Name] = LoadOrCreate(host, options.DataDirectory, source);
            }
        }
        catch
        {
            store.Dispose();
            throw;
        }

        return store;
    }

    /// <summary>
    /// The certificate of a host, or of a service domain's parent host (conference.HOST uses HOST's: the
    /// admin's certificate for HOST may well cover its subdomains; a generated one does not, and federation
    /// then authenticates the service by dialback).
    /// </summary>
    public HostCertificate? Find(string? host)
    {
        if (host is null)
        {
            return null;
        }

        if (_byHost.TryGetValue(host, out var c))
        {
            return c;
        }

        var dot = host.IndexOf('.', StringComparison.Ordinal);
        return dot > 0 && _byHost.TryGetValue(host[(dot + 1)..], out var parent) ? parent : null;
    }

    public HostCertificate Default => _byHost.Values.First();

    private static HostCertificate LoadOrCreate(HostOptions host, string dataDir, ICertificateSource? source)
    {
        if (host.CertificateFile is not null && host.KeyFile is not null)
        {
            return new HostCertificate(host.Name, LoadPem(host.CertificateFile, host.KeyFile), generated: false, host.CertificateFile);
        }

        if (source?.Find(host.Name) is { } files)
        {
            return new HostCertificate(host.Name, LoadPem(files.CertificateFile, files.KeyFile), generated: false, files.CertificateFile, LoadChain(files.CertificateFile));
        }

        var dir = Path.Combine(dataDir, "certs");
        var certFile = Path.Combine(dir, host.Name + ".crt");
        var keyFile = Path.Combine(dir, host.Name + ".key");
        if (!File.Exists(certFile) || !File.Exists(keyFile))
        {
            Hosting.PrivateFiles.EnsureDirectory(dir);
            var (certPem, keyPem) = GenerateSelfSigned(host.Name);
            Hosting.PrivateFiles.WriteAllText(keyFile, keyPem);
            File.WriteAllText(certFile, certPem);
            return new HostCertificate(host.Name, LoadPem(certFile, keyFile), generated: true, certFile);
        }

        return new HostCertificate(host.Name, LoadPem(certFile, keyFile), generated: false, certFile);
    }

    private static X509Certificate2 LoadPem(string certFile, string keyFile)
    {
        try
        {
            return X509Certificate2.CreateFromPemFile(certFile, keyFile);
        }
        catch (Exception ex) when (ex is System.Security.Cryptography.CryptographicException or IOException or ArgumentException)
        {
            throw new ConfigException($"cannot load certificate {certFile} with key {keyFile}: {ex.Message}", ex);
        }
    }

    /// <summary>The certificates after the first in a PEM file (the intermediates a server sends with its own).</summary>
    internal static X509Certificate2Collection LoadChain(string certFile)
    {
        var all = new X509Certificate2Collection();
        all.ImportFromPemFile(certFile);
        var chain = new X509Certificate2Collection();
        for (var i = 1; i < all.Count; i++)
        {
            chain.Add(all[i]);
        }

        all[0].Dispose();
        return chain;
    }

    /// <summary>
    /// A self-signed ECDSA P-256 certificate naming the host as DNS SAN, as xmppAddr and as SRV-ID
    /// (_xmpp-client and _xmpp-server) otherName SANs (RFC 6120 §13.7.1.2, RFC 7673).
    /// </summary>
    public static (string CertificatePem, string KeyPem) GenerateSelfSigned(string host, int validDays = 3650)
    {
        var random = new SecureRandom();
        var keyGen = new ECKeyPairGenerator();
        keyGen.Init(new ECKeyGenerationParameters(SecObjectIdentifiers.SecP256r1, random));
        var pair = keyGen.GenerateKeyPair();

        var name = new X509Name("CN=" + host);
        var gen = new X509V3CertificateGenerator();
        gen.SetSerialNumber(new BigInteger(128, random).Add(BigInteger.One));
        gen.SetIssuerDN(name);
        gen.SetSubjectDN(name);
        gen.SetNotBefore(DateTime.UtcNow.AddDays(-1));
        gen.SetNotAfter(DateTime.UtcNow.AddDays(validDays));
        gen.SetPublicKey(pair.Public);
        gen.AddExtension(X509Extensions.BasicConstraints, true, new BasicConstraints(false));
        gen.AddExtension(X509Extensions.KeyUsage, true, new KeyUsage(KeyUsage.DigitalSignature | KeyUsage.KeyAgreement));
        gen.AddExtension(X509Extensions.ExtendedKeyUsage, false, new ExtendedKeyUsage(KeyPurposeID.id_kp_serverAuth, KeyPurposeID.id_kp_clientAuth));
        var sans = new GeneralNames(
        [
            new GeneralName(GeneralName.DnsName, host),
            new GeneralName(GeneralName.OtherName, new DerSequence(new DerObjectIdentifier(XmppAddrOid), new DerTaggedObject(true, 0, new DerUtf8String(host)))),
            new GeneralName(GeneralName.OtherName, new DerSequence(new DerObjectIdentifier(DnsSrvOid), new DerTaggedObject(true, 0, new DerIA5String("_xmpp-client." + host)))),
            new GeneralName(GeneralName.OtherName, new DerSequence(new DerObjectIdentifier(DnsSrvOid), new DerTaggedObject(true, 0, new DerIA5String("_xmpp-server." + host)))),
        ]);
        gen.AddExtension(X509Extensions.SubjectAlternativeName, false, sans);
        var cert = gen.Generate(new Asn1SignatureFactory("SHA256WITHECDSA", pair.Private, random));

        return (ToPem(cert), ToPem(PrivateKeyInfoFactory.CreatePrivateKeyInfo(pair.Private)));
    }

    /// <summary>PEM text of a BouncyCastle certificate or private key info (shared with the tests' CA).</summary>
    internal static string ToPem(object o)
    {
        using var sw = new StringWriter();
        var writer = new PemWriter(sw);
        if (o is PrivateKeyInfo pki)
        {
            writer.WriteObject(new Org.BouncyCastle.Utilities.IO.Pem.PemObject("PRIVATE KEY", pki.GetEncoded()));
        }
        else
        {
            writer.WriteObject(o);
        }

        writer.Writer.Flush();
        return sw.ToString();
    }

    /// <summary>
    /// At a reload, once new connections use another store: lets go of the shared SSL_CTXs these certificates
    /// hold (<see cref="TlsContexts"/>). Connections made from them keep theirs; a handshake still choosing
    /// one of these certificates gets a context of its own with the policy. The certificates stay usable.
    /// </summary>
    public void Retire()
    {
        foreach (var c in _byHost.Values)
        {
            c.SharedContexts.Dispose();
        }
    }

    public void Dispose()
    {
        foreach (var c in _byHost.Values)
        {
            c.Dispose();
        }
    }
}
