using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using NLog;
using Xmpp.Server.Config;
using Xmpp.Server.Logging;
using Xmpp.Server.Tls;
using Xmpp.Tests.EndToEnd;

namespace Xmpp.Tests.Server;

/// <summary>
/// TLS connections share the runtime's SSL_CTX per certificate, restricted to the policy (TlsContexts). The
/// runtime's internals it relies on are checked here, so that a new .NET that changes them fails these tests
/// instead of silently costing memory again, and the fallback to a policy per connection is tested too.
/// </summary>
[TestFixture]
[CancelAfter(60_000)]
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
[System.Diagnostics.CodeAnalysis.SuppressMessage("Security", "CA5359", Justification = "Handshakes in memory with a throwaway self-signed certificate.")]
public sealed class TlsContextsTests
{
    private static readonly CipherSuitesPolicy CbcAndRsaKeyExchangeOnly = new(
    [
        TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256, TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384,
        TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, TlsCipherSuite.TLS_RSA_WITH_AES_128_GCM_SHA256,
    ]);

    private LogLines _log = null!;
    private LogFactory _logs = null!;
    private HostCertificate _certificate = null!;
    private string _certificatePem = null!;
    private string _keyPem = null!;

    [SetUp]
    public void SetUp()
    {
        Assume.That(OperatingSystem.IsLinux(), "the shared SSL_CTX is OpenSSL's, on Linux");
        _log = new LogLines { Name = "memory", Layout = "${level}|${logger}: ${message}" };
        _logs = LogSetup.Create(new LoggingOptions { Level = "Debug" }, [_log]);

        // A certificate of its own: the runtime's cache of contexts is process-wide, keyed by certificate.
        (_certificatePem, _keyPem) = CertificateStore.GenerateSelfSigned("localhost");
        _certificate = new HostCertificate("localhost", X509Certificate2.CreateFromPem(_certificatePem, _keyPem), generated: true, "test");
    }

    [TearDown]
    public void TearDown()
    {
        _certificate?.Dispose();
        _logs?.Dispose();
        _log?.Dispose();
    }

    private IEnumerable<string> Warnings => _log.Logs.Where(l => l.StartsWith("Warn|", StringComparison.Ordinal));

    [Test]
    public async Task Server_connections_with_one_certificate_share_one_ssl_ctx_that_refuses_cbc_and_rsa_key_exchange()
    {
        var tls = new TlsContexts(_logs.GetLogger("Tls"));
        foreach (var protocols in new[] { null, new[] { new SslApplicationProtocol("xmpp-client") } })
        {
            var options = await tls.ServerOptionsAsync(_certificate, protocols, requestClientCertificate: false, CancellationToken.None);
            Assert.That(options.CipherSuitesPolicy, Is.Null, "no policy in the options: the runtime shares the context");

            var contexts = new List<IntPtr>();
            foreach (var protocol in new[] { SslProtocols.Tls12, SslProtocols.Tls13, SslProtocols.Tls12 })
            {
                var (server, client) = await ConnectAsync(tls, protocols, new SslClientAuthenticationOptions { TargetHost = "localhost", EnabledSslProtocols = protocol });
                await using (server)
                await using (client)
                {
                    Assert.That(server.SslProtocol, Is.EqualTo(protocol));
                    Assert.That(TlsPolicy.Allows(server.NegotiatedCipherSuite), server.NegotiatedCipherSuite.ToString());
                    // Read back from OpenSSL by IANA number: the OpenSSL names in TlsPolicy are its suites, in its order.
                    Assert.That(OpenSsl.CipherSuitesOf(server), Is.EqualTo(TlsPolicy.Suites));
                    contexts.Add(OpenSsl.ContextOf(server));
                }
            }

            Assert.That(contexts[0], Is.Not.EqualTo(IntPtr.Zero));
            Assert.That(contexts, Has.All.EqualTo(contexts[0]), "one SSL_CTX for every connection");

            var refused = Assert.CatchAsync(async () => await ConnectAsync(tls, protocols, new SslClientAuthenticationOptions
            {
                TargetHost = "localhost",
                EnabledSslProtocols = SslProtocols.Tls12,
                CipherSuitesPolicy = CbcAndRsaKeyExchangeOnly,
            }));
            Assert.That(refused, Is.InstanceOf<AuthenticationException>().Or.InstanceOf<IOException>());
        }

        Assert.That(tls.Sharing, Is.True);
        Assert.That(Warnings, Is.Empty);
    }

