using System.Net.Security;
using System.Security.Authentication;
using System.Text;
using Xmpp.Core;
using Xmpp.Server.Config;

namespace Xmpp.Tests.EndToEnd;

[Parallelizable(ParallelScope.All)]
public sealed class C2sTests
{
    private const string Alice = "alice@localhost:wonderland";
    private const string Bob = "bob@localhost:builder";

    [TestCase("SCRAM-SHA-1")]
    [TestCase("SCRAM-SHA-256")]
    [TestCase("SCRAM-SHA-512")]
    [TestCase("PLAIN")]
    public async Task Login_over_starttls_with_each_mechanism(string mechanism)
    {
        await using var server = await TestServer.StartAsync(null, Alice);
        await using var client = await RawXmppClient.ConnectAsync(server.C2sPort);
        var features = await client.OpenAsync();
        Assert.That(features.Child("starttls", Ns.Tls)?.Child("required", Ns.Tls), Is.Not.Null, "STARTTLS required");
        Assert.That(features.Child("mechanisms", Ns.Sasl), Is.Null, "no SASL before TLS when TLS is required");
        Assert.That(await client.LoginAsync("alice", "wonderland", mechanism), Is.EqualTo("alice@localhost/test"));
        Assert.That(server.ErrorLogs, Is.Empty);
    }

    [TestCase("tls-exporter")]
    [TestCase("tls-unique")]
    [TestCase("tls-server-end-point")]
    public async Task Scram_sha256_plus_with_channel_binding(string binding)
    {
        await using var server = await TestServer.StartAsync(null, Alice);
        await using var client = await RawXmppClient.ConnectAsync(server.C2sPort);
        await client.OpenAsync();
        await client.StartTlsAsync();
        var features = await client.OpenAsync();
        var mechanisms = features.Child("mechanisms", Ns.Sasl)!.Elements().Select(e => e.Text).ToList();
        Assert.That(mechanisms, Does.Contain("SCRAM-SHA-256-PLUS"));
        var cbTypes = features.Child("sasl-channel-binding", Ns.SaslChannelBinding)!.Elements().Select(e => e.GetAttribute("type")).ToList();
        Assert.That(cbTypes, Does.Contain(binding), "XEP-0440 advertises the type");
        var result = await client.AuthenticateAsync("SCRAM-SHA-256-PLUS", "alice", "wonderland", binding);
        Assert.That(result.Name, Is.EqualTo("success"), result.ToString());
    }

    /// <summary>
    /// tls-unique as OpenSSL and Python compute it (what slixmpp 1.8 asks for first), on TLS 1.3 and on TLS 1.2
    /// (with the extended master secret, which OpenSSL negotiates by default), over STARTTLS and direct TLS.
    /// </summary>
    [TestCase(SslProtocols.Tls13, false)]
    [TestCase(SslProtocols.Tls12, false)]
    [TestCase(SslProtocols.Tls13, true)]
    public async Task Scram_plus_with_tls_unique(SslProtocols protocol, bool directTls)
    {
        await using var server = await TestServer.StartAsync(null, Alice);
        var options = new SslClientAuthenticationOptions { TargetHost = "localhost", EnabledSslProtocols = protocol };
        await using var client = await RawXmppClient.ConnectAsync(directTls ? server.DirectTlsPort : server.C2sPort, directTls, options);
        var features = directTls ? await client.OpenAsync() : await client.OpenTlsAsync(options);
        Assert.That(client.Tls!.SslProtocol, Is.EqualTo(protocol));
        var cbTypes = features.Child("sasl-channel-binding", Ns.SaslChannelBinding)!.Elements().Select(e => e.GetAttribute("type")).ToList();
        Assert.That(cbTypes, Is.EqualTo(protocol == SslProtocols.Tls13
            ? new[] { "tls-exporter", "tls-unique", "tls-server-end-point" }
            : ["tls-unique", "tls-server-end-point"]), "XEP-0440 lists what is offered");
        var result = await client.AuthenticateAsync("SCRAM-SHA-512-PLUS", "alice", "wonderland", "tls-unique");
        Assert.That(result.Name, Is.EqualTo("success"), result.ToString());
        Assert.That(server.Logs, Has.Some.Contains("Authenticated alice@localhost with SCRAM-SHA-512-PLUS (tls-unique)"));
        Assert.That(server.Logs, Has.None.Contains("Authentication failed"));
    }

