using System.Net.Security;
using System.Security.Authentication;
using Xmpp.Core;
using Xmpp.Tests.EndToEnd;

namespace Xmpp.Tests.Hardening;

/// <summary>TLS versions and suites, PLAIN only under TLS, nothing secret in logs, owner-only files.</summary>
[TestFixture]
[CancelAfter(60_000)]
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class SecurityPostureTests
{
    [Test]
    public async Task Tls12_without_an_aead_suite_is_refused_and_the_negotiated_suites_are_aead()
    {
        await using var server = await TestServer.StartAsync(null, "alice@localhost:wonderland");
        var cbc = await RawXmppClient.ConnectAsync(server.C2sPort);
        await using (cbc)
        {
            await cbc.OpenAsync();
            var options = new SslClientAuthenticationOptions
            {
                TargetHost = "localhost",
                EnabledSslProtocols = SslProtocols.Tls12,
                CipherSuitesPolicy = new CipherSuitesPolicy(
                [
                    TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
                    TlsCipherSuite.TLS_RSA_WITH_AES_128_CBC_SHA, TlsCipherSuite.TLS_RSA_WITH_AES_256_GCM_SHA384,
                ]),
            };
            var refused = Assert.CatchAsync(async () => await cbc.StartTlsAsync(options));
            Assert.That(refused, Is.InstanceOf<AuthenticationException>().Or.InstanceOf<IOException>());
        }

        foreach (var protocol in new[] { SslProtocols.Tls12, SslProtocols.Tls13 })
        {
            var client = await RawXmppClient.ConnectAsync(server.C2sPort);
            await using (client)
            {
                await client.OpenAsync();
                await client.StartTlsAsync(new SslClientAuthenticationOptions { TargetHost = "localhost", EnabledSslProtocols = protocol });
                Assert.That(client.Tls!.SslProtocol, Is.EqualTo(protocol));
                var suite = client.Tls.NegotiatedCipherSuite.ToString();
                Assert.That(suite, Does.Contain("GCM").Or.Contain("CHACHA20"), suite);
                Assert.That(suite, Does.Not.StartWith("TLS_RSA_"), "forward secrecy");
            }
        }
    }

    [Test]
    public async Task Plain_is_never_offered_or_accepted_without_tls()
    {
        await using var server = await TestServer.StartAsync(o => o with { Tls = new Xmpp.Server.Config.TlsOptions { Required = false } }, "alice@localhost:wonderland");
        var client = await RawXmppClient.ConnectAsync(server.C2sPort);
        await using (client)
        {
            var features = await client.OpenAsync();
            var mechanisms = features.Child("mechanisms", Ns.Sasl)!.Elements().Select(m => m.Text).ToList();
            Assert.That(mechanisms, Does.Contain("SCRAM-SHA-256").And.Not.Contain("PLAIN"));
            var failure = await client.AuthenticateAsync("PLAIN", "alice", "wonderland");
            Assert.That(failure.Name, Is.EqualTo("failure"));
            Assert.That(failure.FirstElement()!.Name, Is.EqualTo("encryption-required"));
        }
    }

    [Test]
    public async Task Passwords_keys_and_bodies_stay_out_of_logs_above_debug()
    {
        const string Password = "correct-horse-battery";
        const string Body = "the eagle lands at midnight";
        await using var server = await TestServer.StartAsync(o => o with { Logging = new Xmpp.Server.Config.LoggingOptions { Level = "Trace" } }, $"alice@localhost:{Password}", "bob@localhost:builder");
        var alice = await RawXmppClient.ConnectAsync(server.C2sPort);
        var bob = await RawXmppClient.ConnectAsync(server.C2sPort);
        await using (alice)
        await using (bob)
        {
            await alice.LoginAsync("alice", Password, mechanism: "PLAIN");
            await bob.LoginAsync("bob", "builder");
            await alice.SendAsync($"<message to='bob@localhost/test' type='chat'><body>{Body}</body></message>");
            await bob.ReadUntilAsync(e => e.Name == "message");
            await alice.SendAsync($"<message to='nobody@localhost' type='chat'><body>{Body}</body></message>");
            await alice.ReadUntilAsync(e => e.Name == "message");

            // A failed attempt with a different password, over SCRAM.
            var other = await RawXmppClient.ConnectAsync(server.C2sPort);
            await using (other)
            {
                await other.OpenTlsAsync();
                await other.AuthenticateAsync("SCRAM-SHA-256", "alice", "wrong-" + Password);
            }
        }

        var plainB64 = Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes($"\0alice\0{Password}"));
        var visible = server.Logs.Where(l => l.StartsWith("Info|", StringComparison.Ordinal) || l.StartsWith("Warn|", StringComparison.Ordinal) ||
            l.StartsWith("Error|", StringComparison.Ordinal) || l.StartsWith("Fatal|", StringComparison.Ordinal)).ToList();
        Assert.That(visible, Is.Not.Empty);
        Assert.That(visible, Has.None.Contains(Password));
        Assert.That(visible, Has.None.Contains(plainB64));
        Assert.That(visible, Has.None.Contains("eagle"));
        Assert.That(visible, Has.None.Contains("p="), "no SCRAM proof");
    }

    [Test]
    public async Task Data_directory_keys_database_and_secret_are_owner_only()
    {
        await using var server = await TestServer.StartAsync(null, "alice@localhost:wonderland");
        var dir = server.DataDir;
        const UnixFileMode GroupOrOther = UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute |
            UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;
        Assert.That(File.GetUnixFileMode(dir) & GroupOrOther, Is.EqualTo((UnixFileMode)0), "data directory");
        foreach (var file in new[] { "xmpp.db", "server.secret", Path.Combine("certs", "localhost.key") })
        {
            Assert.That(File.GetUnixFileMode(Path.Combine(dir, file)) & GroupOrOther, Is.EqualTo((UnixFileMode)0), file);
        }
    }
}
