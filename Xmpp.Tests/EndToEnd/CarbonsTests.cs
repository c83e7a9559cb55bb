using Xmpp.Core.Xml;
using Xmpp.Server.Modules.Carbons;

namespace Xmpp.Tests.EndToEnd;

/// <summary>XEP-0280 message carbons.</summary>
public sealed class CarbonsTests
{
    private const string Forward = "urn:xmpp:forward:0";

    [Test]
    public async Task Enabled_resources_see_both_sides_of_every_conversation_and_others_do_not()
    {
        await using var server = await TestServer.StartAsync(null, "alice@localhost:wonderland", "bob@localhost:builder");
        await using var phone = await Online(server, "alice", "wonderland", "phone", carbons: true);
        await using var laptop = await Online(server, "alice", "wonderland", "laptop", carbons: true);
        await using var old = await Online(server, "alice", "wonderland", "old", carbons: false);
        await using var bob = await Online(server, "bob", "builder", "desk", carbons: false);
        await Sync(phone, laptop, old, bob);

        var info = await phone.IqAsync("<iq type='get' id='d1' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
        Assert.That(info.FirstElement()!.Elements().Where(e => e.Name == "feature").Select(e => e.GetAttribute("var")), Does.Contain(CarbonsModule.Namespace));

        // Bob writes to the phone: the laptop gets a received carbon, the old client nothing.
        await bob.SendAsync("<message to='alice@localhost/phone' type='chat' id='m1'><body>hi phone</body></message>");
        await bob.DrainAsync();
        Assert.That(Bodies(await phone.DrainAsync()), Is.EqualTo(new[] { "hi phone" }));
        var received = Carbons(await laptop.DrainAsync(), "received");
        Assert.That(received, Has.Count.EqualTo(1));
        Assert.That(received[0].Wrapper.GetAttribute("from"), Is.EqualTo("alice@localhost"));
        Assert.That(received[0].Wrapper.GetAttribute("to"), Is.EqualTo("alice@localhost/laptop"));
        Assert.That(received[0].Wrapper.GetAttribute("type"), Is.EqualTo("chat"));
        Assert.That(received[0].Inner.GetAttribute("from"), Is.EqualTo("bob@localhost/desk"));
        Assert.That(received[0].Inner.ChildText("body", "jabber:client"), Is.EqualTo("hi phone"));
        Assert.That(await old.DrainAsync(), Is.Empty);

        // The laptop answers: the phone gets a sent carbon, the laptop itself and the old client nothing.
        await laptop.SendAsync("<message to='bob@localhost' type='chat' id='m2'><body>hi bob</body></message>");
        await laptop.DrainAsync();
        Assert.That(Bodies(await bob.DrainAsync()), Is.EqualTo(new[] { "hi bob" }));
        var sent = Carbons(await phone.DrainAsync(), "sent");
        Assert.That(sent, Has.Count.EqualTo(1));
        Assert.That(sent[0].Inner.GetAttribute("from"), Is.EqualTo("alice@localhost/laptop"));
        Assert.That(sent[0].Inner.GetAttribute("to"), Is.EqualTo("bob@localhost"));
        Assert.That(await laptop.DrainAsync(), Is.Empty);
        Assert.That(await old.DrainAsync(), Is.Empty);

        // <private/> both ways: no copies, and the recipient's server removes the element.
        await laptop.SendAsync("<message to='bob@localhost/desk' type='chat'><body>secret</body><private xmlns='urn:xmpp:carbons:2'/></message>");
        await laptop.DrainAsync();
        var secret = (await bob.DrainAsync()).Single();
        Assert.That(secret.Child("private", CarbonsModule.Namespace), Is.Null);
        await bob.SendAsync("<message to='alice@localhost/phone' type='chat'><body>secret too</body><private xmlns='urn:xmpp:carbons:2'/></message>");
        await bob.DrainAsync();
        Assert.That(Bodies(await phone.DrainAsync()), Is.EqualTo(new[] { "secret too" }));
        Assert.That(await laptop.DrainAsync(), Is.Empty);

        // Not instant messaging: headline and groupchat, and a no-copy hint; a chat state without a body is.
        await bob.SendAsync("<message to='alice@localhost/phone' type='headline'><body>news</body></message>");
        await bob.SendAsync("<message to='alice@localhost/phone' type='chat'><body>hinted</body><no-copy xmlns='urn:xmpp:hints'/></message>");
        await bob.SendAsync("<message to='alice@localhost/phone'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>");
        await bob.DrainAsync();
        await phone.DrainAsync();
        var states = Carbons(await laptop.DrainAsync(), "received");
        Assert.That(states.Select(c => c.Inner.FirstElement()!.Name), Is.EqualTo(new[] { "composing" }));

        // To the bare JID with the old client at the highest priority: it alone gets the message (RFC 6121),
        // and both carbons-enabled resources get copies.
        await old.SendAsync("<presence><priority>5</priority></presence>");
        await Sync(phone, laptop, old, bob);
        await bob.SendAsync("<message to='alice@localhost' type='chat'><body>to the account</body></message>");
        await bob.DrainAsync();
        Assert.That(Bodies(await old.DrainAsync()), Is.EqualTo(new[] { "to the account" }));
        Assert.That(Carbons(await phone.DrainAsync(), "received").Single().Inner.ChildText("body", "jabber:client"), Is.EqualTo("to the account"));
        Assert.That(Carbons(await laptop.DrainAsync(), "received"), Has.Count.EqualTo(1));

        // Disabled again: no more copies for the laptop.
        Assert.That((await laptop.IqAsync("<iq type='set' id='off'><disable xmlns='urn:xmpp:carbons:2'/></iq>")).GetAttribute("type"), Is.EqualTo("result"));
        await bob.SendAsync("<message to='alice@localhost/phone' type='chat'><body>after</body></message>");
        await bob.DrainAsync();
        await phone.DrainAsync();
        Assert.That(await laptop.DrainAsync(), Is.Empty);
    }

    [Test]
    public void Eligibility_follows_the_suggested_rules()
    {
        static bool Eligible(string xml, bool outgoing = false) => CarbonsModule.IsEligible(ElementParser.Parse(xml), outgoing);
        Assert.Multiple(() =>
        {
            Assert.That(Eligible("<message xmlns='jabber:client' type='chat'/>"), Is.True);
            Assert.That(Eligible("<message xmlns='jabber:client'><body>x</body></message>"), Is.True);
            Assert.That(Eligible("<message xmlns='jabber:client' type='normal'><subject>x</subject></message>"), Is.False);
            Assert.That(Eligible("<message xmlns='jabber:client' type='groupchat'><body>x</body></message>"), Is.False);
            Assert.That(Eligible("<message xmlns='jabber:client' type='error'><body>x</body></message>"), Is.False);
            Assert.That(Eligible("<message xmlns='jabber:client'><received xmlns='urn:xmpp:receipts' id='a'/></message>"), Is.True);
            Assert.That(Eligible("<message xmlns='jabber:client' type='chat'><body>x</body><x xmlns='http://jabber.org/protocol/muc#user'/></message>"), Is.False);
            Assert.That(Eligible("<message xmlns='jabber:client' type='chat'><body>x</body><x xmlns='http://jabber.org/protocol/muc#user'/></message>", outgoing: true), Is.True);
            Assert.That(Eligible("<message xmlns='jabber:client' type='chat'><sent xmlns='urn:xmpp:carbons:2'/></message>"), Is.False);
        });
    }

    private static async Task<RawXmppClient> Online(TestServer server, string user, string password, string resource, bool carbons)
    {
        var client = await RawXmppClient.ConnectAsync(server.C2sPort);
        await client.LoginAsync(user, password, resource: resource);
        if (carbons)
        {
            Assert.That((await client.IqAsync("<iq type='set' id='on'><enable xmlns='urn:xmpp:carbons:2'/></iq>")).GetAttribute("type"), Is.EqualTo("result"));
        }

        await client.SendAsync("<presence/>");
        return client;
    }

    /// <summary>Lets every presence settle and throws it away.</summary>
    private static async Task Sync(params RawXmppClient[] clients)
    {
        foreach (var c in clients)
        {
            await c.DrainAsync();
        }

        foreach (var c in clients)
        {
            await c.DrainAsync();
        }
    }

    private static List<string> Bodies(List<Element> stanzas) =>
        stanzas.Where(e => e.Name == "message").Select(e => e.ChildText("body", "jabber:client") ?? "").ToList();

    private static List<(Element Wrapper, Element Inner)> Carbons(List<Element> stanzas, string direction) =>
        stanzas.Where(e => e.Name == "message")
            .Select(e => (e, e.Child(direction, CarbonsModule.Namespace)?.Child("forwarded", Forward)?.Child("message", "jabber:client")))
            .Where(p => p.Item2 is not null)
            .Select(p => (p.e, p.Item2!))
            .ToList();
}
