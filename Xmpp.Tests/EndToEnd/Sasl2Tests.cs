using System.Text;
using Xmpp.Core.Sasl;
using Xmpp.Core.Xml;

namespace Xmpp.Tests.EndToEnd;

/// <summary>XEP-0388 SASL2 with XEP-0386 Bind2, inline XEP-0198 and XEP-0484 FAST, with the raw client (conformance/run checks the same with xmpp.js).</summary>
public sealed class Sasl2Tests
{
    private const string Sasl2 = "urn:xmpp:sasl:2";
    private const string Bind2 = "urn:xmpp:bind:0";
    private const string Sm = "urn:xmpp:sm:3";

    [Test]
    public async Task One_round_trip_authenticates_binds_and_enables_carbons_and_stream_management()
    {
        await using var server = await TestServer.StartAsync(null, "alice@localhost:wonderland", "bob@localhost:builder");
        await using var c = await RawXmppClient.ConnectAsync(server.C2sPort);
        await c.OpenAsync();
        await c.StartTlsAsync();
        var features = await c.OpenAsync();
        var offer = features.Child("authentication", Sasl2)!;
        Assert.That(offer.Elements().Where(e => e.Name == "mechanism").Select(e => e.Text), Does.Contain("SCRAM-SHA-256"));
        var inline = offer.Child("inline", Sasl2)!.Child("bind", Bind2)!.Child("inline", Bind2)!.Elements().Select(e => e.GetAttribute("var"));
        Assert.That(inline, Does.Contain("urn:xmpp:carbons:2").And.Contain(Sm).And.Contain("urn:xmpp:csi:0"));

        var (success, scram) = await AuthenticateAsync(c, "alice", "wonderland",
            $"<user-agent id='d4565fa7-4d72-4749-b3d3-740edbf87770'><software>Test</software></user-agent><bind xmlns='{Bind2}'><tag>Phone</tag><enable xmlns='urn:xmpp:carbons:2'/><enable xmlns='{Sm}' resume='true'/></bind>");
        Assert.That(success.Name, Is.EqualTo("success"), success.ToString());
        Assert.That(scram.VerifyServerFinal(Encoding.UTF8.GetString(Convert.FromBase64String(success.ChildText("additional-data", Sasl2)!))), Is.True);
        var jid = success.ChildText("authorization-identifier", Sasl2)!;
        Assert.That(jid, Does.StartWith("alice@localhost/Phone."));
        var enabled = success.Child("bound", Bind2)!.Child("enabled", Sm)!;
        Assert.That(enabled.GetAttribute("resume"), Is.EqualTo("true"));

        // No restart: the features follow at once, without bind; the session is bound and works.
        var after = await c.ReadAsync();
        Assert.That(after.Name, Is.EqualTo("features"));
        Assert.That(after.Child("bind", "urn:ietf:params:xml:ns:xmpp-bind"), Is.Null);
        Assert.That(after.Child("sm", Sm), Is.Null, "stream management is on already: not offered again (xmpp.js would resume the session it is on)");
        var ping = await c.IqAsync("<iq type='get' id='p' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
        Assert.That(ping.GetAttribute("to"), Is.EqualTo(jid));

        // The same user agent gets the same resource next time.
        await using var again = await RawXmppClient.ConnectAsync(server.C2sPort);
        await again.OpenAsync();
        await again.StartTlsAsync();
        await again.OpenAsync();
        var (second, _) = await AuthenticateAsync(again, "alice", "wonderland", $"<user-agent id='d4565fa7-4d72-4749-b3d3-740edbf87770'/><bind xmlns='{Bind2}'><tag>Phone</tag></bind>");
        Assert.That(second.ChildText("authorization-identifier", Sasl2), Is.EqualTo(jid));
        Assert.That((await again.ReadAsync()).Child("sm", Sm), Is.Not.Null, "without an inline enable, stream management is offered");

        Assert.That(await c.ReadStreamErrorAsync(), Is.EqualTo("conflict"), "the second login with the same resource replaced the first");
    }

    [Test]
    public async Task The_scram_challenge_carries_the_downgrade_protection_hash_of_what_was_advertised()
    {
        await using var server = await TestServer.StartAsync(null, "alice@localhost:wonderland");
        await using var c = await RawXmppClient.ConnectAsync(server.C2sPort);
        await c.OpenAsync();
        await c.StartTlsAsync();
        var features = await c.OpenAsync();
        var mechanisms = features.Child("mechanisms", "urn:ietf:params:xml:ns:xmpp-sasl")!.Elements().Select(e => e.Text).ToList();
        var bindings = features.Child("sasl-channel-binding", "urn:xmpp:sasl-cb:0")?.Elements().Select(e => e.GetAttribute("type")!).ToList();

        // XEP-0474 §4.1, computed here independently of the server's code.
        var text = string.Join('\u001E', mechanisms.Order(StringComparer.Ordinal)) +
            (bindings is null ? "" : "\u001F" + string.Join('\u001E', bindings.Order(StringComparer.Ordinal)));
        var expected = Convert.ToBase64String(System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes(text)));

        var scram = new ScramClient(ScramHash.Sha256, "alice", "wonderland");
        await c.SendAsync($"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'>{Convert.ToBase64String(Encoding.UTF8.GetBytes(scram.ClientFirst()))}</auth>");
        var serverFirst = Encoding.UTF8.GetString(Convert.FromBase64String((await c.ReadAsync()).Text));
        Assert.That(serverFirst.Split(',').Single(a => a.StartsWith("h=", StringComparison.Ordinal))[2..], Is.EqualTo(expected));

        // The attribute is part of what the server signs: the exchange completes and verifies.
        await c.SendAsync($"<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{Convert.ToBase64String(Encoding.UTF8.GetBytes(scram.ClientFinal(serverFirst)))}</response>");
        var success = await c.ReadAsync();
        Assert.That(success.Name, Is.EqualTo("success"));
        Assert.That(scram.VerifyServerFinal(Encoding.UTF8.GetString(Convert.FromBase64String(success.Text))), Is.True);
    }