    /// <summary>RFC 5802 §6: the "y" flag after -PLUS was offered means someone removed the -PLUS mechanisms on the way.</summary>
    [TestCase(false)]
    [TestCase(true)]
    public async Task A_y_flag_after_plus_was_offered_is_refused(bool directTls)
    {
        await using var server = await TestServer.StartAsync(null, Alice);
        await using var client = await RawXmppClient.ConnectAsync(directTls ? server.DirectTlsPort : server.C2sPort, directTls);
        var features = directTls ? await client.OpenAsync() : await client.OpenTlsAsync();
        Assert.That(features.Child("mechanisms", Ns.Sasl)!.Elements().Select(e => e.Text), Does.Contain("SCRAM-SHA-256-PLUS"));
        var refused = await client.AuthenticateAsync("SCRAM-SHA-256", "alice", "wonderland", supportsBinding: true);
        Assert.That(refused.Name, Is.EqualTo("failure"), refused.ToString());
        Assert.That(refused.FirstElement()!.Name, Is.EqualTo("not-authorized"));
        Assert.That(server.Logs, Has.Some.Contains("channel binding downgrade"));

        // The same client with "n" (no channel binding support claimed) or with a binding logs in on this stream.
        Assert.That((await client.AuthenticateAsync("SCRAM-SHA-256-PLUS", "alice", "wonderland", "tls-exporter")).Name, Is.EqualTo("success"));
    }

    [Test]
    public async Task Login_over_direct_tls()
    {
        await using var server = await TestServer.StartAsync(null, Alice);
        await using var client = await RawXmppClient.ConnectAsync(server.DirectTlsPort, directTls: true);
        var features = await client.OpenAsync();
        Assert.That(features.Child("starttls", Ns.Tls), Is.Null, "no STARTTLS inside TLS");
        Assert.That(features.Child("mechanisms", Ns.Sasl), Is.Not.Null);
        Assert.That(await client.LoginAsync("alice", "wonderland", "SCRAM-SHA-256-PLUS", bindingType: "tls-exporter", resource: "phone"), Is.EqualTo("alice@localhost/phone"));
    }

    [Test]
    public async Task Wrong_password_is_not_authorized_and_retries_are_bounded()
    {
        await using var server = await TestServer.StartAsync(o => o with { Auth = o.Auth with { MaxFailuresPerStream = 3 } }, Alice);
        await using var client = await RawXmppClient.ConnectAsync(server.C2sPort);
        await client.OpenAsync();
        await client.StartTlsAsync();
        await client.OpenAsync();
        var failure = await client.AuthenticateAsync("SCRAM-SHA-256", "alice", "wrong");
        Assert.That(failure.Name, Is.EqualTo("failure"));
        Assert.That(failure.FirstElement()!.Name, Is.EqualTo("not-authorized"));
        Assert.That((await client.AuthenticateAsync("PLAIN", "alice", "wrong")).FirstElement()!.Name, Is.EqualTo("not-authorized"));
        Assert.That((await client.AuthenticateAsync("SCRAM-SHA-1", "nobody", "x")).FirstElement()!.Name, Is.EqualTo("not-authorized"));
        Assert.That(await client.ReadStreamErrorAsync(), Is.EqualTo("not-authorized"), "RFC 6120 §6.4.5: retries are bounded");
    }

