using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using Xmpp.Server.Config;
using Xmpp.Server.Tls.Acme;

namespace Xmpp.Tests.EndToEnd.Acme;

/// <summary>
/// The server's ACME client against pebble, Let's Encrypt's test CA, with real HTTP-01 validation: pebble
/// resolves the names through <see cref="LoopbackDns"/> to 127.0.0.1 and fetches the key authorization from
/// the server's challenge listener. Each test waits on the server's log lines, never on the clock.
/// </summary>
[NonParallelizable]
public sealed class AcmeTests
{
    private const string Host = "example.test";

    [Test]
    [CancelAfter(120_000)]
    public async Task Certificate_from_pebble_is_served_to_new_connections()
    {
        await using var dns = LoopbackDns.Start();
        var httpPort = Ports.Free();
        await using var pebble = await Pebble.StartAsync(httpPort, dns.Port);
        await using var server = await StartServerAsync(pebble, httpPort);

        await WaitForAsync(server, pebble, "ACME: certificate for example.test installed");

        using var cert = await ServedCertificateAsync(server.DirectTlsPort, Host);
        Assert.Multiple(() =>
        {
            Assert.That(cert.Issuer, Does.Contain("Pebble Intermediate CA"), "not the self-signed certificate");
            Assert.That(AcmeCertificates.DnsNames(cert), Is.EquivalentTo(new[] { Host, "conference." + Host, "pubsub." + Host }));
        });

        // A service subdomain is served the host's certificate, which names it.
        using var muc = await ServedCertificateAsync(server.DirectTlsPort, "conference." + Host);
        Assert.That(muc.SerialNumber, Is.EqualTo(cert.SerialNumber));

        var acme = Path.Combine(server.DataDir, "acme");
        foreach (var file in new[] { "account.key", Host + ".key", Host + ".crt" })
        {
            Assert.That(File.Exists(Path.Combine(acme, file)), Is.True, file);
            if (!OperatingSystem.IsWindows())
            {
                Assert.That(File.GetUnixFileMode(Path.Combine(acme, file)), Is.EqualTo(UnixFileMode.UserRead | UnixFileMode.UserWrite), file);
            }
        }

        Assert.That(server.Logs.Where(l => l.Contains("PRIVATE KEY", StringComparison.Ordinal)), Is.Empty, "a private key in the log");
        Assert.That(dns.Asked, Does.Contain("conference." + Host), "pebble validated through our DNS");
    }

    [Test]
    [CancelAfter(120_000)]
    public async Task Certificate_is_renewed_and_swapped_in_without_a_restart()
    {
        await using var dns = LoopbackDns.Start();
        var httpPort = Ports.Free();

        // 10-day certificates with renew-before-days 30: every check (each second) renews.
        await using var pebble = await Pebble.StartAsync(httpPort, dns.Port, validity: TimeSpan.FromDays(10));
        await using var server = await StartServerAsync(pebble, httpPort, o => o with { RenewBeforeDays = 30, CheckInterval = TimeSpan.FromSeconds(1) });

        await WaitForAsync(server, pebble, "ACME: certificate for example.test installed");
        using var first = await ServedCertificateAsync(server.DirectTlsPort, Host);

        // An existing connection keeps the certificate it was made with.
        using var before = await ConnectAsync(server.DirectTlsPort, Host);

        await WaitForAsync(server, pebble, "ACME: certificate for example.test installed", count: 2);
        using var second = await ServedCertificateAsync(server.DirectTlsPort, Host);

        Assert.Multiple(() =>
        {
            Assert.That(first.Issuer, Does.Contain("Pebble Intermediate CA"));
            Assert.That(second.Issuer, Does.Contain("Pebble Intermediate CA"));
            Assert.That(second.SerialNumber, Is.Not.EqualTo(first.SerialNumber), "a new connection gets the renewed certificate");
            Assert.That(server.Logs, Has.Some.Contains("in less than 30 days"));
        });
        using var kept = new X509Certificate2(before.RemoteCertificate!);
        Assert.That(kept.SerialNumber, Is.EqualTo(first.SerialNumber));
    }

