using System.Security.Cryptography;
using System.Text;
using Xmpp.Server.Config;

namespace Xmpp.Tests.EndToEnd;

/// <summary>XEP-0114 external components, spoken raw.</summary>
public sealed class ComponentTests
{
    private const string Accept = "jabber:component:accept";
    private const string Secret = "the shared secret";

    private static Task<TestServer> StartAsync() =>
        TestServer.StartAsync(
            o => o with
            {
                Listeners = [.. o.Listeners, new ListenerOptions(ListenerKind.Component, "127.0.0.1", 0)],
                Components = [new ComponentOptions("echo.localhost", Secret)],
            },
            "alice@localhost:alice-pass");

    [System.Diagnostics.CodeAnalysis.SuppressMessage("Security", "CA5350", Justification = "XEP-0114 fixes SHA-1.")]
    private static string Digest(string id, string secret) => Convert.ToHexStringLower(SHA1.HashData(Encoding.UTF8.GetBytes(id + secret)));

    private static async Task<RawXmppClient> ConnectComponentAsync(TestServer server)
    {
        var component = await RawXmppClient.ConnectAsync(server.Server.PortOf(ListenerKind.Component));
        var id = await component.OpenComponentAsync("echo.localhost");
        Assert.That(component.ServerHeader!.DefaultNamespace, Is.EqualTo(Accept));
        Assert.That(component.ServerHeader.From, Is.EqualTo("echo.localhost"));
        await component.SendAsync($"<handshake>{Digest(id, Secret)}</handshake>");
        var ok = await component.ReadAsync();
        Assert.That(ok.Name, Is.EqualTo("handshake"), ok.ToString());
        Assert.That(ok.Namespace, Is.EqualTo(Accept));
        return component;
    }

    [Test]
    public async Task A_component_exchanges_stanzas_with_a_user()
    {
        await using var server = await StartAsync();
        await using var component = await ConnectComponentAsync(server);
        await using var alice = await RawXmppClient.ConnectAsync(server.C2sPort);
        await alice.LoginAsync("alice", "alice-pass");

        await alice.SendAsync("<message to='bot@echo.localhost' id='m1' type='chat'><body>hi</body></message>");
        var got = await component.ReadAsync();
        Assert.That(got.Namespace, Is.EqualTo(Accept), "stanzas to a component are written in jabber:component:accept");
        Assert.That(got.GetAttribute("from"), Is.EqualTo("alice@localhost/test"));
        Assert.That(got.GetAttribute("to"), Is.EqualTo("bot@echo.localhost"));

        await component.SendAsync("<message xmlns='jabber:component:accept' from='bot@echo.localhost' to='alice@localhost/test' type='chat'><body>hello yourself</body></message>");
        var reply = await alice.ReadUntilAsync(e => e.Name == "message");
        Assert.That(reply.GetAttribute("from"), Is.EqualTo("bot@echo.localhost"));
        Assert.That(reply.ChildText("body", "jabber:client"), Is.EqualTo("hello yourself"));

        // An iq round trip, and the component is listed in the host's disco#items.
        await alice.SendAsync("<iq to='echo.localhost' id='v1' type='get'><query xmlns='jabber:iq:version'/></iq>");
        var iq = await component.ReadAsync();
        await component.SendAsync($"<iq from='echo.localhost' to='alice@localhost/test' id='{iq.GetAttribute("id")}' type='result'><query xmlns='jabber:iq:version'><name>echo</name></query></iq>");
        var version = await alice.ReadUntilAsync(e => e.Name == "iq" && e.GetAttribute("id") == "v1");
        Assert.That(version.GetAttribute("type"), Is.EqualTo("result"));
        var items = await alice.IqAsync("<iq type='get' id='d1' to='localhost'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>");
        Assert.That(items.ToString(), Does.Contain("jid='echo.localhost'"));
    }

    [Test]
    public async Task A_component_may_only_speak_for_its_domain()
    {
        await using var server = await StartAsync();
        await using var component = await ConnectComponentAsync(server);
        await component.SendAsync("<message xmlns='jabber:component:accept' from='alice@localhost' to='alice@localhost'><body>forged</body></message>");
        Assert.That(await component.ReadStreamErrorAsync(), Is.EqualTo("invalid-from"));

        await using var noTo = await ConnectComponentAsync(server);
        await noTo.SendAsync("<message xmlns='jabber:component:accept' from='bot@echo.localhost'><body>where?</body></message>");
        Assert.That(await noTo.ReadStreamErrorAsync(), Is.EqualTo("improper-addressing"));
    }

