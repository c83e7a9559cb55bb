using System.Text;
using Xmpp.Core.Sasl;
using Xmpp.Core.Xml;

namespace Xmpp.Tests.EndToEnd;

/// <summary>XEP-0388 SASL2 with XEP-0386 Bind2 and inline XEP-0198, with the raw client (no Debian client speaks urn:xmpp:sasl:2).</summary>
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
        var ping = await c.IqAsync("<iq type='get' id='p' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
        Assert.That(ping.GetAttribute("to"), Is.EqualTo(jid));

        // The same user agent gets the same resource next time.
        await using var again = await RawXmppClient.ConnectAsync(server.C2sPort);
        await again.OpenAsync();
        await again.StartTlsAsync();
        await again.OpenAsync();
        var (second, _) = await AuthenticateAsync(again, "alice", "wonderland", $"<user-agent id='d4565fa7-4d72-4749-b3d3-740edbf87770'/><bind xmlns='{Bind2}'><tag>Phone</tag></bind>");
        Assert.That(second.ChildText("authorization-identifier", Sasl2), Is.EqualTo(jid));

        Assert.That(await c.ReadStreamErrorAsync(), Is.EqualTo("conflict"), "the second login with the same resource replaced the first");
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

        await using var bob = await ImTests.OnlineAsync(server, "bob", "builder");
        await Task.Delay(200);
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
