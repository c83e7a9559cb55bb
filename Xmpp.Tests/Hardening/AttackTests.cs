using System.Text;
using Xmpp.Core;
using Xmpp.Core.Sasl;
using Xmpp.Server.Config;
using Xmpp.Tests.EndToEnd;

namespace Xmpp.Tests.Hardening;

/// <summary>
/// The attack corpus (XEP-0205 and the usual XML and SASL attacks), each against the real server over TCP.
/// In every test two bystanders, alice and bob, are logged in before the attack and must still chat
/// afterwards: an attack costs the attacker their stream at most, never anyone else's.
/// </summary>
[TestFixture]
[CancelAfter(120_000)]
public sealed class AttackTests
{
    private const string Alice = "alice@localhost:wonderland";
    private const string Bob = "bob@localhost:builder";
    private const string Mallory = "mallory@localhost:evil";
    private const string Header = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>";

    // ---- XML ------------------------------------------------------------------------------------------

    [Test]
    public async Task Billion_laughs_in_the_stream_is_restricted_xml()
    {
        await using var s = await Scene.StartAsync();
        var lol = new StringBuilder("<!DOCTYPE lolz [<!ENTITY lol \"lol\">");
        for (var i = 1; i < 10; i++)
        {
            lol.Append($"<!ENTITY lol{i} \"{string.Concat(Enumerable.Repeat(i == 1 ? "&lol;" : $"&lol{i - 1};", 10))}\">");
        }

        lol.Append("]><message><body>&lol9;</body></message>");
        Assert.That(await s.AttackAfterHeaderAsync(lol.ToString()), Is.EqualTo("restricted-xml"));
        await s.AssertBystandersChatAsync();
    }

    [Test]
    public async Task Doctype_before_the_stream_header_is_restricted_xml()
    {
        await using var s = await Scene.StartAsync();
        var attacker = await RawXmppClient.ConnectAsync(s.Server.C2sPort);
        await using (attacker)
        {
            attacker.ResetReader();
            await attacker.SendAsync("<?xml version='1.0'?><!DOCTYPE stream [<!ENTITY xxe SYSTEM 'file:///etc/passwd'>]>" + Header[21..]);
            Assert.That(await attacker.ReadStreamErrorAsync(), Is.EqualTo("restricted-xml"));
        }

        await s.AssertBystandersChatAsync();
    }

    [Test]
    public async Task External_or_undeclared_entity_reference_is_refused()
    {
        await using var s = await Scene.StartAsync();
        Assert.That(await s.AttackAfterHeaderAsync("<message><body>&xxe;</body></message>"), Is.AnyOf("restricted-xml", "not-well-formed"));
        await s.AssertBystandersChatAsync();
    }

    [Test]
    public async Task Deeply_nested_elements_are_a_policy_violation()
    {
        await using var s = await Scene.StartAsync();
        var nested = string.Concat(Enumerable.Repeat("<x>", 100_000));
        Assert.That(await s.AttackAfterHeaderAsync("<message>" + nested), Is.EqualTo("policy-violation"));
        await s.AssertBystandersChatAsync();
    }

    [Test]
    public async Task Huge_attribute_value_is_a_policy_violation()
    {
        await using var s = await Scene.StartAsync();
        Assert.That(await s.AttackAfterHeaderAsync("<message id='" + new string('a', 1_000_000) + "'/>"), Is.EqualTo("policy-violation"));
        await s.AssertBystandersChatAsync();
    }

    [Test]
    public async Task Thousands_of_namespace_declarations_or_attributes_are_a_policy_violation()
    {
        await using var s = await Scene.StartAsync();
        var decls = string.Concat(Enumerable.Range(0, 5000).Select(i => $" xmlns:p{i}='urn:{i}'"));
        Assert.That(await s.AttackAfterHeaderAsync($"<message{decls}/>"), Is.EqualTo("policy-violation"));
        var attrs = string.Concat(Enumerable.Range(0, 5000).Select(i => $" a{i}='{i}'"));
        Assert.That(await s.AttackAfterHeaderAsync($"<message{attrs}/>"), Is.EqualTo("policy-violation"));
        await s.AssertBystandersChatAsync();
    }

