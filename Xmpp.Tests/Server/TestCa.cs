using Org.BouncyCastle.Asn1;
using Org.BouncyCastle.Asn1.Pkcs;
using Org.BouncyCastle.Asn1.Sec;
using Org.BouncyCastle.Asn1.X509;
using Org.BouncyCastle.Crypto;
using Org.BouncyCastle.Crypto.Generators;
using Org.BouncyCastle.Crypto.Operators;
using Org.BouncyCastle.Crypto.Parameters;
using Org.BouncyCastle.Math;
using Org.BouncyCastle.Pkcs;
using Org.BouncyCastle.Security;
using Org.BouncyCastle.X509;

namespace Xmpp.Tests.Server;

/// <summary>A throw-away certificate authority for tests: issues server certificates with chosen names and validity.</summary>
internal sealed class TestCa
{
    private readonly SecureRandom _random = new();
    private readonly AsymmetricCipherKeyPair _key;
    private readonly Org.BouncyCastle.X509.X509Certificate _cert;

    public TestCa(string name = "Test CA")
    {
        _key = NewKey();
        var dn = new X509Name("CN=" + name);
        var gen = new X509V3CertificateGenerator();
        gen.SetSerialNumber(BigInteger.ValueOf(1));
        gen.SetIssuerDN(dn);
        gen.SetSubjectDN(dn);
        gen.SetNotBefore(DateTime.UtcNow.AddDays(-1));
        gen.SetNotAfter(DateTime.UtcNow.AddDays(30));
        gen.SetPublicKey(_key.Public);
        gen.AddExtension(X509Extensions.BasicConstraints, true, new BasicConstraints(true));
        gen.AddExtension(X509Extensions.KeyUsage, true, new KeyUsage(KeyUsage.KeyCertSign | KeyUsage.CrlSign));
        _cert = gen.Generate(new Asn1SignatureFactory("SHA256WITHECDSA", _key.Private, _random));
    }

    public string CertificatePem => Pem(_cert);

    /// <summary>A server certificate: DNS SANs, optional xmppAddr and SRV-ID otherNames, chosen validity.</summary>
    public (string CertificatePem, string KeyPem) Issue(
        string subject, string[]? dnsNames = null, string[]? xmppAddrs = null, string[]? srvNames = null, DateTime? notBefore = null, DateTime? notAfter = null)
    {
        var key = NewKey();
        var gen = new X509V3CertificateGenerator();
        gen.SetSerialNumber(new BigInteger(64, _random).Add(BigInteger.Two));
        gen.SetIssuerDN(_cert.SubjectDN);
        gen.SetSubjectDN(new X509Name("CN=" + subject));
        gen.SetNotBefore(notBefore ?? DateTime.UtcNow.AddDays(-1));
        gen.SetNotAfter(notAfter ?? DateTime.UtcNow.AddDays(10));
        gen.SetPublicKey(key.Public);
        gen.AddExtension(X509Extensions.BasicConstraints, true, new BasicConstraints(false));
        gen.AddExtension(X509Extensions.ExtendedKeyUsage, false, new ExtendedKeyUsage(KeyPurposeID.id_kp_serverAuth, KeyPurposeID.id_kp_clientAuth));
        var names = new List<GeneralName>();
        names.AddRange((dnsNames ?? []).Select(d => new GeneralName(GeneralName.DnsName, d)));
        names.AddRange((xmppAddrs ?? []).Select(x => new GeneralName(GeneralName.OtherName,
            new DerSequence(new DerObjectIdentifier("1.3.6.1.5.5.7.8.5"), new DerTaggedObject(true, 0, new DerUtf8String(x))))));
        names.AddRange((srvNames ?? []).Select(s => new GeneralName(GeneralName.OtherName,
            new DerSequence(new DerObjectIdentifier("1.3.6.1.5.5.7.8.7"), new DerTaggedObject(true, 0, new DerIA5String(s))))));
        if (names.Count > 0)
        {
            gen.AddExtension(X509Extensions.SubjectAlternativeName, false, new GeneralNames([.. names]));
        }

        var cert = gen.Generate(new Asn1SignatureFactory("SHA256WITHECDSA", _key.Private, _random));
        return (Pem(cert), Pem(PrivateKeyInfoFactory.CreatePrivateKeyInfo(key.Private)));
    }

    public System.Security.Cryptography.X509Certificates.X509Certificate2 IssueX509(
        string subject, string[]? dnsNames = null, string[]? xmppAddrs = null, string[]? srvNames = null, DateTime? notBefore = null, DateTime? notAfter = null)
    {
        var (cert, _) = Issue(subject, dnsNames, xmppAddrs, srvNames, notBefore, notAfter);
        return System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPem(cert);
    }

    public System.Security.Cryptography.X509Certificates.X509Certificate2 Root() =>
        System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPem(CertificatePem);

    private AsymmetricCipherKeyPair NewKey()
    {
        var gen = new ECKeyPairGenerator();
        gen.Init(new ECKeyGenerationParameters(SecObjectIdentifiers.SecP256r1, _random));
        return gen.GenerateKeyPair();
    }

    private static string Pem(object o) => Xmpp.Server.Tls.CertificateStore.ToPem(o);
}
