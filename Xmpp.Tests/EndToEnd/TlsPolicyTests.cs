using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Xmpp.Server.Config;
using Xmpp.Server.Streams;
using Xmpp.Server.Tls;

namespace Xmpp.Tests.EndToEnd;

/// <summary>
/// The TLS policy (TlsPolicy: no CBC, no RSA key exchange) on every port that speaks TLS: c2s STARTTLS, c2s
/// direct TLS and HTTPS, while their connections share the runtime's SSL_CTX (TlsContexts). The host has an
/// RSA certificate, with which a server would otherwise negotiate RSA key exchange and ECDHE_RSA with CBC
/// (TlsContextsTests shows that it does with the runtime's defaults).
/// </summary>
[TestFixture]
[CancelAfter(120_000)]
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
[System.Diagnostics.CodeAnalysis.SuppressMessage("Security", "CA5359", Justification = "Test clients of a test server with a throwaway self-signed certificate.")]
public sealed class TlsPolicyTests
{
    internal static readonly TlsCipherSuite[] CbcOnlySuites =
    [
        TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256,
        TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384, TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256,
    ];

    internal static readonly TlsCipherSuite[] RsaKeyExchangeOnlySuites =
    [
        TlsCipherSuite.TLS_RSA_WITH_AES_128_GCM_SHA256, TlsCipherSuite.TLS_RSA_WITH_AES_256_GCM_SHA384, TlsCipherSuite.TLS_RSA_WITH_AES_128_CBC_SHA,
    ];

    internal static readonly CipherSuitesPolicy CbcOnly = new(CbcOnlySuites);

    internal static readonly CipherSuitesPolicy RsaKeyExchangeOnly = new(RsaKeyExchangeOnlySuites);

    private TestServer _server = null!;
    private string _dir = null!;

    public enum Port
    {
        StartTls,
        DirectTls,
        Https,
    }

    [OneTimeSetUp]
    public async Task StartAsync()
    {
        Assume.That(OperatingSystem.IsLinux() || OperatingSystem.IsMacOS(), "the policy is the system's on Windows");
        _dir = Directory.CreateTempSubdirectory("xmpp-tls-").FullName;
        var (certificate, key) = WriteRsaCertificate(_dir, "localhost", "a");
        _server = await TestServer.StartAsync(o => o with
        {
            Hosts = [new HostOptions("localhost", certificate, key)],
            Listeners = [.. o.Listeners, new ListenerOptions(ListenerKind.Https, "127.0.0.1", 0)],
        });
        await _server.Server.HttpReady;
    }

