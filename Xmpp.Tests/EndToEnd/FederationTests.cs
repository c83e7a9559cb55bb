using System.Net;
using System.Net.Sockets;
using Xmpp.Core;
using Xmpp.Server.Config;

namespace Xmpp.Tests.EndToEnd;

/// <summary>Two instances of our server federating on loopback (dialback with self-signed certificates, SASL EXTERNAL with a test CA).</summary>
[Parallelizable(ParallelScope.All)]
public sealed class FederationTests
{
    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    internal static async Task<(TestServer A, TestServer B)> StartPairAsync(Func<string, ServerOptions, ServerOptions>? configure = null, bool directTls = false)
    {
        var portA = FreePort();
        var portB = FreePort();
        var kind = directTls ? ListenerKind.S2sDirectTls : ListenerKind.S2s;
        ServerOptions Configure(string domain, int port, string other, int otherPort, ServerOptions o)
        {
            o = o with
            {
                Hosts = [new HostOptions(domain)],
                Listeners = [.. o.Listeners, new ListenerOptions(kind, "127.0.0.1", port)],
                S2s = o.S2s with
                {
                    Routes = new Dictionary<string, S2sRoute> { [other] = new S2sRoute("127.0.0.1", otherPort, directTls) },
                    ConnectTimeout = TimeSpan.FromSeconds(3),
                },
            };
            return configure?.Invoke(domain, o) ?? o;
        }

        var a = await TestServer.StartAsync(o => Configure("a.test", portA, "b.test", portB, o), "alice@a.test:apw");

        // Server a's own listeners got ports from the system, possibly portB: pick it again before b binds it.
        while (a.Server.Listeners.Any(l => l.LocalEndPoint.Port == portB))
        {
            await a.DisposeAsync();
            portB = FreePort();
            a = await TestServer.StartAsync(o => Configure("a.test", portA, "b.test", portB, o), "alice@a.test:apw");
        }

        var b = await TestServer.StartAsync(o => Configure("b.test", portB, "a.test", portA, o), "bob@b.test:bpw");
        return (a, b);
    }

    internal static async Task<RawXmppClient> OnlineAsync(TestServer server, string user, string password, string domain)
    {
        var client = await RawXmppClient.ConnectAsync(server.C2sPort);
        await client.OpenAsync(domain);
        await client.StartTlsAsync();
        await client.OpenAsync(domain);
        Assert.That((await client.AuthenticateAsync("SCRAM-SHA-256", user, password)).Name, Is.EqualTo("success"));
        await client.OpenAsync(domain);
        await client.SendAsync("<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>r</resource></bind></iq>");
        await client.ReadUntilAsync(e => e.GetAttribute("id") == "b");
        await client.IqAsync("<iq type='get' id='roster0'><query xmlns='jabber:iq:roster'/></iq>");
        await client.SendAsync("<presence/>");
        await client.DrainAsync(domain);
        return client;
    }

    [Test]
    public async Task Two_servers_federate_with_dialback_subscriptions_presence_and_messages()
    {
        var (a, b) = await StartPairAsync();
        await using var _a = a;
        await using var _b = b;
        await using var alice = await OnlineAsync(a, "alice", "apw", "a.test");
        await using var bob = await OnlineAsync(b, "bob", "bpw", "b.test");

        await alice.SendAsync("<presence type='subscribe' to='bob@b.test'/>");
        var request = await bob.ReadUntilAsync(e => e.Name == "presence" && e.GetAttribute("type") == "subscribe");
        Assert.That(request.GetAttribute("from"), Is.EqualTo("alice@a.test"));
        await bob.SendAsync("<presence type='subscribed' to='alice@a.test'/>");
        await bob.SendAsync("<presence type='subscribe' to='alice@a.test'/>");
        await alice.ReadUntilAsync(e => e.Name == "presence" && e.GetAttribute("type") == "subscribed");
        var bobOnline = await alice.ReadUntilAsync(e => e.Name == "presence" && e.GetAttribute("from") == "bob@b.test/r");
        Assert.That(bobOnline.GetAttribute("type"), Is.Null);
        await alice.ReadUntilAsync(e => e.Name == "presence" && e.GetAttribute("type") == "subscribe");
        await alice.SendAsync("<presence type='subscribed' to='bob@b.test'/>");
        await bob.ReadUntilAsync(e => e.Name == "presence" && e.GetAttribute("from") == "alice@a.test/r" && e.GetAttribute("type") is null);

        await alice.SendAsync("<message to='bob@b.test' type='chat' id='m1'><body>hello across</body></message>");
        var message = await bob.ReadUntilAsync(e => e.Name == "message");
        Assert.That((message.GetAttribute("from"), message.ChildText("body", Ns.Client)), Is.EqualTo(("alice@a.test/r", "hello across")));
        await bob.SendAsync("<message to='alice@a.test/r' type='chat' id='m2'><body>and back</body></message>");
        Assert.That((await alice.ReadUntilAsync(e => e.Name == "message")).ChildText("body", Ns.Client), Is.EqualTo("and back"));

        bob.Abort();
        await alice.ReadUntilAsync(e => e.Name == "presence" && e.GetAttribute("from") == "bob@b.test/r" && e.GetAttribute("type") == "unavailable");
        Assert.That(a.Logs.Any(l => l.Contains("authenticated as a.test by dialback", StringComparison.Ordinal)), Is.True);
        Assert.That(b.Logs.Any(l => l.Contains("s2s peer a.test authenticated by dialback", StringComparison.Ordinal)), Is.True);
    }

