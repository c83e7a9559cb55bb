using System.Text;
using Xmpp.Core.Xml;
using Xmpp.Server.Config;

namespace Xmpp.Tests.EndToEnd;

/// <summary>BOSH (XEP-0124/0206) on the HTTPS listener, into the same client state machine as TCP.</summary>
public sealed class BoshTests
{
    private const string HttpBind = "http://jabber.org/protocol/httpbind";
    private const string Sasl = "urn:ietf:params:xml:ns:xmpp-sasl";

    /// <summary>A minimal BOSH client: one request at a time unless asked otherwise, rids counted up.</summary>
    private sealed class BoshClient(HttpClient http, string url) : IDisposable
    {
        public string? Sid { get; private set; }

        public long Rid { get; set; } = 1_000_000;

        public Task<Element> SendAsync(string inner = "", string attributes = "") => PostAsync(++Rid, inner, attributes);

        public async Task<Element> PostAsync(long rid, string inner, string attributes = "")
        {
            var sid = Sid is null ? string.Empty : $" sid='{Sid}'";
            var body = $"<body xmlns='{HttpBind}' xmlns:xmpp='urn:xmpp:xbosh' rid='{rid}'{sid} {attributes}>{inner}</body>";
            using var response = await http.PostAsync(url, new StringContent(body, Encoding.UTF8, "text/xml")).WaitAsync(TimeSpan.FromSeconds(30));
            Assert.That((int)response.StatusCode, Is.EqualTo(200), await response.Content.ReadAsStringAsync());
            return ElementParser.Parse(await response.Content.ReadAsStringAsync());
        }

        public async Task<Element> StartAsync()
        {
            var created = await PostAsync(Rid, string.Empty, "to='localhost' wait='5' hold='1' ver='1.6' xml:lang='en' xmpp:version='1.0'");
            Sid = created.GetAttribute("sid");
            return created;
        }

        public void Dispose() => http.Dispose();
    }

    private static async Task<(TestServer Server, BoshClient Client)> StartAsync()
    {
        var server = await TestServer.StartAsync(
            o => o with { Listeners = [.. o.Listeners, new ListenerOptions(ListenerKind.Https, "127.0.0.1", 0)] },
            "alice@localhost:alice-pass",
            "bob@localhost:bob-pass");
        await server.Server.HttpReady;
        var http = new HttpClient(new HttpClientHandler { ServerCertificateCustomValidationCallback = (_, _, _, _) => true });
        return (server, new BoshClient(http, $"https://127.0.0.1:{server.Server.PortOf(ListenerKind.Https)}/http-bind"));
    }

    private static string Plain(string user, string password) => Convert.ToBase64String(Encoding.UTF8.GetBytes($"\0{user}\0{password}"));

    [Test]
    public async Task A_bosh_session_logs_in_chats_with_a_tcp_client_long_polls_and_terminates()
    {
        var (server, bosh) = await StartAsync();
        await using var _ = server;
        using var __ = bosh;
        var created = await bosh.StartAsync();
        Assert.That(created.GetAttribute("sid"), Is.Not.Null, created.ToString());
        Assert.That(created.GetAttribute("requests"), Is.EqualTo("2"));
        Assert.That(created.GetAttribute("restartlogic", "urn:xmpp:xbosh"), Is.EqualTo("true"));
        var features = created.Child("features", "http://etherx.jabber.org/streams");
        Assert.That(features, Is.Not.Null, created.ToString());
        Assert.That(features!.Child("starttls", "urn:ietf:params:xml:ns:xmpp-tls"), Is.Null, "BOSH runs over HTTPS: no STARTTLS");
        Assert.That(features.ToString(), Does.Contain("PLAIN").And.Not.Contain("-PLUS"));

        var success = await bosh.SendAsync($"<auth xmlns='{Sasl}' mechanism='PLAIN'>{Plain("alice", "alice-pass")}</auth>");
        Assert.That(success.Child("success", Sasl), Is.Not.Null, success.ToString());
        var restarted = await bosh.SendAsync(attributes: "xmpp:restart='true' to='localhost' xml:lang='en'");
        Assert.That(restarted.ToString(), Does.Contain("urn:ietf:params:xml:ns:xmpp-bind"));
        var bound = await bosh.SendAsync("<iq xmlns='jabber:client' type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>web</resource></bind></iq>");
        Assert.That(bound.ToString(), Does.Contain("alice@localhost/web"));
        await bosh.SendAsync("<presence xmlns='jabber:client'/>");

        await using var bob = await RawXmppClient.ConnectAsync(server.C2sPort);
        await bob.LoginAsync("bob", "bob-pass");
        await bob.SendAsync("<presence/>");
        await bob.DrainAsync();

        // A held request is answered as soon as something arrives for the session.
        var poll = bosh.SendAsync();

        // A round trip of bob's through the server is the signal to look: the poll is still held by then.
        await bob.SendAsync("<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>");
        await bob.ReadUntilAsync(e => e.GetAttribute("id") == "p1");
        Assert.That(poll.IsCompleted, Is.False, "the request is held until there is something to say");
        await bob.SendAsync("<message to='alice@localhost/web' type='chat' id='m1'><body>over BOSH</body></message>");
        var delivered = await poll;
        Assert.That(delivered.ToString(), Does.Contain("over BOSH"));
        Assert.That(delivered.Elements().First().Namespace, Is.EqualTo("jabber:client"));

        // The answer to a request whose response was lost is sent again (§14.3).
        var again = await bosh.PostAsync(bosh.Rid, string.Empty);
        Assert.That(again.ToString(), Is.EqualTo(delivered.ToString()));

        await bosh.SendAsync("<message xmlns='jabber:client' to='bob@localhost' type='chat' id='m2'><body>and back</body></message>");
        var reply = await bob.ReadUntilAsync(e => e.Name == "message");
        Assert.That(reply.ChildText("body", "jabber:client"), Is.EqualTo("and back"));
        Assert.That(reply.GetAttribute("from"), Is.EqualTo("alice@localhost/web"));

        // Terminate: the session ends like a closed stream.
        var bye = await bosh.SendAsync("<presence xmlns='jabber:client' type='unavailable'/>", "type='terminate'");
        Assert.That(bye.GetAttribute("type"), Is.EqualTo("terminate"));
        var gone = await bosh.SendAsync();
        Assert.That(gone.GetAttribute("type") + "/" + gone.GetAttribute("condition"), Is.EqualTo("terminate/item-not-found").Or.EqualTo("terminate/"));
    }

    [Test]
    public async Task Unknown_hosts_sessions_and_rids_outside_the_window_are_refused()
    {
        var (server, bosh) = await StartAsync();
        await using var _ = server;
        using var __ = bosh;
        var unknown = await bosh.PostAsync(1, string.Empty, "to='nowhere.example' wait='5' hold='1' ver='1.6'");
        Assert.That(unknown.GetAttribute("condition"), Is.EqualTo("host-unknown"));

        await bosh.StartAsync();
        using var stranger = new BoshClient(new HttpClient(new HttpClientHandler { ServerCertificateCustomValidationCallback = (_, _, _, _) => true }), $"https://127.0.0.1:{server.Server.PortOf(ListenerKind.Https)}/http-bind");
        var wrongSid = await stranger.PostAsync(5, string.Empty, "sid='0000'");
        Assert.That(wrongSid.GetAttribute("condition"), Is.EqualTo("item-not-found"));
        var beyond = await bosh.PostAsync(bosh.Rid + 10, string.Empty);
        Assert.That(beyond.GetAttribute("type") + "/" + beyond.GetAttribute("condition"), Is.EqualTo("terminate/item-not-found"));
    }
}
