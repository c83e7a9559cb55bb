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

    internal static async Task<(TestServer A, TestServer B)> StartPairAsync(Func<string, ServerOptions, ServerOptions>? configure = null)
    {
        var portA = FreePort();
        var portB = FreePort();
        ServerOptions Configure(string domain, int port, string other, int otherPort, ServerOptions o)
        {
            o = o with
            {
                Hosts = [new HostOptions(domain)],
                Listeners = [.. o.Listeners, new ListenerOptions(ListenerKind.S2s, "127.0.0.1", port)],
                S2s = o.S2s with
                {
                    Routes = new Dictionary<string, S2sRoute> { [other] = new S2sRoute("127.0.0.1", otherPort, false) },
                    ConnectTimeout = TimeSpan.FromSeconds(3),
                },
            };
            return configure?.Invoke(domain, o) ?? o;
        }

        var a = await TestServer.StartAsync(o => Configure("a.test", portA, "b.test", portB, o), "alice@a.test:apw");
        var b = await TestServer.StartAsync(o => Configure("b.test", portB, "a.test", portA, o), "bob@b.test:bpw");
        return (a, b);
    }

    private static async Task<RawXmppClient> OnlineAsync(TestServer server, string user, string password, string domain)
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
    }
}