    [Test]
    public async Task A_dropped_session_resumes_inline_and_a_wrong_password_fails_in_the_sasl2_form()
    {
        await using var server = await TestServer.StartAsync(null, "alice@localhost:wonderland", "bob@localhost:builder");
        var first = await RawXmppClient.ConnectAsync(server.C2sPort);
        await first.OpenAsync();
        await first.StartTlsAsync();
        await first.OpenAsync();
        var (success, _) = await AuthenticateAsync(first, "alice", "wonderland", $"<bind xmlns='{Bind2}'><tag>Laptop</tag><enable xmlns='{Sm}' resume='true'/></bind>");
        var jid = success.ChildText("authorization-identifier", Sasl2)!;
        var id = success.Child("bound", Bind2)!.Child("enabled", Sm)!.GetAttribute("id")!;
        await first.ReadAsync();
        await first.SendAsync("<presence/>");
        await first.DrainAsync();
        first.Abort();
        await first.DisposeAsync();

        await server.WaitForLogAsync("Connection lost for " + jid);
        await using var bob = await ImTests.OnlineAsync(server, "bob", "builder");
        await bob.SendAsync($"<message to='{jid}' type='chat'><body>while away</body></message>");
        await bob.DrainAsync();

        await using var c = await RawXmppClient.ConnectAsync(server.C2sPort);
        await c.OpenAsync();
        await c.StartTlsAsync();
        await c.OpenAsync();
        var (resumed, _) = await AuthenticateAsync(c, "alice", "wonderland", $"<resume xmlns='{Sm}' previd='{id}' h='0'/>");
        Assert.That(resumed.Child("resumed", Sm), Is.Not.Null, resumed.ToString());
        Assert.That(resumed.ChildText("authorization-identifier", Sasl2), Is.EqualTo(jid));
        var seen = new List<Element>();
        while (!seen.Any(e => e.Name == "message"))
        {
            seen.Add(await c.ReadAsync());
        }

        Assert.That(seen.Single(e => e.Name == "message").ChildText("body", "jabber:client"), Is.EqualTo("while away"));

        await using var wrong = await RawXmppClient.ConnectAsync(server.C2sPort);
        await wrong.OpenAsync();
        await wrong.StartTlsAsync();
        await wrong.OpenAsync();
        var (failure, _) = await AuthenticateAsync(wrong, "alice", "not her password", "");
        Assert.That(failure.Name, Is.EqualTo("failure"));
        Assert.That(failure.Child("not-authorized", "urn:ietf:params:xml:ns:xmpp-sasl"), Is.Not.Null);
    }

