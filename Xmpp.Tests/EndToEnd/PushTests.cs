using Xmpp.Core.Xml;
using Xmpp.Server.Modules.Push;

namespace Xmpp.Tests.EndToEnd;

/// <summary>XEP-0357 push notifications, with a raw client as the app server.</summary>
public sealed class PushTests
{
    private const string Sm = "urn:xmpp:sm:3";

    [Test]
    public async Task A_client_away_gets_notifications_through_its_app_server_until_the_app_server_refuses()
    {
        await using var server = await TestServer.StartAsync(null, "alice@localhost:wonderland", "carol@localhost:singer", "push@localhost:appserver");
        await using var appServer = await ImTests.OnlineAsync(server, "push", "appserver", "node");
        await using var carol = await ImTests.OnlineAsync(server, "carol", "singer", "desk");
        var phone = await ImTests.OnlineAsync(server, "alice", "wonderland", "phone");
        var info = await phone.IqAsync("<iq type='get' id='d' to='alice@localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
        Assert.That(info.FirstElement()!.Elements().Select(e => e.GetAttribute("var")), Does.Contain(PushModule.Namespace));

        var enabled = await phone.IqAsync("<iq type='set' id='e'><enable xmlns='urn:xmpp:push:0' jid='push@localhost/node' node='device-1'>" +
            "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>" +
            "<field var='secret'><value>s3cret</value></field></x></enable></iq>");
        Assert.That(enabled.GetAttribute("type"), Is.EqualTo("result"));

        // While connected the phone gets the message itself, and nothing is pushed.
        await carol.SendAsync("<message to='alice@localhost' type='chat'><body>are you there?</body></message>");
        await carol.DrainAsync();
        await phone.ReadUntilAsync(e => e.Name == "message");
        Assert.That((await appServer.DrainAsync()).Where(e => e.Name == "iq"), Is.Empty);

        // The phone's connection drops while its session waits for resumption: a notification per message.
        await phone.SendAsync($"<enable xmlns='{Sm}' resume='true'/>");
        await phone.ReadUntilAsync(e => e.Is("enabled", Sm));
        phone.Abort();
        await phone.DisposeAsync();
        await server.WaitForLogAsync("Connection lost for alice@localhost/phone");
        for (var i = 1; i <= 2; i++)
        {
            await carol.SendAsync($"<message to='alice@localhost' type='chat'><body>secret {i}</body></message>");
            var push = await appServer.ReadUntilAsync(e => e.Name == "iq" && e.GetAttribute("type") == "set");
            Assert.That(push.GetAttribute("from"), Is.EqualTo("alice@localhost"));
            var pubsub = push.Child("pubsub", "http://jabber.org/protocol/pubsub")!;
            Assert.That(pubsub.Child("publish", "http://jabber.org/protocol/pubsub")!.GetAttribute("node"), Is.EqualTo("device-1"));
            var summary = Fields(pubsub.Child("publish", "http://jabber.org/protocol/pubsub")!.FirstElement()!.Child("notification", PushModule.Namespace)!.FirstElement()!);
            Assert.That(summary["FORM_TYPE"], Is.EqualTo("urn:xmpp:push:summary"));
            Assert.That(summary["message-count"], Is.EqualTo(i.ToString(System.Globalization.CultureInfo.InvariantCulture)));
            Assert.That(summary["last-message-sender"], Is.EqualTo("carol@localhost/desk"));
            Assert.That(summary.ContainsKey("last-message-body"), Is.False, "no body unless configured");
            Assert.That(Fields(pubsub.Child("publish-options", "http://jabber.org/protocol/pubsub")!.FirstElement()!)["secret"], Is.EqualTo("s3cret"));
            await appServer.SendAsync($"<iq type='{(i == 1 ? "result" : "error")}' id='{push.GetAttribute("id")}' to='alice@localhost'>" +
                (i == 1 ? "" : "<error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>") + "</iq>");
            await appServer.DrainAsync();
        }

        // The app server said the node is gone: no more notifications.
        await carol.SendAsync("<message to='alice@localhost' type='chat'><body>third</body></message>");
        await carol.DrainAsync();
        Assert.That((await appServer.DrainAsync()).Where(e => e.Name == "iq"), Is.Empty);
    }

    private static Dictionary<string, string> Fields(Element form) =>
        form.Elements().Where(e => e.Name == "field").ToDictionary(e => e.GetAttribute("var")!, e => e.ChildText("value", "jabber:x:data") ?? "");
}