    [TestCase(new byte[] { 0xC3, 0x28 }, TestName = "Invalid UTF-8: bad continuation byte")]
    [TestCase(new byte[] { 0xC0, 0xAF }, TestName = "Invalid UTF-8: overlong encoding")]
    [TestCase(new byte[] { 0xED, 0xA0, 0x80 }, TestName = "Invalid UTF-8: encoded surrogate")]
    [TestCase(new byte[] { 0xF4, 0x90, 0x80, 0x80 }, TestName = "Invalid UTF-8: beyond U+10FFFF")]
    [TestCase(new byte[] { 0x00 }, TestName = "NUL byte")]
    [TestCase(new byte[] { 0xEF, 0xBF, 0xBE }, TestName = "U+FFFE, not an XML character")]
    public async Task Bytes_that_are_not_xml_text_are_not_well_formed(byte[] bad)
    {
        await using var s = await Scene.StartAsync();
        var attacker = await RawXmppClient.ConnectAsync(s.Server.C2sPort);
        await using (attacker)
        {
            await attacker.OpenAsync();
            await attacker.SendBytesAsync([.. "<message><body>a"u8, .. bad, .. "b</body></message>"u8]);
            Assert.That(await attacker.ReadStreamErrorAsync(), Is.EqualTo("not-well-formed"));
        }

        await s.AssertBystandersChatAsync();
    }

    [Test]
    public async Task A_stanza_split_at_every_byte_arrives_whole()
    {
        await using var s = await Scene.StartAsync();
        var mallory = await RawXmppClient.ConnectAsync(s.Server.C2sPort);
        await using (mallory)
        {
            await mallory.LoginAsync("mallory", "evil");
            var stanza = Encoding.UTF8.GetBytes("<message to='bob@localhost/test' type='chat' id='split'><body>one byte — at a time ☃</body></message>");
            foreach (var b in stanza)
            {
                await mallory.SendBytesAsync([b]);
            }

            var m = await s.Bob.ReadUntilAsync(e => e.Name == "message" && e.GetAttribute("id") == "split");
            Assert.That(m.ChildText("body", Ns.Client), Is.EqualTo("one byte — at a time ☃"));
        }

        await s.AssertBystandersChatAsync();
    }

    // ---- streams and connections ------------------------------------------------------------------------

    [Test]
    public async Task A_second_stream_header_inside_the_stream_is_refused()
    {
        await using var s = await Scene.StartAsync();
        Assert.That(await s.AttackAfterHeaderAsync(Header[21..]), Is.EqualTo("unsupported-stanza-type"));
        await s.AssertBystandersChatAsync();
    }

    [Test]
    public async Task Connection_flood_from_one_address_is_cut_at_the_limit()
    {
        await using var s = await Scene.StartAsync(o => o with { Limits = o.Limits with { ConnectionsPerIp = 12 } });

        // Alice and Bob hold 2 connections; 10 more fill the limit, and the next ones are refused.
        var flood = new List<RawXmppClient>();
        try
        {
            for (var i = 0; i < 10; i++)
            {
                var c = await RawXmppClient.ConnectAsync(s.Server.C2sPort);
                flood.Add(c);
                await c.OpenAsync();
            }

            for (var i = 0; i < 3; i++)
            {
                var refused = await RawXmppClient.ConnectAsync(s.Server.C2sPort);
                await using (refused)
                {
                    refused.ResetReader();
                    await refused.SendAsync(Header);
                    Assert.That(await refused.ReadStreamErrorAsync(), Is.EqualTo("policy-violation"));
                }
            }

            Assert.That(s.Server.Logs, Has.Some.Contains("connections from that address are open already"));
            await s.AssertBystandersChatAsync();
        }
        finally
        {
            foreach (var c in flood)
            {
                await c.DisposeAsync();
            }
        }

        // Once the flood's connections are gone, the address may connect again.
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (s.Server.Server.Context.Connections.CountFrom(System.Net.IPAddress.Loopback) > 2 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50);
        }