    [OneTimeTearDown]
    public async Task StopAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }

        if (_dir is not null)
        {
            Directory.Delete(_dir, recursive: true);
        }
    }

    /// <summary>A self-signed RSA-2048 certificate for <paramref name="host"/>, written as PEM files; returns their paths.</summary>
    internal static (string Certificate, string Key) WriteRsaCertificate(string dir, string host, string name)
    {
        using var rsa = RSA.Create(2048);
        var request = new CertificateRequest($"CN={host}", rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName(host);
        request.CertificateExtensions.Add(names.Build());
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
        var certificateFile = Path.Combine(dir, name + ".crt");
        var keyFile = Path.Combine(dir, name + ".key");
        File.WriteAllText(certificateFile, certificate.ExportCertificatePem());
        File.WriteAllText(keyFile, rsa.ExportPkcs8PrivateKeyPem());
        return (certificateFile, keyFile);
    }

    [TestCase(Port.StartTls)]
    [TestCase(Port.DirectTls)]
    [TestCase(Port.Https)]
    public Task Tls12_with_cbc_suites_only_is_refused(Port port) => AssertRefusedAsync(port, CbcOnly);

    [TestCase(Port.StartTls)]
    [TestCase(Port.DirectTls)]
    [TestCase(Port.Https)]
    public Task Tls12_with_rsa_key_exchange_only_is_refused(Port port) => AssertRefusedAsync(port, RsaKeyExchangeOnly);

    [TestCase(Port.StartTls, SslProtocols.Tls13, null)]
    [TestCase(Port.StartTls, SslProtocols.Tls12, TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)]
    [TestCase(Port.StartTls, SslProtocols.Tls12, TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384)]
    [TestCase(Port.StartTls, SslProtocols.Tls12, TlsCipherSuite.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256)]
    [TestCase(Port.DirectTls, SslProtocols.Tls13, null)]
    [TestCase(Port.DirectTls, SslProtocols.Tls12, TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)]
    [TestCase(Port.DirectTls, SslProtocols.Tls12, TlsCipherSuite.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256)]
    [TestCase(Port.Https, SslProtocols.Tls13, null)]
    [TestCase(Port.Https, SslProtocols.Tls12, TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)]
    [TestCase(Port.Https, SslProtocols.Tls12, TlsCipherSuite.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256)]
    public async Task Tls13_and_tls12_with_ecdhe_and_aead_work(Port port, SslProtocols protocol, TlsCipherSuite? suite)
    {
        var options = new SslClientAuthenticationOptions
        {
            TargetHost = "localhost",
            EnabledSslProtocols = protocol,
            CipherSuitesPolicy = suite is { } only ? new CipherSuitesPolicy([only]) : null,
        };
        var (owner, tls) = await HandshakeAsync(port, options);
        await using (owner)
        {
            Assert.That(tls.SslProtocol, Is.EqualTo(protocol));
            Assert.That(TlsPolicy.Allows(tls.NegotiatedCipherSuite), tls.NegotiatedCipherSuite.ToString());
            if (suite is not null)
            {
                Assert.That(tls.NegotiatedCipherSuite, Is.EqualTo(suite));
            }

            if (owner is RawXmppClient xmpp)
            {
                var features = await xmpp.OpenAsync();
                Assert.That(features.Name, Is.EqualTo("features"), "the stream goes on over TLS");
            }
            else if (port == Port.Https)
            {
                await tls.WriteAsync("GET /.well-known/host-meta HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"u8.ToArray());
                var response = await new StreamReader(tls).ReadToEndAsync();
                Assert.That(response, Does.StartWith("HTTP/1.1 200"));
            }
        }

        Assert.That(_server.Server.Context.Tls.Sharing, Is.True, "no fallback to a context per connection");
    }

    [Test]
    public async Task Connections_on_one_port_share_one_ssl_ctx_with_the_policys_suites_only()
    {
        Assume.That(OperatingSystem.IsLinux(), "the shared SSL_CTX is OpenSSL's, on Linux");
        var clients = new List<RawXmppClient>();
        try
        {
            foreach (var protocol in new[] { SslProtocols.Tls12, SslProtocols.Tls13, SslProtocols.Tls12, SslProtocols.Tls13 })
            {
                var options = new SslClientAuthenticationOptions { TargetHost = "localhost", EnabledSslProtocols = protocol };
                var starttls = await RawXmppClient.ConnectAsync(_server.C2sPort);
                clients.Add(starttls);
                await starttls.OpenTlsAsync(options);
                var direct = await RawXmppClient.ConnectAsync(_server.DirectTlsPort, directTls: true, options);
                clients.Add(direct);
                await direct.OpenAsync();
            }

            // Their streams are open again over TLS: the server's ends have finished their handshakes.
            var ours = _server.Server.Context.Connections.All.OfType<StreamConnection>()
                .Where(c => c.Transport.Tls is not null)
                .GroupBy(c => c.Transport.Description)
                .ToDictionary(g => g.Key, g => g.Select(c => c.Transport.Tls!).ToList());
            Assert.That(ours.Values.Select(l => l.Count), Is.EqualTo(new[] { 4, 4 }), string.Join(", ", ours.Keys));
            var contexts = new List<IntPtr>();
            foreach (var (description, streams) in ours)
            {
                foreach (var tls in streams)
                {
                    Assert.That(OpenSsl.CipherSuitesOf(tls), Is.EqualTo(TlsPolicy.Suites), description);
                }

                var context = OpenSsl.ContextOf(streams[0]);
                Assert.That(context, Is.Not.EqualTo(IntPtr.Zero));
                Assert.That(streams.Select(OpenSsl.ContextOf), Has.All.EqualTo(context), $"one SSL_CTX for the connections{description}");
                contexts.Add(context);
            }

            // STARTTLS and direct TLS (with ALPN) are two of the runtime's contexts.
            Assert.That(contexts.Distinct().Count(), Is.EqualTo(2));
        }
        finally
        {
            foreach (var client in clients)
            {
                await client.DisposeAsync();
            }
        }
    }

    private async Task AssertRefusedAsync(Port port, CipherSuitesPolicy policy)
    {
        var options = new SslClientAuthenticationOptions { TargetHost = "localhost", EnabledSslProtocols = SslProtocols.Tls12, CipherSuitesPolicy = policy };
        var refused = Assert.CatchAsync(async () =>
        {
            var (owner, _) = await HandshakeAsync(port, options);
            await owner.DisposeAsync();
        });
        Assert.That(refused, Is.InstanceOf<AuthenticationException>().Or.InstanceOf<IOException>());

        // And the server still serves.
        var (ok, tls) = await HandshakeAsync(port, new SslClientAuthenticationOptions { TargetHost = "localhost" });
        await using (ok)
        {
            Assert.That(TlsPolicy.Allows(tls.NegotiatedCipherSuite));
        }
    }

    /// <summary>A TLS handshake with the server on <paramref name="port"/>; the owner closes the connection.</summary>
    private async Task<(IAsyncDisposable Owner, SslStream Tls)> HandshakeAsync(Port port, SslClientAuthenticationOptions options)
    {
        if (port == Port.StartTls)
        {
            var client = await RawXmppClient.ConnectAsync(_server.C2sPort);
            try
            {
                await client.OpenAsync();
                await client.StartTlsAsync(options);
                return (client, client.Tls!);
            }
            catch
            {
                await client.DisposeAsync();
                throw;
            }
        }

        var tcp = new TcpClient();
        SslStream? ssl = null;
        try
        {
            await tcp.ConnectAsync("127.0.0.1", port == Port.Https ? _server.Server.PortOf(ListenerKind.Https) : _server.DirectTlsPort);
            ssl = new SslStream(tcp.GetStream(), false, (_, _, _, _) => true);
            options.ApplicationProtocols = port == Port.Https ? [SslApplicationProtocol.Http11] : null;
            await ssl.AuthenticateAsClientAsync(options).WaitAsync(TimeSpan.FromSeconds(20));
            return (new Owned(ssl, tcp), ssl);
        }
        catch
        {
            if (ssl is not null)
            {
                await ssl.DisposeAsync();
            }

            tcp.Dispose();
            throw;
        }
    }

    private sealed class Owned(SslStream ssl, TcpClient tcp) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await ssl.DisposeAsync();
            tcp.Dispose();
        }
    }
}
