using System.Net.Security;
using System.Security.Cryptography;
using Xmpp.Server.Cli;
using Xmpp.Server.Config;

namespace Xmpp.Tests.EndToEnd;

/// <summary>Reloading the configuration without a restart (SIGHUP, xmppserver reload).</summary>
public sealed class ReloadTests
{
    private static async Task<bool> OffersTimeAsync(RawXmppClient c)
    {
        var info = await c.IqAsync("<iq type='get' id='i' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
        return info.ToString().Contains("urn:xmpp:time", StringComparison.Ordinal);
    }

    [Test]
    public async Task Modules_and_limits_change_and_a_bad_configuration_is_refused()
    {
        await using var server = await TestServer.StartAsync(null, "alice@localhost:alice-pass", "bob@localhost:bob-pass");
        await using var alice = await RawXmppClient.ConnectAsync(server.C2sPort);
        await alice.LoginAsync("alice", "alice-pass");
        await using var bob = await RawXmppClient.ConnectAsync(server.C2sPort);
        await bob.LoginAsync("bob", "bob-pass");
        Assert.That(await OffersTimeAsync(alice), Is.True);

        var modules = new Dictionary<string, IReadOnlyDictionary<string, string>>(ServerOptions.DefaultModules);
        modules.Remove("time");
        var next = server.Server.Options with { Modules = modules, Limits = server.Server.Options.Limits with { StanzaSize = 10_000 } };
        var result = await server.Server.ReloadAsync(next, CancellationToken.None);
        Assert.That(result.Applied, Is.True, string.Join("; ", result.Messages));

        // Sessions bound before the reload go on, and see the new modules.
        Assert.That(await OffersTimeAsync(alice), Is.False);
        var time = await alice.IqAsync("<iq type='get' id='t' to='localhost'><time xmlns='urn:xmpp:time'/></iq>");
        Assert.That(time.ToString(), Does.Contain("service-unavailable"));
        await alice.SendAsync("<message to='bob@localhost/test' type='chat' id='m1'><body>still here</body></message>");
        var got = await bob.ReadUntilAsync(e => e.Name == "message");
        Assert.That(got.ChildText("body", "jabber:client"), Is.EqualTo("still here"));

        // New connections get the new stanza size limit.
        await using (var big = await RawXmppClient.ConnectAsync(server.C2sPort))
        {
            await big.LoginAsync("bob", "bob-pass", resource: "big");
            await big.SendAsync($"<message to='alice@localhost' type='chat'><body>{new string('x', 20_000)}</body></message>");
            Assert.That(await big.ReadStreamErrorAsync(), Is.EqualTo("policy-violation"));
        }

        var bad = new Dictionary<string, IReadOnlyDictionary<string, string>>(ServerOptions.DefaultModules) { ["no-such-module"] = new Dictionary<string, string>() };
        var refused = await server.Server.ReloadAsync(server.Server.Options with { Modules = bad }, CancellationToken.None);
        Assert.That(refused.Applied, Is.False);
        Assert.That(refused.Messages.Single(), Does.Contain("unknown module 'no-such-module'"));
        Assert.That(await OffersTimeAsync(alice), Is.False, "the running configuration stays");

        var listeners = await server.Server.ReloadAsync(server.Server.Options with { Listeners = [new ListenerOptions(ListenerKind.C2s, "127.0.0.1", 15999)] }, CancellationToken.None);
        Assert.That(listeners.Applied, Is.True);
        Assert.That(listeners.Messages, Has.Some.Contains("listeners changed"));
        Assert.That(server.Server.Options.Listeners.Count, Is.EqualTo(2), "listeners keep their running values");
    }

    [Test]
    public async Task New_connections_get_the_new_certificate()
    {
        await using var server = await TestServer.StartAsync(null);
        var before = await FingerprintAsync(server.DirectTlsPort);

        // Without a configured certificate one is generated: remove it, and the reload generates another.
        foreach (var f in Directory.GetFiles(Path.Combine(server.DataDir, "certs")))
        {
            File.Delete(f);
        }

        var result = await server.Server.ReloadAsync(server.Server.Options, CancellationToken.None);
        Assert.That(result.Applied, Is.True);
        var after = await FingerprintAsync(server.DirectTlsPort);
        Assert.That(after, Is.Not.EqualTo(before));
    }

    [Test]
    public async Task The_reload_command_asks_the_running_server()
    {
        await using var server = await TestServer.StartAsync(null);
        var config = Path.Combine(server.DataDir, "cli.config.xml");
        await File.WriteAllTextAsync(config, $"<xmppserver><host name='localhost'/><data-dir path='{server.DataDir}'/></xmppserver>");
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var code = await CommandLine.RunAsync(["reload", "--config", config], TextReader.Null, stdout, stderr);
        Assert.That(code, Is.EqualTo(CommandLine.Ok), stderr.ToString());
        Assert.That(stdout.ToString(), Does.StartWith("reloaded"));

        var elsewhere = Path.Combine(server.DataDir, "other.config.xml");
        await File.WriteAllTextAsync(elsewhere, $"<xmppserver><host name='localhost'/><data-dir path='{Path.Combine(server.DataDir, "none")}'/></xmppserver>");
        var missing = new StringWriter();
        Assert.That(await CommandLine.RunAsync(["reload", "--config", elsewhere], TextReader.Null, new StringWriter(), missing), Is.EqualTo(CommandLine.Failed));
        Assert.That(missing.ToString(), Does.Contain("no running server"));
    }

    private static async Task<string> FingerprintAsync(int port)
    {
        using var tcp = new System.Net.Sockets.TcpClient();
        await tcp.ConnectAsync("127.0.0.1", port);
        await using var ssl = new SslStream(tcp.GetStream(), false);
        await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = "localhost", RemoteCertificateValidationCallback = (_, _, _, _) => true });
        return Convert.ToHexString(SHA256.HashData(ssl.RemoteCertificate!.GetRawCertData()));
    }
}