    [Test]
    public async Task Sasl_errors_use_the_rfc_conditions()
    {
        await using var server = await TestServer.StartAsync(o => o with { Auth = o.Auth with { MaxFailuresPerStream = 6 } }, Alice);
        await using var client = await RawXmppClient.ConnectAsync(server.C2sPort);
        await client.OpenAsync();
        await client.SendAsync("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHdvbmRlcmxhbmQ=</auth>");
        Assert.That((await client.ReadAsync()).FirstElement()!.Name, Is.EqualTo("encryption-required"));
        await client.StartTlsAsync();
        await client.OpenAsync();
        await client.SendAsync("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='DIGEST-MD5'/>");
        Assert.That((await client.ReadAsync()).FirstElement()!.Name, Is.EqualTo("invalid-mechanism"));
        await client.SendAsync("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>!!!notbase64</auth>");
        Assert.That((await client.ReadAsync()).FirstElement()!.Name, Is.EqualTo("incorrect-encoding"));
        await client.SendAsync("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>" + Convert.ToBase64String(Encoding.UTF8.GetBytes("n,,n=alice")) + "</auth>");
        Assert.That((await client.ReadAsync()).FirstElement()!.Name, Is.EqualTo("malformed-request"));
        await client.SendAsync("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" + Convert.ToBase64String(Encoding.UTF8.GetBytes("bob@localhost\0alice\0wonderland")) + "</auth>");
        Assert.That((await client.ReadAsync()).FirstElement()!.Name, Is.EqualTo("invalid-authzid"));
        await client.SendAsync("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'/>");
        Assert.That((await client.ReadAsync()).Name, Is.EqualTo("challenge"));
        await client.SendAsync("<abort xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
        Assert.That((await client.ReadAsync()).FirstElement()!.Name, Is.EqualTo("aborted"));
        Assert.That((await client.AuthenticateAsync("SCRAM-SHA-1", "alice", "wonderland")).Name, Is.EqualTo("success"));
    }

    [Test]
    public async Task Stanza_before_authentication_is_not_authorized()
    {
        await using var server = await TestServer.StartAsync(null, Alice);
        await using var client = await RawXmppClient.ConnectAsync(server.C2sPort);
        await client.OpenAsync();
        await client.SendAsync("<message to='alice@localhost'><body>hi</body></message>");
        Assert.That(await client.ReadStreamErrorAsync(), Is.EqualTo("not-authorized"));
    }

    [Test]
    public async Task Unknown_host_and_bad_namespace_get_stream_errors()
    {
        await using var server = await TestServer.StartAsync(null, Alice);
        await using (var client = await RawXmppClient.ConnectAsync(server.C2sPort))
        {
            await client.SendAsync("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='elsewhere.example' version='1.0'>");
            client.ResetReader();
            Assert.That(await client.ReadStreamErrorAsync(), Is.EqualTo("host-unknown"));
        }

        await using (var client = await RawXmppClient.ConnectAsync(server.C2sPort))
        {
            await client.SendAsync("<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>");
            client.ResetReader();
            Assert.That(await client.ReadStreamErrorAsync(), Is.EqualTo("invalid-namespace"));
        }

        await using (var client = await RawXmppClient.ConnectAsync(server.C2sPort))
        {
            await client.SendAsync("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost'>");
            client.ResetReader();
            Assert.That(await client.ReadStreamErrorAsync(), Is.EqualTo("unsupported-version"));
        }
    }

    [Test]
    public async Task Spoofed_from_is_invalid_from_and_server_stamps_from()
    {
        await using var server = await TestServer.StartAsync(null, Alice, Bob);
        await using var alice = await RawXmppClient.ConnectAsync(server.C2sPort);
        await using var bob = await RawXmppClient.ConnectAsync(server.C2sPort);
        await alice.LoginAsync("alice", "wonderland");
        await bob.LoginAsync("bob", "builder");
        await bob.SendAsync("<presence/>");
        await bob.ReadUntilAsync(e => e.Name == "presence");

        await alice.SendAsync("<message to='bob@localhost' type='chat' id='m1'><body>hello bob</body></message>");
        var received = await bob.ReadUntilAsync(e => e.Name == "message");
        Assert.That(received.GetAttribute("from"), Is.EqualTo("alice@localhost/test"));
        Assert.That(received.ChildText("body", Ns.Client), Is.EqualTo("hello bob"));

        await alice.SendAsync("<message from='bob@localhost/test' to='bob@localhost'><body>I am bob</body></message>");
        Assert.That(await alice.ReadStreamErrorAsync(), Is.EqualTo("invalid-from"));

        // Bob is unaffected.
        var pong = await bob.IqAsync("<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
        Assert.That(pong.GetAttribute("type"), Is.EqualTo("result"));
    }

    [Test]
    public async Task Malformed_xml_is_not_well_formed_and_others_keep_chatting()
    {
        await using var server = await TestServer.StartAsync(null, Alice, Bob);
        await using var alice = await RawXmppClient.ConnectAsync(server.C2sPort);
        await using var bob = await RawXmppClient.ConnectAsync(server.C2sPort);
        await alice.LoginAsync("alice", "wonderland");
        await bob.LoginAsync("bob", "builder");
        await alice.SendAsync("<presence/>");
        await alice.ReadUntilAsync(e => e.Name == "presence");
        // XmlReader compares an end tag only once as many characters as the open tag's name have arrived,
        // so the error shows with the next bytes (here a presence), never silently.
        await bob.SendAsync("<message to='alice@localhost'><body>x</body></mess><presence/>");
        Assert.That(await bob.ReadStreamErrorAsync(), Is.EqualTo("not-well-formed"));

        await using var bob2 = await RawXmppClient.ConnectAsync(server.C2sPort);
        await bob2.LoginAsync("bob", "builder", resource: "second");
        await bob2.SendAsync("<message to='alice@localhost'><body>still here</body></message>");
        Assert.That((await alice.ReadUntilAsync(e => e.Name == "message")).ChildText("body", Ns.Client), Is.EqualTo("still here"));
    }

    [Test]
    public async Task Restricted_xml_gets_restricted_xml()
    {
        await using var server = await TestServer.StartAsync(null, Alice);
        await using var alice = await RawXmppClient.ConnectAsync(server.C2sPort);
        await alice.LoginAsync("alice", "wonderland");
        await alice.SendAsync("<!-- a comment --><presence/>");
        Assert.That(await alice.ReadStreamErrorAsync(), Is.EqualTo("restricted-xml"));
    }

    [Test]
    public async Task Oversize_stanza_is_a_policy_violation()
    {
        await using var server = await TestServer.StartAsync(o => o with { Limits = o.Limits with { StanzaSize = 20_000 } }, Alice);
        await using var alice = await RawXmppClient.ConnectAsync(server.C2sPort);
        await alice.LoginAsync("alice", "wonderland");
        var big = "<message to='alice@localhost'><body>" + new string('x', 100_000) + "</body></message>";
        try
        {
            await alice.SendAsync(big);
        }
        catch (IOException)
        {
            // The server may close before reading all of it.
        }

        Assert.That(await alice.ReadStreamErrorAsync(), Is.EqualTo("policy-violation"));
    }

    [Test]
    public async Task Binding_the_same_resource_again_replaces_the_old_session_with_conflict()
    {
        await using var server = await TestServer.StartAsync(null, Alice);
        await using var first = await RawXmppClient.ConnectAsync(server.C2sPort);
        await using var second = await RawXmppClient.ConnectAsync(server.C2sPort);
        await first.LoginAsync("alice", "wonderland", resource: "desk");
        await second.LoginAsync("alice", "wonderland", resource: "desk");
        Assert.That(await first.ReadStreamErrorAsync(), Is.EqualTo("conflict"));
        var pong = await second.IqAsync("<iq type='get' id='p2' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
        Assert.That(pong.GetAttribute("type"), Is.EqualTo("result"));
    }

    [Test]
    public async Task Server_generates_a_resource_and_refuses_invalid_ones()
    {
        await using var server = await TestServer.StartAsync(null, Alice);
        await using var client = await RawXmppClient.ConnectAsync(server.C2sPort);
        Assert.That(await client.LoginAsync("alice", "wonderland", resource: null), Does.StartWith("alice@localhost/"));

        await using var other = await RawXmppClient.ConnectAsync(server.C2sPort);
        await other.OpenAsync();
        await other.StartTlsAsync();
        await other.OpenAsync();
        await other.AuthenticateAsync("SCRAM-SHA-256", "alice", "wonderland");
        await other.OpenAsync();
        var error = await other.IqAsync("<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>bad\u0085</resource></bind></iq>");
        Assert.That(error.GetAttribute("type"), Is.EqualTo("error"));
        Assert.That(error.Child("error")!.FirstElement()!.Name, Is.EqualTo("bad-request"));
        var ok = await other.IqAsync("<iq type='set' id='b2'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>fine</resource></bind></iq>");
        Assert.That(ok.GetAttribute("type"), Is.EqualTo("result"));
        var session = await other.IqAsync("<iq type='set' id='s1'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>");
        Assert.That(session.GetAttribute("type"), Is.EqualTo("result"));
    }

    [Test]
    public async Task Server_iqs_disco_ping_version_and_service_unavailable()
    {
        await using var server = await TestServer.StartAsync(null, Alice);
        await using var client = await RawXmppClient.ConnectAsync(server.C2sPort);
        await client.LoginAsync("alice", "wonderland");
        var info = await client.IqAsync("<iq type='get' id='d1' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
        var features = info.Child("query", Ns.DiscoInfo)!.Elements().Where(e => e.Name == "feature").Select(e => e.GetAttribute("var")).ToList();
        Assert.That(features, Is.SupersetOf(new[] { Ns.DiscoInfo, Ns.DiscoItems, Ns.Ping, Ns.Version }));
        Assert.That(info.Child("query", Ns.DiscoInfo)!.Child("identity")!.GetAttribute("category"), Is.EqualTo("server"));

        var account = await client.IqAsync("<iq type='get' id='d2' to='alice@localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
        Assert.That(account.Child("query", Ns.DiscoInfo)!.Child("identity")!.GetAttribute("type"), Is.EqualTo("registered"));

        var version = await client.IqAsync("<iq type='get' id='v1' to='localhost'><query xmlns='jabber:iq:version'/></iq>");
        Assert.That(version.Child("query", Ns.Version)!.ChildText("name", Ns.Version), Is.EqualTo("XmppServer"));

        var unknown = await client.IqAsync("<iq type='get' id='u1' to='localhost'><query xmlns='urn:example:nothing'/></iq>");
        Assert.That(unknown.GetAttribute("type"), Is.EqualTo("error"));
        Assert.That(unknown.Child("error")!.FirstElement()!.Name, Is.EqualTo("service-unavailable"));

        var bad = await client.IqAsync("<iq type='get' id='u2' to='localhost'/>");
        Assert.That(bad.Child("error")!.FirstElement()!.Name, Is.EqualTo("bad-request"));

        var malformedTo = await client.IqAsync("<iq type='get' id='u3' to='a@b@c'><ping xmlns='urn:xmpp:ping'/></iq>");
        Assert.That(malformedTo.Child("error")!.FirstElement()!.Name, Is.EqualTo("jid-malformed"));

        // A result sent to the server is never answered: the next reply is the ping's.
        await client.SendAsync("<iq type='result' id='r1' to='localhost'/>");
        var pong = await client.IqAsync("<iq type='get' id='p3' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
        Assert.That(pong.GetAttribute("type"), Is.EqualTo("result"));
    }

    [Test]
    public async Task Roster_get_set_remove_with_pushes()
    {
        await using var server = await TestServer.StartAsync(null, Alice);
        await using var client = await RawXmppClient.ConnectAsync(server.C2sPort);
        await client.LoginAsync("alice", "wonderland");
        var empty = await client.IqAsync("<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>");
        Assert.That(empty.Child("query", Ns.Roster)!.ElementCount(), Is.Zero);
        await client.SendAsync("<iq type='set' id='r2'><query xmlns='jabber:iq:roster'><item jid='bob@localhost' name='Bob'><group>Friends</group></item></query></iq>");
        var push = await client.ReadUntilAsync(e => e.Name == "iq" && e.GetAttribute("type") == "set");
        Assert.That(push.Child("query", Ns.Roster)!.Child("item")!.GetAttribute("jid"), Is.EqualTo("bob@localhost"));
        await client.ReadUntilAsync(e => e.GetAttribute("id") == "r2");
        var roster = await client.IqAsync("<iq type='get' id='r3'><query xmlns='jabber:iq:roster'/></iq>");
        var item = roster.Child("query", Ns.Roster)!.Child("item")!;
        Assert.That(item.GetAttribute("name"), Is.EqualTo("Bob"));
        Assert.That(item.ChildText("group", Ns.Roster), Is.EqualTo("Friends"));
        var dup = await client.IqAsync("<iq type='set' id='r4'><query xmlns='jabber:iq:roster'><item jid='carol@localhost'><group>A</group><group>A</group></item></query></iq>");
        Assert.That(dup.Child("error")!.FirstElement()!.Name, Is.EqualTo("bad-request"));
    }

    [Test]
    public async Task Graceful_shutdown_sends_system_shutdown()
    {
        var server = await TestServer.StartAsync(null, Alice);
        await using var client = await RawXmppClient.ConnectAsync(server.C2sPort);
        await client.LoginAsync("alice", "wonderland");
        var stopping = server.DisposeAsync();
        Assert.That(await client.ReadStreamErrorAsync(), Is.EqualTo("system-shutdown"));
        await stopping;
    }

    [Test]
    public async Task Unauthenticated_connection_times_out()
    {
        await using var server = await TestServer.StartAsync(o => o with { Limits = o.Limits with { AuthTimeout = TimeSpan.FromSeconds(1) } }, Alice);
        await using var client = await RawXmppClient.ConnectAsync(server.C2sPort);
        await client.OpenAsync();
        Assert.That(await client.ReadStreamErrorAsync(), Is.EqualTo("connection-timeout"));
    }

    [Test]
    public async Task A_client_over_its_stanza_rate_is_slowed_and_every_message_arrives()
    {
        // A bot sends 400 messages a second for 10 s, four times its rate: it is read more slowly (TCP pushes
        // back), stays connected, and the recipient gets all 4000, in order. The rate is low enough that even a
        // busy test machine handles stanzas faster than it, so the pacing is what slows the bot.
        await using var server = await TestServer.StartAsync(o => o with { Limits = o.Limits with { StanzaRate = 100, StanzaBurst = 100 } }, Alice, Bob);
        await using var alice = await RawXmppClient.ConnectAsync(server.C2sPort);
        await using var bob = await RawXmppClient.ConnectAsync(server.C2sPort);
        await alice.LoginAsync("alice", "wonderland");
        await bob.LoginAsync("bob", "builder");
        await bob.SendAsync("<presence/>");
        await bob.ReadUntilAsync(e => e.Name == "presence");

        var received = Task.Run(async () =>
        {
            var next = 0;
            while (next < 4000)
            {
                var e = await bob.ReadAsync();
                if (e.Name == "message")
                {
                    Assert.That(e.GetAttribute("id"), Is.EqualTo("m" + next), "in order");
                    next++;
                }
            }
        });

        var pace = System.Diagnostics.Stopwatch.StartNew();
        for (var tick = 0; tick < 100; tick++)
        {
            var batch = new System.Text.StringBuilder();
            for (var i = tick * 40; i < (tick + 1) * 40; i++)
            {
                batch.Append($"<message to='bob@localhost' type='chat' id='m{i}'><body>{i}</body></message>");
            }

            await alice.SendAsync(batch.ToString());
            var due = TimeSpan.FromMilliseconds((tick + 1) * 100) - pace.Elapsed;
            if (due > TimeSpan.Zero)
            {
                await Task.Delay(due);
            }
        }

        await received.WaitAsync(TimeSpan.FromSeconds(120));
        Assert.That(server.Logs, Has.Some.Contains("Slowing down alice@localhost/test"));
        var pong = await alice.IqAsync("<iq type='get' id='still' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
        Assert.That(pong.GetAttribute("type"), Is.EqualTo("result"), "still connected");
    }

    [Test]
    public async Task Client_that_stops_reading_is_disconnected_and_others_are_unaffected()
    {
        const string Carol = "carol@localhost:carol";
        await using var server = await TestServer.StartAsync(o => o with { Limits = o.Limits with { OutputQueue = 16, StanzaRate = 0 } }, Alice, Bob, Carol);
        await using var alice = await RawXmppClient.ConnectAsync(server.C2sPort);
        await using var bob = await RawXmppClient.ConnectAsync(server.C2sPort);
        await using var carol = await RawXmppClient.ConnectAsync(server.C2sPort);
        await alice.LoginAsync("alice", "wonderland");
        await bob.LoginAsync("bob", "builder");
        await carol.LoginAsync("carol", "carol");
        await bob.SendAsync("<presence/>");
        await bob.ReadUntilAsync(e => e.Name == "presence");

        // Bob stops reading. Alice sends far more than the socket buffers hold: once 16 stanzas wait for
        // Bob, his stream is closed (memory stays bounded) and what he cannot take is bounced to Alice.
        var bobJid = Xmpp.Core.Addressing.Jid.Parse("bob@localhost/test");
        var body = new string('z', 10_000);
        for (var i = 0; i < 3000 && server.Server.Context.Sessions.Find(bobJid) is not null; i++)
        {
            await alice.SendAsync($"<message to='bob@localhost' type='chat'><body>{body}</body></message>");
        }

        // His session ends once close-timeout (2 s here) has passed without his closing tag.
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (server.Server.Context.Sessions.Find(bobJid) is not null && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50);
        }

        Assert.That(server.Server.Context.Sessions.Find(bobJid), Is.Null, "bob's session ended");
        Assert.That(server.Logs, Has.Some.Contains("Output queue of bob@localhost/test is full"));
        var pong = await carol.IqAsync("<iq type='get' id='p9' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
        Assert.That(pong.GetAttribute("type"), Is.EqualTo("result"));
    }

    [Test]
    public async Task Message_to_nonexistent_account_bounces_service_unavailable()
    {
        await using var server = await TestServer.StartAsync(null, Alice);
        await using var alice = await RawXmppClient.ConnectAsync(server.C2sPort);
        await alice.LoginAsync("alice", "wonderland");
        await alice.SendAsync("<message to='nobody@localhost' id='m9'><body>are you there?</body></message>");
        var bounce = await alice.ReadUntilAsync(e => e.Name == "message");
        Assert.That(bounce.GetAttribute("type"), Is.EqualTo("error"));
        Assert.That(bounce.Child("error")!.FirstElement()!.Name, Is.EqualTo("service-unavailable"));
    }
}