    [Test]
    public async Task A_component_cannot_reach_other_servers_and_is_told_so()
    {
        await using var server = await StartAsync();
        await using var component = await ConnectComponentAsync(server);
        await component.SendAsync("<message xmlns='jabber:component:accept' from='bot@echo.localhost' to='someone@remote.example' id='far'><body>hello?</body></message>");
        var bounce = await component.ReadAsync();
        Assert.That(bounce.GetAttribute("type"), Is.EqualTo("error"));
        Assert.That(bounce.GetAttribute("id"), Is.EqualTo("far"));
        Assert.That(bounce.ToString(), Does.Contain("remote-server-not-found"));
    }

    [Test]
    public async Task Wrong_secrets_and_unknown_domains_are_refused()
    {
        await using var server = await StartAsync();
        await using (var wrong = await RawXmppClient.ConnectAsync(server.Server.PortOf(ListenerKind.Component)))
        {
            var id = await wrong.OpenComponentAsync("echo.localhost");
            await wrong.SendAsync($"<handshake>{Digest(id, "guess")}</handshake>");
            Assert.That(await wrong.ReadStreamErrorAsync(), Is.EqualTo("not-authorized"));
        }

        await using (var unknown = await RawXmppClient.ConnectAsync(server.Server.PortOf(ListenerKind.Component)))
        {
            await unknown.OpenComponentAsync("other.localhost");
            Assert.That(await unknown.ReadStreamErrorAsync(), Is.EqualTo("host-unknown"));
        }

        await using (var early = await RawXmppClient.ConnectAsync(server.Server.PortOf(ListenerKind.Component)))
        {
            await early.OpenComponentAsync("echo.localhost");
            await early.SendAsync("<message xmlns='jabber:component:accept' from='bot@echo.localhost' to='alice@localhost'/>");
            Assert.That(await early.ReadStreamErrorAsync(), Is.EqualTo("not-authorized"));
        }
    }

    [Test]
    public async Task A_disconnected_component_bounces_and_a_reconnecting_one_replaces_the_old_stream()
    {
        await using var server = await StartAsync();
        await using var alice = await RawXmppClient.ConnectAsync(server.C2sPort);
        await alice.LoginAsync("alice", "alice-pass");
        await alice.SendAsync("<message to='bot@echo.localhost' id='m0' type='chat'><body>anyone?</body></message>");
        var bounce = await alice.ReadUntilAsync(e => e.Name == "message");
        Assert.That(bounce.GetAttribute("type"), Is.EqualTo("error"));
        Assert.That(bounce.ToString(), Does.Contain("service-unavailable"));

        await using var first = await ConnectComponentAsync(server);
        await using var second = await ConnectComponentAsync(server);
        Assert.That(await first.ReadStreamErrorAsync(), Is.EqualTo("conflict"));
        await alice.SendAsync("<message to='bot@echo.localhost' id='m1' type='chat'><body>which one?</body></message>");
        var got = await second.ReadAsync();
        Assert.That(got.GetAttribute("id"), Is.EqualTo("m1"));
    }

    [Test]
    public void Components_need_a_listener_and_a_domain_of_their_own()
    {
        var options = ConfigLoader.Parse("<xmppserver><host name='localhost'/><listen type='component' port='5347'/><component domain='Echo.Localhost' secret='s'/></xmppserver>", "/x/server.config.xml");
        Assert.That(options.Components, Is.EqualTo(new[] { new ComponentOptions("echo.localhost", "s") }));
        Assert.That(options.Listeners.Single().Address, Is.EqualTo("localhost"));
        var noListener = Assert.Throws<ConfigException>(() => ConfigLoader.Parse("<xmppserver><host name='localhost'/><component domain='echo.localhost' secret='s'/></xmppserver>", "/x/server.config.xml"));
        Assert.That(noListener!.Message, Does.Contain("listen type=\"component\""));
        var clash = Assert.Throws<ConfigException>(() => ConfigLoader.Parse("<xmppserver><host name='localhost'/><listen type='component'/><component domain='localhost' secret='s'/></xmppserver>", "/x/server.config.xml"));
        Assert.That(clash!.Message, Does.Contain("is a <host>"));
    }
}