    [Test]
    public async Task Direct_tls_between_servers_and_errors_come_back_across_the_boundary()
    {
        var (a, b) = await StartPairAsync(directTls: true);
        await using var _a = a;
        await using var _b = b;
        await using var alice = await OnlineAsync(a, "alice", "apw", "a.test");
        await using var bob = await OnlineAsync(b, "bob", "bpw", "b.test");
        await alice.SendAsync("<message to='bob@b.test' type='chat' id='d1'><body>direct</body></message>");
        Assert.That((await bob.ReadUntilAsync(e => e.Name == "message")).ChildText("body", Ns.Client), Is.EqualTo("direct"));
        Assert.That(a.Logs.Any(l => l.Contains("(direct TLS)", StringComparison.Ordinal)), Is.True);

        // b.test answers for its users: no such account, no such resource, an iq it handles itself.
        await alice.SendAsync("<message to='nobody@b.test' type='chat' id='d2'><body>hello?</body></message>");
        var bounce = await alice.ReadUntilAsync(e => e.Name == "message" && e.GetAttribute("id") == "d2");
        Assert.That((bounce.GetAttribute("type"), bounce.GetAttribute("from"), bounce.Child("error")!.FirstElement()!.Name), Is.EqualTo(("error", "nobody@b.test", "service-unavailable")));
        var missing = await alice.IqAsync("<iq to='bob@b.test/gone' type='get' id='d3'><query xmlns='jabber:iq:version'/></iq>");
        Assert.That(missing.Child("error")!.FirstElement()!.Name, Is.EqualTo("service-unavailable"));
        var version = await alice.IqAsync("<iq to='b.test' type='get' id='d4'><query xmlns='jabber:iq:version'/></iq>");
        Assert.That(version.GetAttribute("type"), Is.EqualTo("result"));
        Assert.That(version.GetAttribute("from"), Is.EqualTo("b.test"));
    }