    [Test]
    public async Task A_fast_token_logs_in_without_the_password_rotates_and_can_be_invalidated()
    {
        await using var server = await TestServer.StartAsync(null, "alice@localhost:wonderland");
        const string Agent = "<user-agent id='0b7e1b4e-5f4c-4bd5-a1c6-3f3c2d1e9a10'><software>Test</software></user-agent>";
        string token;
        await using (var c = await OpenAsync(server))
        {
            var (success, _) = await AuthenticateAsync(c, "alice", "wonderland", Agent + "<request-token xmlns='urn:xmpp:fast:0' mechanism='HT-SHA-256-NONE'/>");
            var t = success.Child("token", "urn:xmpp:fast:0")!;
            token = t.GetAttribute("token")!;
            Assert.That(DateTimeOffset.Parse(t.GetAttribute("expiry")!, System.Globalization.CultureInfo.InvariantCulture), Is.GreaterThan(DateTimeOffset.UtcNow.AddDays(13)));
        }

        // The token alone logs in, and the server proves it knows it too; a new token is asked for.
        string rotated;
        await using (var c = await OpenAsync(server))
        {
            var outcome = await FastAsync(c, "alice", token, Agent + "<request-token xmlns='urn:xmpp:fast:0' mechanism='HT-SHA-256-NONE'/>");
            Assert.That(outcome.Name, Is.EqualTo("success"), outcome.ToString());
            Assert.That(Convert.FromBase64String(outcome.ChildText("additional-data", Sasl2)!), Is.EqualTo(Xmpp.Core.Sasl.HtServerMechanism.Responder(token, [])));
            rotated = outcome.Child("token", "urn:xmpp:fast:0")!.GetAttribute("token")!;
            Assert.That(rotated, Is.Not.EqualTo(token));
        }

        // Until the new token is used, the old one still works (the client may not have stored the new one);
        // once it is, the old one is gone.
        await using (var c = await OpenAsync(server))
        {
            Assert.That((await FastAsync(c, "alice", token, Agent)).Name, Is.EqualTo("success"));
        }

        await using (var c = await OpenAsync(server))
        {
            Assert.That((await FastAsync(c, "alice", rotated, Agent)).Name, Is.EqualTo("success"));
        }

        await using (var c = await OpenAsync(server))
        {
            Assert.That((await FastAsync(c, "alice", token, Agent)).Name, Is.EqualTo("failure"), "the old token after the new one was used");
        }

        // Another user agent cannot use it; invalidation ends it.
        await using (var c = await OpenAsync(server))
        {
            Assert.That((await FastAsync(c, "alice", rotated, "<user-agent id='another-device'/>")).Name, Is.EqualTo("failure"));
        }

        await using (var c = await OpenAsync(server))
        {
            Assert.That((await FastAsync(c, "alice", rotated, Agent + "<fast xmlns='urn:xmpp:fast:0' invalidate='true'/>")).Name, Is.EqualTo("success"));
        }

        await using (var c = await OpenAsync(server))
        {
            Assert.That((await FastAsync(c, "alice", rotated, Agent)).Name, Is.EqualTo("failure"));
        }
    }

    private static async Task<RawXmppClient> OpenAsync(TestServer server)
    {
        var c = await RawXmppClient.ConnectAsync(server.C2sPort);
        await c.OpenAsync();
        await c.StartTlsAsync();
        var features = await c.OpenAsync();
        Assert.That(features.Child("authentication", Sasl2)!.Child("inline", Sasl2)!.Child("fast", "urn:xmpp:fast:0")!.Elements().Select(e => e.Text), Does.Contain("HT-SHA-256-NONE"));
        return c;
    }

    private static async Task<Element> FastAsync(RawXmppClient c, string user, string token, string inline, string mechanism = "HT-SHA-256-NONE")
    {
        var binding = mechanism == "HT-SHA-256-EXPR" ? Xmpp.Server.Tls.TlsExporter.ChannelBinding(c.Tls!)! : [];
        var proof = Xmpp.Core.Sasl.HtServerMechanism.Initiator(token, binding);
        var initial = Convert.ToBase64String([.. Encoding.UTF8.GetBytes(user), 0, .. proof]);
        await c.SendAsync($"<authenticate xmlns='{Sasl2}' mechanism='{mechanism}'><initial-response>{initial}</initial-response>{inline}<fast xmlns='urn:xmpp:fast:0' count='1'/></authenticate>");
        return await c.ReadAsync();
    }