    [Test]
    public async Task Client_connections_with_one_certificate_share_one_ssl_ctx_offering_the_policys_suites_only()
    {
        var tls = new TlsContexts(_logs.GetLogger("Tls"));
        var contexts = new List<IntPtr>();
        for (var i = 0; i < 2; i++)
        {
            var (a, b) = MemoryDuplexStream.CreatePair();
            var client = new SslStream(a);
            var server = new SslStream(b);
            await using (client)
            await using (server)
            {
                await Task.WhenAll(
                    tls.AuthenticateAsClientAsync(client, _certificate, "peer.example", null, (_, _, _, _) => true, CancellationToken.None),
                    server.AuthenticateAsServerAsync(new SslServerAuthenticationOptions { ServerCertificateContext = _certificate.Context, EnabledSslProtocols = SslProtocols.Tls12 }));
                Assert.That(OpenSsl.CipherSuitesOf(client), Is.EqualTo(TlsPolicy.Suites));
                contexts.Add(OpenSsl.ContextOf(client));
            }
        }

        Assert.That(contexts[0], Is.Not.EqualTo(IntPtr.Zero));
        Assert.That(contexts[1], Is.EqualTo(contexts[0]));
        Assert.That(Warnings, Is.Empty);
    }

    [Test]
    public async Task When_the_runtime_is_not_as_expected_every_connection_has_the_policy_and_one_warning_says_so()
    {
        // As a runtime whose SslStream internals are not found.
        var tls = new TlsContexts(_logs.GetLogger("Tls"), _ => IntPtr.Zero);
        for (var i = 0; i < 2; i++)
        {
            var options = await tls.ServerOptionsAsync(_certificate, null, requestClientCertificate: false, CancellationToken.None);
            Assert.That(options.CipherSuitesPolicy, Is.SameAs(TlsPolicy.CipherSuites));
            var client = await tls.ClientOptionsAsync(_certificate, "peer.example", null, (_, _, _, _) => true, CancellationToken.None);
            Assert.That(client.CipherSuitesPolicy, Is.SameAs(TlsPolicy.CipherSuites));
        }

        Assert.That(tls.Sharing, Is.False);
        Assert.That(Warnings.ToList(), Has.Count.EqualTo(1).And.Some.Contains("12 KiB more memory per connection"));

        var (server, client2) = await ConnectAsync(tls, null, new SslClientAuthenticationOptions { TargetHost = "localhost", EnabledSslProtocols = SslProtocols.Tls12 });
        await using (server)
        await using (client2)
        {
            Assert.That(TlsPolicy.Allows(server.NegotiatedCipherSuite), server.NegotiatedCipherSuite.ToString());
        }

        var refused = Assert.CatchAsync(async () => await ConnectAsync(tls, null, new SslClientAuthenticationOptions
        {
            TargetHost = "localhost",
            EnabledSslProtocols = SslProtocols.Tls12,
            CipherSuitesPolicy = CbcAndRsaKeyExchangeOnly,
        }));
        Assert.That(refused, Is.InstanceOf<AuthenticationException>().Or.InstanceOf<IOException>());
    }