    /// <summary>A directory with a test CA (ca.pem) and a certificate and key (DOMAIN.crt, DOMAIN.key) it issued for each domain.</summary>
    internal static string WriteTestCa(params string[] domains)
    {
        var ca = new Server.TestCa();
        var dir = Path.Combine(Path.GetTempPath(), "xmpp-ca-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "ca.pem"), ca.CertificatePem);
        foreach (var d in domains)
        {
            var (cert, key) = ca.Issue(d, dnsNames: [d]);
            File.WriteAllText(Path.Combine(dir, d + ".crt"), cert);
            File.WriteAllText(Path.Combine(dir, d + ".key"), key);
        }

        return dir;
    }

    [Test]
    public async Task Two_servers_with_certificates_from_a_trusted_ca_use_sasl_external()
    {
        var dir = WriteTestCa("a.test", "b.test");
        try
        {
            var (a, b) = await StartPairAsync((domain, o) => o with
            {
                Hosts = [new HostOptions(domain, Path.Combine(dir, domain + ".crt"), Path.Combine(dir, domain + ".key"))],
                S2s = o.S2s with { CaFile = Path.Combine(dir, "ca.pem"), AllowDialback = false },
            });
            await using var _a = a;
            await using var _b = b;
            await using var alice = await OnlineAsync(a, "alice", "apw", "a.test");
            await using var bob = await OnlineAsync(b, "bob", "bpw", "b.test");
            await alice.SendAsync("<message to='bob@b.test' type='chat' id='m1'><body>over EXTERNAL</body></message>");
            Assert.That((await bob.ReadUntilAsync(e => e.Name == "message")).ChildText("body", Ns.Client), Is.EqualTo("over EXTERNAL"));
            await bob.SendAsync("<message to='alice@a.test/r' type='chat' id='m2'><body>back</body></message>");
            Assert.That((await alice.ReadUntilAsync(e => e.Name == "message")).ChildText("body", Ns.Client), Is.EqualTo("back"));
            Assert.That(a.Logs.Any(l => l.Contains("authenticated as a.test by SASL EXTERNAL", StringComparison.Ordinal)), Is.True);
            Assert.That(b.Logs.Any(l => l.Contains("s2s peer a.test authenticated by SASL EXTERNAL", StringComparison.Ordinal)), Is.True);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Test]
    public async Task With_dialback_disabled_a_self_signed_peer_is_refused_and_the_message_bounces()
    {
        var (a, b) = await StartPairAsync((_, o) => o with { S2s = o.S2s with { AllowDialback = false } });
        await using var _a = a;
        await using var _b = b;
        await using var alice = await OnlineAsync(a, "alice", "apw", "a.test");
        await alice.SendAsync("<message to='bob@b.test' id='x1'><body>hi</body></message>");
        var bounce = await alice.ReadUntilAsync(e => e.Name == "message" && e.GetAttribute("type") == "error");
        Assert.That(bounce.Child("error")!.FirstElement()!.Name, Is.EqualTo("remote-server-not-found"));
        Assert.That(a.Logs.Any(l => l.Contains("dialback is not allowed", StringComparison.Ordinal)), Is.True);
    }

    [TestCase("closed port", "remote-server-not-found")]
    [TestCase("silent peer", "remote-server-timeout")]
    public async Task Unreachable_domains_bounce_within_a_bounded_time(string kind, string condition)
    {
        using var silent = new TcpListener(IPAddress.Loopback, 0);
        silent.Start();
        var port = kind == "closed port" ? FreePort() : ((IPEndPoint)silent.LocalEndpoint).Port;
        await using var server = await TestServer.StartAsync(
            o => o with
            {
                S2s = o.S2s with
                {
                    ConnectTimeout = TimeSpan.FromSeconds(1),
                    Routes = new Dictionary<string, S2sRoute> { ["nowhere.test"] = new S2sRoute("127.0.0.1", port, false) },
                },
            },
            "alice@localhost:wonderland");
        await using var alice = await RawXmppClient.ConnectAsync(server.C2sPort);
        await alice.LoginAsync("alice", "wonderland");
        var watch = System.Diagnostics.Stopwatch.StartNew();
        await alice.SendAsync("<presence to='carl@nowhere.test'/>");
        await alice.SendAsync("<message to='carl@nowhere.test' id='u1'><body>anyone?</body></message>");
        await alice.SendAsync("<iq to='carl@nowhere.test/x' type='get' id='u2'><ping xmlns='urn:xmpp:ping'/></iq>");
        var first = await alice.ReadUntilAsync(e => e.GetAttribute("type") == "error");
        var second = await alice.ReadUntilAsync(e => e.GetAttribute("type") == "error");
        Assert.That(watch.Elapsed, Is.LessThan(TimeSpan.FromSeconds(6)), "connect timeout 1 s, negotiation at most 3 s");
        Assert.That(new[] { first.GetAttribute("id"), second.GetAttribute("id") }, Is.EquivalentTo(new[] { "u1", "u2" }), "presence is not bounced");
        Assert.That(first.Child("error")!.FirstElement()!.Name, Is.EqualTo(condition));
        Assert.That(second.Child("error")!.FirstElement()!.Name, Is.EqualTo(condition));
    }

    [Test]
    public async Task A_stream_authenticated_for_one_domain_cannot_send_from_another()
    {
        var (a, b) = await StartPairAsync();
        await using var _a = a;
        await using var _b = b;
        var s2sPortB = b.Server.Listeners.First(l => l.Kind == ListenerKind.S2s).LocalEndPoint.Port;

        // Pose as a.test's server: a.test's own dialback secret makes the key, so b.test's check with a.test succeeds.
        await using var peer = await RawXmppClient.ConnectAsync(s2sPortB);
        await peer.OpenServerStreamAsync("a.test", "b.test");
        await peer.StartTlsAsync();
        var features = await peer.OpenServerStreamAsync("a.test", "b.test");
        Assert.That(features.Child("dialback", "urn:xmpp:features:dialback"), Is.Not.Null);
        var key = a.Server.Context.S2s.Dialback.Key("b.test", "a.test", peer.ServerHeader!.Id!);
        await peer.SendAsync($"<db:result from='a.test' to='b.test'>{key}</db:result>");
        var result = await peer.ReadUntilAsync(e => e.Name == "result");
        Assert.That(result.GetAttribute("type"), Is.EqualTo("valid"));

        await peer.SendAsync("<message from='mallory@evil.test' to='bob@b.test' id='s1'><body>trust me</body></message>");
        Assert.That(await peer.ReadStreamErrorAsync(), Is.EqualTo("invalid-from"));
        await b.WaitForLogAsync("not authenticated for evil.test");
    }

    [Test]
    public async Task Stanzas_before_authentication_and_wrong_keys_are_refused()
    {
        var (a, b) = await StartPairAsync();
        await using var _a = a;
        await using var _b = b;
        var s2sPortB = b.Server.Listeners.First(l => l.Kind == ListenerKind.S2s).LocalEndPoint.Port;
        await using var peer = await RawXmppClient.ConnectAsync(s2sPortB);
        var plain = await peer.OpenServerStreamAsync("a.test", "b.test");
        Assert.That(plain.Child("starttls", Ns.Tls)?.Child("required", Ns.Tls), Is.Not.Null, "TLS required on s2s");
        await peer.StartTlsAsync();
        await peer.OpenServerStreamAsync("a.test", "b.test");
        await peer.SendAsync("<db:result from='a.test' to='b.test'>0123456789abcdef</db:result>");
        Assert.That((await peer.ReadUntilAsync(e => e.Name == "result")).GetAttribute("type"), Is.EqualTo("invalid"));
        await peer.SendAsync("<message from='alice@a.test' to='bob@b.test'><body>x</body></message>");
        Assert.That(await peer.ReadStreamErrorAsync(), Is.EqualTo("not-authorized"));
    }

    [Test]
    public async Task Idle_outgoing_streams_close_and_reopen_on_demand()
    {
        // Only a.test's streams go idle quickly, so that its outgoing stream is the one that closes
        // (b.test's incoming side would otherwise race it, closing on its own read timeout).
        var (a, b) = await StartPairAsync((domain, o) => o with { S2s = o.S2s with { IdleTimeout = TimeSpan.FromSeconds(domain == "a.test" ? 1 : 60) } });
        await using var _a = a;
        await using var _b = b;
        await using var alice = await OnlineAsync(a, "alice", "apw", "a.test");
        await using var bob = await OnlineAsync(b, "bob", "bpw", "b.test");
        await alice.SendAsync("<message to='bob@b.test' id='i1'><body>one</body></message>");
        await bob.ReadUntilAsync(e => e.Name == "message");
        for (var i = 0; i < 50 && !a.Logs.Any(l => l.Contains("Closing the idle s2s stream to b.test", StringComparison.Ordinal)); i++)
        {
            await Task.Delay(100);
            await bob.SendAsync(" ");
            await alice.SendAsync(" ");
        }

        Assert.That(a.Logs.Any(l => l.Contains("Closing the idle s2s stream to b.test", StringComparison.Ordinal)), Is.True);
        await alice.SendAsync("<message to='bob@b.test' id='i2'><body>two</body></message>");
        Assert.That((await bob.ReadUntilAsync(e => e.Name == "message")).ChildText("body", Ns.Client), Is.EqualTo("two"));
    }
}