    [Test]
    [CancelAfter(120_000)]
    public async Task Failed_challenge_is_logged_with_the_problem_and_the_server_keeps_its_certificate()
    {
        await using var dns = LoopbackDns.Start();
        var httpPort = Ports.Free();

        // pebble validates on a port where nothing answers.
        await using var pebble = await Pebble.StartAsync(Ports.Free(), dns.Port);
        await using var server = await StartServerAsync(pebble, httpPort, o => o with { RetryDelay = TimeSpan.FromSeconds(30) });

        await WaitForAsync(server, pebble, "ACME: getting a certificate for example.test failed");

        var line = server.Logs.First(l => l.Contains("ACME: getting a certificate for example.test failed", StringComparison.Ordinal));
        await TestContext.Out.WriteLineAsync(line);
        Assert.Multiple(() =>
        {
            Assert.That(line, Does.StartWith("Warn|"));
            Assert.That(line, Does.Contain("urn:ietf:params:acme:error:"));
            Assert.That(line, Does.Match(@"identifier (conference\.|pubsub\.)?example\.test"));
            Assert.That(line, Does.Contain("validating"));
            Assert.That(line, Does.Contain("still serving the self-signed certificate"));
        });
        await server.WaitForLogAsync("ACME: next attempt in 00:00:30");

        using var cert = await ServedCertificateAsync(server.DirectTlsPort, Host);
        Assert.That(cert.Issuer, Is.EqualTo("CN=" + Host), "still the self-signed certificate");
    }

    [Test]
    [CancelAfter(120_000)]
    public async Task Bad_nonces_are_retried()
    {
        await using var dns = LoopbackDns.Start();
        var httpPort = Ports.Free();

        // pebble rejects half of all good nonces as badNonce (RFC 8555 §6.5).
        await using var pebble = await Pebble.StartAsync(httpPort, dns.Port, nonceReject: 50);
        await using var server = await StartServerAsync(pebble, httpPort, o => o with { RetryDelay = TimeSpan.FromSeconds(1) }, level: "Debug");

        await WaitForAsync(server, pebble, "ACME: certificate for example.test installed");

        Assert.That(server.Logs, Has.Some.Contains("badNonce while"));
        using var cert = await ServedCertificateAsync(server.DirectTlsPort, Host);
        Assert.That(cert.Issuer, Does.Contain("Pebble Intermediate CA"));
    }

    private static Task<TestServer> StartServerAsync(Pebble pebble, int httpPort, Func<AcmeOptions, AcmeOptions>? acme = null, string level = "Info")
    {
        var options = new AcmeOptions
        {
            Directory = pebble.DirectoryUrl,
            Contact = ["mailto:admin@example.test"],
            HttpAddress = "127.0.0.1",
            HttpPort = httpPort,
            CaFile = pebble.CaFile,
            RetryDelay = TimeSpan.FromSeconds(1),
        };
        return TestServer.StartAsync(o => o with
        {
            Hosts = [new HostOptions(Host)],
            Acme = acme?.Invoke(options) ?? options,
            Logging = o.Logging with { Level = level },
        });
    }

    /// <summary>Waits for the log line; on timeout, fails with the server's and pebble's output.</summary>
    private static async Task WaitForAsync(TestServer server, Pebble pebble, string text, int count = 1)
    {
        try
        {
            await server.WaitForLogAsync(text, count);
        }
        catch (TimeoutException)
        {
            Assert.Fail($"no '{text}' (x{count}) in the server's log:\n{string.Join('\n', server.Logs)}\n--- pebble:\n{pebble.Output}");
        }
    }

    private static async Task<SslStream> ConnectAsync(int port, string serverName)
    {
        var tcp = new TcpClient();
        await tcp.ConnectAsync("127.0.0.1", port);
        var ssl = new SslStream(tcp.GetStream(), leaveInnerStreamOpen: false);
        await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = serverName,

            // Any certificate: what it is, is the question.
            RemoteCertificateValidationCallback = (_, _, _, _) => true,
        });
        return ssl;
    }

    private static async Task<X509Certificate2> ServedCertificateAsync(int port, string serverName)
    {
        await using var ssl = await ConnectAsync(port, serverName);
        return new X509Certificate2(ssl.RemoteCertificate!);
    }
}
