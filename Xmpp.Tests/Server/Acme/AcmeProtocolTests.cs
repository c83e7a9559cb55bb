using System.Buffers.Text;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using Xmpp.Server.Config;
using Xmpp.Server.Tls.Acme;

namespace Xmpp.Tests.Server.Acme;

/// <summary>
/// The ACME client's pieces without a CA: JWK thumbprints (RFC 7638's vector), ES256 JWS (verified with
/// the public key), the CSR, the documents of RFC 8555's examples, the backoff and the &lt;acme&gt; element.
/// </summary>
public sealed class AcmeProtocolTests
{
    /// <summary>RFC 7638 §3.1: the RSA key of RFC 7517 Appendix A.1 and its SHA-256 thumbprint.</summary>
    [Test]
    public void Jwk_thumbprint_matches_rfc7638_example()
    {
        const string n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";

        // Given in any order: the thumbprint sorts the members.
        var thumbprint = AcmeJws.JwkThumbprint([new("n", n), new("kty", "RSA"), new("e", "AQAB")]);

        Assert.That(thumbprint, Is.EqualTo("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"));
    }

    [Test]
    public void Ec_thumbprint_hashes_crv_kty_x_y_without_white_space()
    {
        using var jws = AcmeJws.Create();
        var canonical = $"{{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"{jws.X}\",\"y\":\"{jws.Y}\"}}";

        Assert.That(jws.Thumbprint, Is.EqualTo(Base64Url.EncodeToString(SHA256.HashData(Encoding.UTF8.GetBytes(canonical)))));
        Assert.That(jws.KeyAuthorization("tok"), Is.EqualTo("tok." + jws.Thumbprint));
    }

    [Test]
    public void Jws_with_jwk_is_flattened_es256_and_verifies_with_the_public_key()
    {
        using var jws = AcmeJws.Create();
        var body = jws.Sign(new Uri("https://ca.example/acme/new-account"), "nonce-1", kid: null, "{\"termsOfServiceAgreed\":true}"u8);

        using var doc = JsonDocument.Parse(body);
        var root = doc.RootElement;
        Assert.That(root.EnumerateObject().Select(p => p.Name), Is.EquivalentTo(new[] { "protected", "payload", "signature" }));
        var header = JsonDocument.Parse(Base64Url.DecodeFromChars(root.GetProperty("protected").GetString())).RootElement;
        Assert.Multiple(() =>
        {
            Assert.That(header.GetProperty("alg").GetString(), Is.EqualTo("ES256"));
            Assert.That(header.GetProperty("nonce").GetString(), Is.EqualTo("nonce-1"));
            Assert.That(header.GetProperty("url").GetString(), Is.EqualTo("https://ca.example/acme/new-account"));
            Assert.That(header.TryGetProperty("kid", out _), Is.False);
            Assert.That(header.GetProperty("jwk").GetProperty("kty").GetString(), Is.EqualTo("EC"));
            Assert.That(Encoding.UTF8.GetString(Base64Url.DecodeFromChars(root.GetProperty("payload").GetString())), Is.EqualTo("{\"termsOfServiceAgreed\":true}"));
        });

        // Verify with a key rebuilt from the JWK alone, as the CA does (RFC 7518 §3.4: R || S, 64 bytes).
        var jwk = header.GetProperty("jwk");
        using var verifier = ECDsa.Create(new ECParameters
        {
            Curve = ECCurve.NamedCurves.nistP256,
            Q = new ECPoint { X = Base64Url.DecodeFromChars(jwk.GetProperty("x").GetString()), Y = Base64Url.DecodeFromChars(jwk.GetProperty("y").GetString()) },
        });
        var signature = Base64Url.DecodeFromChars(root.GetProperty("signature").GetString());
        var input = Encoding.ASCII.GetBytes(root.GetProperty("protected").GetString() + "." + root.GetProperty("payload").GetString());
        Assert.That(signature, Has.Length.EqualTo(64));
        Assert.That(verifier.VerifyData(input, signature, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation), Is.True);
        input[^1] ^= 1;
        Assert.That(verifier.VerifyData(input, signature, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation), Is.False);
    }