    /// <summary>
    /// XEP-0484: a token is bound to the mechanism it was requested for; one issued for -EXPR must not log in
    /// through -NONE, without the channel binding (and the other way round).
    /// </summary>
    [TestCase("HT-SHA-256-NONE", "HT-SHA-256-EXPR")]
    [TestCase("HT-SHA-256-EXPR", "HT-SHA-256-NONE")]
    public async Task A_fast_token_works_only_with_the_mechanism_it_was_issued_for(string issuedFor, string other)
    {
        await using var server = await TestServer.StartAsync(null, "alice@localhost:wonderland");
        const string Agent = "<user-agent id='5a0f3c8e-1d2b-4c6a-9e7f-0a1b2c3d4e5f'/>";
        string token;
        await using (var c = await OpenAsync(server))
        {
            var (success, _) = await AuthenticateAsync(c, "alice", "wonderland", Agent + $"<request-token xmlns='urn:xmpp:fast:0' mechanism='{issuedFor}'/>");
            token = success.Child("token", "urn:xmpp:fast:0")!.GetAttribute("token")!;
        }

        await using (var c = await OpenAsync(server))
        {
            var refused = await FastAsync(c, "alice", token, Agent, other);
            Assert.That(refused.Child("not-authorized", "urn:ietf:params:xml:ns:xmpp-sasl"), Is.Not.Null, refused.ToString());
        }

        await using (var c = await OpenAsync(server))
        {
            Assert.That((await FastAsync(c, "alice", token, Agent, issuedFor)).Name, Is.EqualTo("success"));
        }

        Assert.That(server.Logs, Has.Some.Contains($"Authentication failed for alice from").And.Contains($"with {other}: not-authorized"), "the refusal is logged for the account");
    }

    [Test]
    public async Task An_expired_fast_token_is_refused()
    {
        await using var server = await TestServer.StartAsync(null, "alice@localhost:wonderland");
        const string Agent = "<user-agent id='expiring-device'/>";
        string token;
        await using (var c = await OpenAsync(server))
        {
            var (success, _) = await AuthenticateAsync(c, "alice", "wonderland", Agent + "<request-token xmlns='urn:xmpp:fast:0' mechanism='HT-SHA-256-NONE'/>");
            token = success.Child("token", "urn:xmpp:fast:0")!.GetAttribute("token")!;
        }

        // Fourteen days later, as far as the stored token is concerned.
        var docs = server.Server.Context.Storage.Documents;
        var stored = ElementParser.Parse((await docs.GetAsync("localhost", "alice", "fast", "expiring-device", CancellationToken.None))!);
        stored.SetAttribute("expiry", DateTimeOffset.UtcNow.AddSeconds(-1).ToUnixTimeSeconds().ToString(System.Globalization.CultureInfo.InvariantCulture));
        await docs.SetAsync("localhost", "alice", "fast", "expiring-device", stored.ToString(), CancellationToken.None);

        await using var expired = await OpenAsync(server);
        var refused = await FastAsync(expired, "alice", token, Agent);
        Assert.That(refused.Child("not-authorized", "urn:ietf:params:xml:ns:xmpp-sasl"), Is.Not.Null, refused.ToString());
    }

    private static async Task<(Element Outcome, ScramClient Scram)> AuthenticateAsync(RawXmppClient c, string user, string password, string inline)
    {
        var scram = new ScramClient(ScramHash.Sha256, user, password);
        await c.SendAsync($"<authenticate xmlns='{Sasl2}' mechanism='SCRAM-SHA-256'><initial-response>{Convert.ToBase64String(Encoding.UTF8.GetBytes(scram.ClientFirst()))}</initial-response>{inline}</authenticate>");
        var challenge = await c.ReadAsync();
        if (challenge.Name != "challenge")
        {
            return (challenge, scram);
        }

        var final = scram.ClientFinal(Encoding.UTF8.GetString(Convert.FromBase64String(challenge.Text)));
        await c.SendAsync($"<response xmlns='{Sasl2}'>{Convert.ToBase64String(Encoding.UTF8.GetBytes(final))}</response>");
        return (await c.ReadAsync(), scram);
    }
}