    [Test]
    public async Task A_connection_made_from_an_unrestricted_ssl_ctx_is_refused_and_everything_falls_back()
    {
        var tls = new TlsContexts(_logs.GetLogger("Tls"));
        var (a, b) = MemoryDuplexStream.CreatePair();
        var server = new SslStream(a);
        var client = new SslStream(b, false, (_, _, _, _) => true);
        await using (server)
        await using (client)
        {
            // The runtime's default suites (with CBC), as if a connection had bypassed the restricted context.
            await Task.WhenAll(
                server.AuthenticateAsServerAsync(new SslServerAuthenticationOptions { ServerCertificateContext = _certificate.Context }),
                client.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = "localhost" }));
            Assert.Throws<AuthenticationException>(() => tls.Established(server));
        }

        Assert.That(tls.Sharing, Is.False);
        Assert.That(Warnings.ToList(), Has.Count.EqualTo(1));
        var options = await tls.ServerOptionsAsync(_certificate, null, requestClientCertificate: false, CancellationToken.None);
        Assert.That(options.CipherSuitesPolicy, Is.SameAs(TlsPolicy.CipherSuites));
    }

    [Test]
    public async Task Cbc_only_and_rsa_key_exchange_only_clients_are_refused_where_a_server_allowing_them_accepts_them()
    {
        var dir = Directory.CreateTempSubdirectory("xmpp-tls-").FullName;
        try
        {
            var (certificateFile, keyFile) = TlsPolicyTests.WriteRsaCertificate(dir, "localhost", "rsa");
            using var rsa = new HostCertificate("localhost", X509Certificate2.CreateFromPemFile(certificateFile, keyFile), generated: false, certificateFile);
            var tls = new TlsContexts(_logs.GetLogger("Tls"));
            foreach (var policy in new[] { TlsPolicyTests.CbcOnly, TlsPolicyTests.RsaKeyExchangeOnly })
            {
                var client = new SslClientAuthenticationOptions { TargetHost = "localhost", EnabledSslProtocols = SslProtocols.Tls12, CipherSuitesPolicy = policy };

                // The control: a server that allows them (a context of its own) accepts them with this certificate,
                // so that what refuses them below is the policy, not the certificate or OpenSSL's security level.
                var (a, b) = MemoryDuplexStream.CreatePair();
                await using (var server = new SslStream(a))
                await using (var accepted = new SslStream(b, false, (_, _, _, _) => true))
                {
                    var permissive = new SslServerAuthenticationOptions
                    {
                        ServerCertificateContext = rsa.Context,
                        CipherSuitesPolicy = new CipherSuitesPolicy([.. TlsPolicyTests.CbcOnlySuites, .. TlsPolicyTests.RsaKeyExchangeOnlySuites]),
                    };
                    await Task.WhenAll(server.AuthenticateAsServerAsync(permissive), accepted.AuthenticateAsClientAsync(client));
                    Assert.That(TlsPolicy.Allows(accepted.NegotiatedCipherSuite), Is.False, accepted.NegotiatedCipherSuite.ToString());
                }

                var refused = Assert.CatchAsync(async () => await ConnectAsync(tls, null, client, rsa));
                Assert.That(refused, Is.InstanceOf<AuthenticationException>().Or.InstanceOf<IOException>());
            }

            Assert.That(tls.Sharing, Is.True);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Test]
    public async Task A_retired_certificate_lets_go_of_its_context_and_the_next_one_with_the_same_certificate_shares_it_again()
    {
        var tls = new TlsContexts(_logs.GetLogger("Tls"));
        var (server, client) = await ConnectAsync(tls, null, new SslClientAuthenticationOptions { TargetHost = "localhost" });
        var context = OpenSsl.ContextOf(server);
        await using (server)
        await using (client)
        {
            _certificate.SharedContexts.Dispose();
            var options = await tls.ServerOptionsAsync(_certificate, null, requestClientCertificate: false, CancellationToken.None);
            Assert.That(options.CipherSuitesPolicy, Is.SameAs(TlsPolicy.CipherSuites), "a handshake still choosing the retired certificate has the policy");

            // What a reload with the same files makes: another object, the same certificate, the same (restricted) context.
            using var again = new HostCertificate("localhost", X509Certificate2.CreateFromPem(_certificatePem, _keyPem), generated: false, "test");
            var (server2, client2) = await ConnectAsync(tls, null, new SslClientAuthenticationOptions { TargetHost = "localhost", EnabledSslProtocols = SslProtocols.Tls12 }, again);
            await using (server2)
            await using (client2)
            {
                Assert.That(OpenSsl.ContextOf(server2), Is.EqualTo(context));
                Assert.That(OpenSsl.CipherSuitesOf(server2), Is.EqualTo(TlsPolicy.Suites));
            }
        }

        Assert.That(tls.Sharing, Is.True);
        Assert.That(Warnings, Is.Empty);
    }

    [Test]
    public async Task A_reload_with_a_new_certificate_shares_a_new_restricted_context_and_retires_the_old()
    {
        await using var server = await TestServer.StartAsync(null, "alice@localhost:wonderland");
        var old = server.Server.Context.Certificates.Default;
        var first = await RawXmppClient.ConnectAsync(server.C2sPort);
        await using (first)
        {
            await first.OpenTlsAsync();
            var before = ServerEnds(server).Single();
            var oldContext = OpenSsl.ContextOf(before);

            var (certificateFile, keyFile) = TlsPolicyTests.WriteRsaCertificate(server.DataDir, "localhost", "reloaded");
            var result = await server.Server.ReloadAsync(server.Server.Context.Options with { Hosts = [new Xmpp.Server.Config.HostOptions("localhost", certificateFile, keyFile)] }, CancellationToken.None);
            Assert.That(result.Applied, string.Join("; ", result.Messages));
            Assert.That(old.SharedContexts.Disposed, "the retired certificate let go of its contexts");

            var second = await RawXmppClient.ConnectAsync(server.C2sPort);
            await using (second)
            {
                await second.OpenTlsAsync(new SslClientAuthenticationOptions { TargetHost = "localhost", EnabledSslProtocols = SslProtocols.Tls12 });
                Assert.That(second.Tls!.RemoteCertificate!.GetCertHashString(), Is.Not.EqualTo(old.Certificate.GetCertHashString()));
                var after = ServerEnds(server).Single(s => !ReferenceEquals(s, before));
                Assert.That(OpenSsl.ContextOf(after), Is.Not.EqualTo(oldContext));
                Assert.That(OpenSsl.CipherSuitesOf(after), Is.EqualTo(TlsPolicy.Suites));
                Assert.That(second.Tls.NegotiatedCipherSuite.ToString(), Does.StartWith("TLS_ECDHE_RSA_"));
            }

            // The connection made before the reload goes on.
            var success = await first.AuthenticateAsync("PLAIN", "alice", "wonderland");
            Assert.That(success.Name, Is.EqualTo("success"));
        }

        Assert.That(server.Server.Context.Tls.Sharing, Is.True);
    }

    private static List<SslStream> ServerEnds(TestServer server) =>
        [.. server.Server.Context.Connections.All.OfType<Xmpp.Server.Streams.StreamConnection>().Select(c => c.Transport.Tls).OfType<SslStream>()];

    private async Task<(SslStream Server, SslStream Client)> ConnectAsync(TlsContexts tls, IReadOnlyList<SslApplicationProtocol>? protocols, SslClientAuthenticationOptions clientOptions, HostCertificate? certificate = null)
    {
        certificate ??= _certificate;
        var (a, b) = MemoryDuplexStream.CreatePair();
        var server = new SslStream(a);
        var client = new SslStream(b, false, (_, _, _, _) => true);
        Task[] handshakes =
        [
            tls.AuthenticateAsServerAsync(server, _ => certificate, protocols, requestClientCertificate: false, CancellationToken.None),
            client.AuthenticateAsClientAsync(clientOptions),
        ];
        try
        {
            // When one end fails, the other would wait forever: closing both ends it.
            if (!(await Task.WhenAny(handshakes)).IsCompletedSuccessfully)
            {
                await server.DisposeAsync();
                await client.DisposeAsync();
            }

            await Task.WhenAll(handshakes);
            return (server, client);
        }
        catch
        {
            await server.DisposeAsync();
            await client.DisposeAsync();
            throw;
        }
    }
}