    [Test]
    public void Jws_with_kid_has_no_jwk_and_post_as_get_has_an_empty_payload()
    {
        using var jws = AcmeJws.Create();
        var body = jws.Sign(new Uri("https://ca.example/acme/order/1"), "n2", "https://ca.example/acme/acct/7", [], postAsGet: true);

        using var doc = JsonDocument.Parse(body);
        var header = JsonDocument.Parse(Base64Url.DecodeFromChars(doc.RootElement.GetProperty("protected").GetString())).RootElement;
        Assert.Multiple(() =>
        {
            Assert.That(header.GetProperty("kid").GetString(), Is.EqualTo("https://ca.example/acme/acct/7"));
            Assert.That(header.TryGetProperty("jwk", out _), Is.False);
            Assert.That(doc.RootElement.GetProperty("payload").GetString(), Is.Empty);
        });
    }

    [Test]
    public void Account_key_survives_pem_round_trip_with_the_same_thumbprint()
    {
        using var jws = AcmeJws.Create();
        using var again = AcmeJws.FromPem(jws.ExportPem());

        Assert.That(again.Thumbprint, Is.EqualTo(jws.Thumbprint));
    }

    [Test]
    public void Csr_names_every_identifier_as_dns_san_and_is_self_signed()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var der = AcmeClient.CreateCsr(key, ["example.org", "conference.example.org", "pubsub.example.org"]);