        var again = await RawXmppClient.ConnectAsync(s.Server.C2sPort);
        await using (again)
        {
            await again.LoginAsync("mallory", "evil");
        }
    }

    [Test]
    public async Task Slowloris_a_stream_that_never_authenticates_is_closed()
    {
        await using var s = await Scene.StartAsync(o => o with { Limits = o.Limits with { AuthTimeout = TimeSpan.FromSeconds(1.5) } });
        var attacker = await RawXmppClient.ConnectAsync(s.Server.C2sPort);
        await using (attacker)
        {
            attacker.ResetReader();
            await attacker.SendAsync(Header[..40]);
            await Task.Delay(500);
            await attacker.SendAsync(Header[40..]);
            Assert.That(await attacker.ReadStreamErrorAsync(), Is.EqualTo("connection-timeout"));
        }

        await s.AssertBystandersChatAsync();
    }

    [Test]
    public async Task Iq_flood_is_slowed_to_the_rate_and_every_request_answered()
    {
        // XEP-0205 §6 as flow control: the flooding stream is read at its rate, TCP pushes back, nothing is lost.
        await using var s = await Scene.StartAsync(o => o with { Limits = o.Limits with { StanzaRate = 200, StanzaBurst = 50 } });
        var mallory = await RawXmppClient.ConnectAsync(s.Server.C2sPort);
        await using (mallory)
        {
            await mallory.LoginAsync("mallory", "evil");
            var flood = new StringBuilder();
            for (var i = 0; i < 1000; i++)
            {
                flood.Append($"<iq type='get' id='f{i}' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
            }

            await mallory.SendAsync(flood.ToString());
            var answered = new HashSet<string>();
            while (answered.Count < 1000)
            {
                var e = await mallory.ReadAsync();
                Assert.That(e.Name, Is.EqualTo("iq"), e.ToString());
                answered.Add(e.GetAttribute("id")!);
            }

            Assert.That(s.Server.Logs, Has.Some.Contains("Slowing down mallory@localhost"));
            await s.AssertBystandersChatAsync();
            var pong = await mallory.IqAsync("<iq type='get' id='after' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
            Assert.That(pong.GetAttribute("type"), Is.EqualTo("result"), "the flooder stays connected");
        }
    }

    [Test]
    public async Task Presence_subscription_flood_is_bounded_by_the_roster_limit()
    {
        // Even without a rate limit, the roster limit stops the requests: beyond it each is bounced, and Bob,
        // asked 200 times, holds one request.
        await using (var s = await Scene.StartAsync(o => o with { Limits = o.Limits with { StanzaRate = 0, RosterItems = 20 } }))
        {
            var mallory = await RawXmppClient.ConnectAsync(s.Server.C2sPort);
            await using (mallory)
            {
                await mallory.LoginAsync("mallory", "evil");
                await mallory.SendAsync(string.Concat(Enumerable.Range(0, 100).Select(i => $"<presence type='subscribe' to='victim{i}@localhost'/>")));
                await mallory.SendAsync(string.Concat(Enumerable.Range(0, 200).Select(_ => "<presence type='subscribe' to='bob@localhost'/>")));
                var seen = await mallory.DrainAsync();
                var bounced = seen.Count(e => e.Name == "presence" && e.GetAttribute("type") == "error" &&
                    e.Child("error")?.FirstElement()?.Name == "resource-constraint");
                Assert.That(bounced, Is.GreaterThanOrEqualTo(80), "requests beyond the roster limit are bounced");
            }

            var requests = (await s.Bob.DrainAsync()).Count(e => e.Name == "presence" && e.GetAttribute("type") == "subscribe");
            Assert.That(requests, Is.LessThanOrEqualTo(1), "bob sees mallory's request at most once");
            await s.AssertBystandersChatAsync();
        }
    }

    [Test]
    public async Task A_slow_reader_of_large_stanzas_is_cut_off_by_bytes_not_only_by_count()
    {
        // 10,000 stanzas may wait, but only 1 MiB: large stanzas to a reader that does not read must not
        // pile up (10,000 x 256 KiB would be 2.5 GiB).
        await using var s = await Scene.StartAsync(o => o with { Limits = o.Limits with { StanzaRate = 0, OutputBytes = 1024 * 1024 } });
        var reader = await RawXmppClient.ConnectAsync(s.Server.C2sPort);
        var writer = await RawXmppClient.ConnectAsync(s.Server.C2sPort);
        await using (reader)
        await using (writer)
        {
            await reader.LoginAsync("mallory", "evil", resource: "slow");
            await writer.LoginAsync("mallory", "evil", resource: "fast");
            var readerJid = Xmpp.Core.Addressing.Jid.Parse("mallory@localhost/slow");
            var body = new string('x', 200_000);
            for (var i = 0; i < 200 && s.Server.Server.Context.Sessions.Find(readerJid) is not null; i++)
            {
                await writer.SendAsync($"<message to='mallory@localhost/slow' type='chat'><body>{body}</body></message>");
            }

            var deadline = DateTime.UtcNow.AddSeconds(10);
            while (s.Server.Server.Context.Sessions.Find(readerJid) is not null && DateTime.UtcNow < deadline)
            {
                await Task.Delay(50);
            }

            Assert.That(s.Server.Server.Context.Sessions.Find(readerJid), Is.Null, "the slow reader's session ended");
            Assert.That(s.Server.Logs, Has.Some.Contains("Output queue of mallory@localhost/slow is full"));
        }

        await s.AssertBystandersChatAsync();
    }

    // ---- addresses -------------------------------------------------------------------------------------

    [Test]
    public async Task Spoofed_from_on_a_client_stream_is_invalid_from()
    {
        await using var s = await Scene.StartAsync();
        var mallory = await RawXmppClient.ConnectAsync(s.Server.C2sPort);
        await using (mallory)
        {
            await mallory.LoginAsync("mallory", "evil");
            await mallory.SendAsync("<message from='alice@localhost/test' to='bob@localhost/test'><body>it is me, alice</body></message>");
            Assert.That(await mallory.ReadStreamErrorAsync(), Is.EqualTo("invalid-from"));
        }

        var seen = await s.Bob.DrainAsync();
        Assert.That(seen.Where(e => e.Name == "message"), Is.Empty, "the forged message was not delivered");
        await s.AssertBystandersChatAsync();
    }

    [TestCase("a\u200Bb", TestName = "Resource with a disallowed code point")]
    [TestCase("a\tb", TestName = "Resource with a control character")]
    [TestCase("LONG", TestName = "Resource of 1024 bytes")]
    public async Task Invalid_or_enormous_resource_is_bad_request_and_the_stream_stays(string resource)
    {
        if (resource == "LONG")
        {
            resource = new string('r', 1024);
        }

        await using var s = await Scene.StartAsync();
        var mallory = await RawXmppClient.ConnectAsync(s.Server.C2sPort);
        await using (mallory)
        {
            await mallory.OpenTlsAsync();
            Assert.That((await mallory.AuthenticateAsync("SCRAM-SHA-256", "mallory", "evil")).Name, Is.EqualTo("success"));
            await mallory.OpenAsync();
            var reply = await mallory.IqAsync($"<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>{resource}</resource></bind></iq>");
            Assert.That(reply.GetAttribute("type"), Is.EqualTo("error"));
            Assert.That(reply.Child("error")!.FirstElement()!.Name, Is.EqualTo("bad-request"));
            var ok = await mallory.IqAsync("<iq type='set' id='b2'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>fine</resource></bind></iq>");
            Assert.That(ok.GetAttribute("type"), Is.EqualTo("result"), "the stream survives and binding still works");
        }

        await s.AssertBystandersChatAsync();
    }

    [Test]
    public async Task Sessions_beyond_the_per_account_limit_are_a_resource_constraint()
    {
        await using var s = await Scene.StartAsync(o => o with { Limits = o.Limits with { SessionsPerAccount = 2 } });
        var clients = new List<RawXmppClient>();
        try
        {
            for (var i = 0; i < 2; i++)
            {
                var c = await RawXmppClient.ConnectAsync(s.Server.C2sPort);
                clients.Add(c);
                await c.LoginAsync("mallory", "evil", resource: "r" + i);
            }

            var third = await RawXmppClient.ConnectAsync(s.Server.C2sPort);
            clients.Add(third);
            await third.OpenTlsAsync();
            Assert.That((await third.AuthenticateAsync("SCRAM-SHA-256", "mallory", "evil")).Name, Is.EqualTo("success"));
            await third.OpenAsync();
            var reply = await third.IqAsync("<iq type='set' id='b3'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>r2</resource></bind></iq>");
            Assert.That(reply.Child("error")!.FirstElement()!.Name, Is.EqualTo("resource-constraint"));
            Assert.That(reply.Child("error")!.GetAttribute("type"), Is.EqualTo("wait"));

            // Rebinding one of the existing resources replaces it, as before; that is not a new session.
            var replace = await third.IqAsync("<iq type='set' id='b4'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>r1</resource></bind></iq>");
            Assert.That(replace.GetAttribute("type"), Is.EqualTo("result"));
        }
        finally
        {
            foreach (var c in clients)
            {
                await c.DisposeAsync();
            }
        }

        await s.AssertBystandersChatAsync();
    }

    // ---- SASL ------------------------------------------------------------------------------------------

    [Test]
    public async Task Forged_and_replayed_scram_proofs_are_not_authorized()
    {
        await using var s = await Scene.StartAsync();

        // A legitimate exchange, recorded.
        string clientFirst, clientFinal;
        var honest = await RawXmppClient.ConnectAsync(s.Server.C2sPort);
        await using (honest)
        {
            await honest.OpenTlsAsync();
            var scram = new ScramClient(ScramHash.Sha256, "mallory", "evil");
            clientFirst = scram.ClientFirst();
            await honest.SendAsync($"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'>{B64(clientFirst)}</auth>");
            var challenge = await honest.ReadAsync();
            clientFinal = scram.ClientFinal(Encoding.UTF8.GetString(Convert.FromBase64String(challenge.Text)));
            await honest.SendAsync($"<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{B64(clientFinal)}</response>");
            Assert.That((await honest.ReadAsync()).Name, Is.EqualTo("success"));
        }

        var attacker = await RawXmppClient.ConnectAsync(s.Server.C2sPort);
        await using (attacker)
        {
            await attacker.OpenTlsAsync();

            // Replay: same client-first, the recorded client-final; the server's nonce is new, so it fails.
            await attacker.SendAsync($"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'>{B64(clientFirst)}</auth>");
            Assert.That((await attacker.ReadAsync()).Name, Is.EqualTo("challenge"));
            await attacker.SendAsync($"<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{B64(clientFinal)}</response>");
            var replay = await attacker.ReadAsync();
            Assert.That(replay.Name, Is.EqualTo("failure"));
            Assert.That(replay.FirstElement()!.Name, Is.EqualTo("not-authorized"));

            // Forgery: the server's nonce echoed, but a proof made up.
            await attacker.SendAsync($"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'>{B64("n,,n=mallory,r=abcdefgh")}</auth>");
            var challenge = Encoding.UTF8.GetString(Convert.FromBase64String((await attacker.ReadAsync()).Text));
            var nonce = challenge.Split(',')[0][2..];
            await attacker.SendAsync($"<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{B64($"c=biws,r={nonce},p={Convert.ToBase64String(new byte[32])}")}</response>");
            var forged = await attacker.ReadAsync();
            Assert.That(forged.FirstElement()!.Name, Is.EqualTo("not-authorized"));
        }

        await s.AssertBystandersChatAsync();
    }

    [Test]
    public async Task Sasl_does_not_reveal_which_accounts_exist()
    {
        await using var s = await Scene.StartAsync();
        var attacker = await RawXmppClient.ConnectAsync(s.Server.C2sPort);
        await using (attacker)
        {
            await attacker.OpenTlsAsync();

            async Task<string> ServerFirstAsync(string user)
            {
                await attacker.SendAsync($"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'>{B64($"n,,n={user},r=nonce{user}")}</auth>");
                var text = Encoding.UTF8.GetString(Convert.FromBase64String((await attacker.ReadAsync()).Text));
                await attacker.SendAsync("<abort xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
                Assert.That((await attacker.ReadAsync()).FirstElement()!.Name, Is.EqualTo("aborted"));
                return string.Join(',', text.Split(',').Skip(1)); // s=...,i=...
            }

            // A missing account shows a salt as stable as a real one's, and the same iteration count.
            var ghost1 = await ServerFirstAsync("ghost");
            var ghost2 = await ServerFirstAsync("ghost");
            var real = await ServerFirstAsync("alice");
            Assert.That(ghost2, Is.EqualTo(ghost1));
            Assert.That(real.Split(',')[1], Is.EqualTo(ghost1.Split(',')[1]), "iterations");
            Assert.That(await ServerFirstAsync("ghost2"), Is.Not.EqualTo(ghost1), "salts differ per username");

            // A wrong password and a missing account fail alike, with PLAIN and with SCRAM.
            var wrong = await attacker.AuthenticateAsync("PLAIN", "alice", "not-her-password");
            var missing = await attacker.AuthenticateAsync("PLAIN", "ghost", "whatever");
            Assert.That(missing.ToString(), Is.EqualTo(wrong.ToString()));
            var wrongScram = await attacker.AuthenticateAsync("SCRAM-SHA-1", "alice", "not-her-password");
            var missingScram = await attacker.AuthenticateAsync("SCRAM-SHA-1", "ghost", "whatever");
            Assert.That(missingScram.ToString(), Is.EqualTo(wrongScram.ToString()));
        }

        await s.AssertBystandersChatAsync();
    }

    [Test]
    public async Task Password_guessing_blocks_the_account_for_a_while_with_one_answer_for_every_password()
    {
        await using var s = await Scene.StartAsync(o => o with { Auth = o.Auth with { FailuresPerAccount = 4, FailuresPerIp = 0 } });
        var attacker = await RawXmppClient.ConnectAsync(s.Server.C2sPort);
        await using (attacker)
        {
            await attacker.OpenTlsAsync();
            for (var i = 0; i < 4; i++)
            {
                Assert.That((await attacker.AuthenticateAsync("SCRAM-SHA-256", "bob", "guess" + i)).FirstElement()!.Name, Is.EqualTo("not-authorized"));
            }

            // Blocked now: a wrong guess and the right password get the same answer.
            var wrong = await attacker.AuthenticateAsync("SCRAM-SHA-256", "bob", "guess5");
            Assert.That(wrong.FirstElement()!.Name, Is.EqualTo("temporary-auth-failure"));
        }

        var owner = await RawXmppClient.ConnectAsync(s.Server.C2sPort);
        await using (owner)
        {
            await owner.OpenTlsAsync();
            var right = await owner.AuthenticateAsync("SCRAM-SHA-256", "bob", "builder");
            Assert.That(right.FirstElement()!.Name, Is.EqualTo("temporary-auth-failure"));

            // Other accounts are not affected.
            Assert.That((await owner.AuthenticateAsync("SCRAM-SHA-256", "mallory", "evil")).Name, Is.EqualTo("success"));
        }

        // Bob's existing session was not touched by the block.
        await s.AssertBystandersChatAsync();
    }

    private static string B64(string s) => Convert.ToBase64String(Encoding.UTF8.GetBytes(s));

    /// <summary>A server with alice and bob online (available, bound as .../test) and a mallory account.</summary>
    private sealed class Scene : IAsyncDisposable
    {
        private int _round;

        private Scene(TestServer server, RawXmppClient alice, RawXmppClient bob)
        {
            Server = server;
            Alice = alice;
            Bob = bob;
        }

        public TestServer Server { get; }

        public RawXmppClient Alice { get; }

        public RawXmppClient Bob { get; }

        public static async Task<Scene> StartAsync(Func<ServerOptions, ServerOptions>? configure = null)
        {
            var server = await TestServer.StartAsync(configure, AttackTests.Alice, AttackTests.Bob, Mallory);
            var alice = await RawXmppClient.ConnectAsync(server.C2sPort);
            var bob = await RawXmppClient.ConnectAsync(server.C2sPort);
            await alice.LoginAsync("alice", "wonderland");
            await bob.LoginAsync("bob", "builder");
            await alice.SendAsync("<presence/>");
            await bob.SendAsync("<presence/>");
            await alice.DrainAsync();
            await bob.DrainAsync();
            return new Scene(server, alice, bob);
        }

        /// <summary>A new connection opens a stream and sends the attack; returns the stream error it gets.</summary>
        public async Task<string?> AttackAfterHeaderAsync(string xml)
        {
            var attacker = await RawXmppClient.ConnectAsync(Server.C2sPort);
            await using (attacker)
            {
                await attacker.OpenAsync();
                try
                {
                    await attacker.SendAsync(xml);
                }
                catch (IOException)
                {
                    // The server may close before taking all of a large attack.
                }

                return await attacker.ReadStreamErrorAsync();
            }
        }

        /// <summary>Alice and Bob exchange a message each way.</summary>
        public async Task AssertBystandersChatAsync()
        {
            var n = ++_round;
            await Alice.SendAsync($"<message to='bob@localhost/test' type='chat' id='a{n}'><body>still there? {n}</body></message>");
            var m = await Bob.ReadUntilAsync(e => e.Name == "message" && e.GetAttribute("id") == "a" + n);
            Assert.That(m.ChildText("body", Ns.Client), Is.EqualTo($"still there? {n}"));
            await Bob.SendAsync($"<message to='alice@localhost/test' type='chat' id='b{n}'><body>yes {n}</body></message>");
            var r = await Alice.ReadUntilAsync(e => e.Name == "message" && e.GetAttribute("id") == "b" + n);
            Assert.That(r.ChildText("body", Ns.Client), Is.EqualTo($"yes {n}"));
        }

        public async ValueTask DisposeAsync()
        {
            await Alice.DisposeAsync();
            await Bob.DisposeAsync();
            await Server.DisposeAsync();
        }
    }
}