        var request = CertificateRequest.LoadSigningRequest(der, HashAlgorithmName.SHA256, CertificateRequestLoadOptions.UnsafeLoadCertificateExtensions);
        var raw = request.CertificateExtensions.Single(e => e.Oid?.Value == "2.5.29.17");
        var san = new X509SubjectAlternativeNameExtension(raw.RawData);
        Assert.Multiple(() =>
        {
            Assert.That(request.SubjectName.Name, Is.EqualTo("CN=example.org"));
            Assert.That(san.EnumerateDnsNames(), Is.EqualTo(new[] { "example.org", "conference.example.org", "pubsub.example.org" }));
            Assert.That(request.PublicKey.GetECDsaPublicKey()!.ExportSubjectPublicKeyInfo(), Is.EqualTo(key.ExportSubjectPublicKeyInfo()));
        });
    }

    [Test]
    public void Csr_leaves_out_a_common_name_longer_than_64_characters()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var longName = new string('a', 60) + ".example.org";
        var request = CertificateRequest.LoadSigningRequest(AcmeClient.CreateCsr(key, [longName]), HashAlgorithmName.SHA256);

        Assert.That(request.SubjectName.Name, Is.Empty);
    }

    /// <summary>RFC 8555 §7.1.1's example directory.</summary>
    [Test]
    public void Directory_of_rfc8555_example_parses()
    {
        var json = """
            {
              "newNonce": "https://example.com/acme/new-nonce",
              "newAccount": "https://example.com/acme/new-account",
              "newOrder": "https://example.com/acme/new-order",
              "newAuthz": "https://example.com/acme/new-authz",
              "revokeCert": "https://example.com/acme/revoke-cert",
              "keyChange": "https://example.com/acme/key-change",
              "meta": {
                "termsOfService": "https://example.com/acme/terms/2017-5-30",
                "website": "https://www.example.com/",
                "caaIdentities": ["example.com"],
                "externalAccountRequired": false
              }
            }
            """u8;

        var dir = AcmeDirectory.Parse(json, new Uri("https://example.com/dir"));

        Assert.Multiple(() =>
        {
            Assert.That(dir.NewNonce, Is.EqualTo(new Uri("https://example.com/acme/new-nonce")));
            Assert.That(dir.NewAccount, Is.EqualTo(new Uri("https://example.com/acme/new-account")));
            Assert.That(dir.NewOrder, Is.EqualTo(new Uri("https://example.com/acme/new-order")));
            Assert.That(dir.RenewalInfo, Is.Null);
            Assert.That(dir.TermsOfService, Is.EqualTo("https://example.com/acme/terms/2017-5-30"));
        });
    }

    [Test]
    public void Directory_without_new_order_is_refused()
    {
        Assert.Throws<AcmeFormatException>(() => AcmeDirectory.Parse("""{"newNonce":"https://a/n","newAccount":"https://a/a"}"""u8, new Uri("https://a/")));
    }

    /// <summary>RFC 8555 §7.1.3's example order, and one that failed with its error.</summary>
    [Test]
    public void Order_of_rfc8555_example_parses()
    {
        var json = """
            {
              "status": "valid",
              "expires": "2016-01-20T14:09:07.99Z",
              "identifiers": [
                { "type": "dns", "value": "www.example.org" },
                { "type": "dns", "value": "example.org" }
              ],
              "notBefore": "2016-01-01T00:00:00Z",
              "notAfter": "2016-01-08T00:00:00Z",
              "authorizations": [
                "https://example.com/acme/authz/PAniVnsZcis",
                "https://example.com/acme/authz/r4HqLzrSrpI"
              ],
              "finalize": "https://example.com/acme/order/TOlocE8rfgo/finalize",
              "certificate": "https://example.com/acme/cert/mAt3xBGaobw"
            }
            """u8;

        var order = AcmeOrder.Parse(json, new Uri("https://example.com/acme/order/TOlocE8rfgo"));

        Assert.Multiple(() =>
        {
            Assert.That(order.Status, Is.EqualTo("valid"));
            Assert.That(order.Authorizations, Has.Count.EqualTo(2));
            Assert.That(order.Finalize, Is.EqualTo(new Uri("https://example.com/acme/order/TOlocE8rfgo/finalize")));
            Assert.That(order.Certificate, Is.EqualTo(new Uri("https://example.com/acme/cert/mAt3xBGaobw")));
            Assert.That(order.Error, Is.Null);
        });

        var failed = AcmeOrder.Parse("""{"status":"invalid","authorizations":[],"finalize":"/f","error":{"type":"urn:ietf:params:acme:error:rejectedIdentifier","detail":"no"}}"""u8, new Uri("https://ca.example/o/1"));
        Assert.That(failed.Error!.Type, Is.EqualTo("urn:ietf:params:acme:error:rejectedIdentifier"));
        Assert.That(failed.Finalize, Is.EqualTo(new Uri("https://ca.example/f")));
    }

    /// <summary>RFC 8555 §7.1.4's example authorization, with a failed challenge's error (§8.2).</summary>
    [Test]
    public void Authorization_parses_with_its_challenges_and_their_errors()
    {
        var json = """
            {
              "status": "invalid",
              "expires": "2015-03-01T14:09:07.99Z",
              "identifier": { "type": "dns", "value": "www.example.org" },
              "challenges": [
                {
                  "url": "https://example.com/acme/chall/prV_B7yEyA4",
                  "type": "http-01",
                  "status": "invalid",
                  "token": "DGyRejmCefe7v4NfDGDKfA",
                  "error": { "type": "urn:ietf:params:acme:error:connection", "detail": "Connection refused" }
                },
                { "url": "https://example.com/acme/chall/Rg5dV14Gh1Q", "type": "dns-01", "status": "pending", "token": "x" }
              ],
              "wildcard": false
            }
            """u8;

        var authz = AcmeAuthorization.Parse(json, new Uri("https://example.com/acme/authz/1"));

        Assert.Multiple(() =>
        {
            Assert.That(authz.Identifier, Is.EqualTo("www.example.org"));
            Assert.That(authz.Status, Is.EqualTo("invalid"));
            Assert.That(authz.Challenges.Select(c => c.Type), Is.EqualTo(new[] { "http-01", "dns-01" }));
            Assert.That(authz.Challenges[0].Token, Is.EqualTo("DGyRejmCefe7v4NfDGDKfA"));
            Assert.That(authz.Challenges[0].Error!.Type, Is.EqualTo("urn:ietf:params:acme:error:connection"));
        });
    }

    /// <summary>RFC 8555 §6.7.1's example problem with subproblems.</summary>
    [Test]
    public void Problem_with_subproblems_of_rfc8555_example_parses()
    {
        var json = """
            {
                "type": "urn:ietf:params:acme:error:malformed",
                "detail": "Some of the identifiers requested were rejected",
                "subproblems": [
                    {
                        "type": "urn:ietf:params:acme:error:malformed",
                        "detail": "Invalid underscore in DNS name \"_example.org\"",
                        "identifier": { "type": "dns", "value": "_example.org" }
                    },
                    {
                        "type": "urn:ietf:params:acme:error:rejectedIdentifier",
                        "detail": "This CA will not issue for \"example.net\"",
                        "identifier": { "type": "dns", "value": "example.net" }
                    }
                ]
            }
            """u8;

        var problem = AcmeProblem.Parse(json);

        Assert.Multiple(() =>
        {
            Assert.That(problem.Type, Is.EqualTo("urn:ietf:params:acme:error:malformed"));
            Assert.That(problem.Subproblems, Has.Count.EqualTo(2));
            Assert.That(problem.Subproblems[1].Identifier, Is.EqualTo("example.net"));
            Assert.That(problem.ToString(), Does.Contain("example.net: urn:ietf:params:acme:error:rejectedIdentifier: This CA will not issue"));
        });
    }

    [Test]
    public void Backoff_doubles_from_the_retry_delay_up_to_the_check_interval()
    {
        var first = TimeSpan.FromMinutes(5);
        var max = TimeSpan.FromDays(1);

        Assert.That(
            new[] { 1, 2, 3, 4, 20 }.Select(n => AcmeCertificates.Backoff(first, n, max)),
            Is.EqualTo(new[] { first, first * 2, first * 4, first * 8, max }));
    }

    [Test]
    public void Names_are_the_host_then_its_service_subdomains()
    {
        Assert.That(
            AcmeCertificates.NamesFor("example.org", ["pubsub.example.org", "conference.example.org", "conference.other.org"]),
            Is.EqualTo(new[] { "example.org", "conference.example.org", "pubsub.example.org" }));
    }

    [Test]
    public void Acme_element_is_read_with_its_defaults()
    {
        var options = ConfigLoader.Parse("<xmppserver><host name='a.example'/><acme directory='https://acme-staging-v02.api.letsencrypt.org/directory' contact='mailto:admin@a.example'/></xmppserver>", "test.xml");

        var acme = options.Acme!;
        Assert.Multiple(() =>
        {
            Assert.That(acme.Directory, Is.EqualTo(new Uri("https://acme-staging-v02.api.letsencrypt.org/directory")));
            Assert.That(acme.Contact, Is.EqualTo(new[] { "mailto:admin@a.example" }));
            Assert.That(acme.HttpAddress, Is.EqualTo("*"));
            Assert.That(acme.HttpPort, Is.EqualTo(80));
            Assert.That(acme.RenewBeforeDays, Is.EqualTo(30));
            Assert.That(acme.CheckInterval, Is.EqualTo(TimeSpan.FromDays(1)));
            Assert.That(acme.RetryDelay, Is.EqualTo(TimeSpan.FromMinutes(5)));
            Assert.That(acme.CaFile, Is.Null);
        });
    }

    [TestCase("<acme/>", "<acme>: attribute 'directory' is required")]
    [TestCase("<acme directory='http://ca.example/dir'/>", "<acme>: directory 'http://ca.example/dir' is not an https URL (RFC 8555 §6.1: ACME runs over HTTPS)")]
    [TestCase("<acme directory='https://ca.example/dir' contact='admin@example.org'/>", "<acme>: contact 'admin@example.org' is not a mailto: URI such as mailto:admin@example.org")]
    [TestCase("<acme directory='https://ca.example/dir' http-port='0'/>", "<acme>: attribute 'http-port' must be a whole number from 1 to 65535, not '0'")]
    [TestCase("<acme directory='https://ca.example/dir' http-address='anywhere'/>", "<acme>: http-address 'anywhere' is not an IP address, 'localhost' or '*'")]
    [TestCase("<acme directory='https://ca.example/dir' challenge='dns-01'/>", "<acme>: unknown attribute 'challenge' (allowed: directory, contact, http-address, http-port, renew-before-days, check-interval, retry-delay, ca-file)")]
    public void Acme_element_refuses_its_mistakes(string acme, string expected)
    {
        var ex = Assert.Throws<ConfigException>(() => ConfigLoader.Parse("<xmppserver><host name='a'/>" + acme + "</xmppserver>", "test.xml"));

        Assert.That(ex!.Message, Is.EqualTo("test.xml:1: " + expected));
    }

    [Test]
    public void Check_says_what_acme_will_do()
    {
        var options = ConfigLoader.Parse("<xmppserver><host name='a.example'/><host name='b.example'><certificate cert='b.crt' key='b.key'/></host><acme directory='https://ca.example/dir' http-port='8080'/></xmppserver>", "/etc/x/test.xml");

        var lines = AcmePlan.Describe(options).ToList();

        Assert.That(lines, Has.Some.Contains("directory https://ca.example/dir (https)"));
        Assert.That(lines, Has.Some.Contains("host a.example: a certificate for a.example, conference.a.example, pubsub.a.example by HTTP-01"));
        Assert.That(lines, Has.Some.Contains("host b.example: not handled, it has its own <certificate>"));
        Assert.That(lines, Has.Some.Contains("(forwarded to 8080)"));
    }
}
