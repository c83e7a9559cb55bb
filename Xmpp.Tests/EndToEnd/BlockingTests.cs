using Xmpp.Core.Addressing;
using Xmpp.Core.Xml;
using Xmpp.Server.Modules.Blocking;

namespace Xmpp.Tests.EndToEnd;

/// <summary>XEP-0191 blocking command.</summary>
public sealed class BlockingTests
{
    private const string Stanzas = "urn:ietf:params:xml:ns:xmpp-stanzas";

    [Test]
    public async Task A_blocked_contact_is_cut_off_both_ways_until_unblocked_and_the_list_survives_a_new_session()
    {
        await using var server = await TestServer.StartAsync(null, "alice@localhost:wonderland", "bob@localhost:builder");
        var alice = await ImTests.OnlineAsync(server, "alice", "wonderland", "one");
        await using var alice2 = await ImTests.OnlineAsync(server, "alice", "wonderland", "two");
        await using var bob = await ImTests.OnlineAsync(server, "bob", "builder", "desk");
        await ImTests.BefriendAsync(alice, "alice@localhost", bob, "bob@localhost");
        await alice2.DrainAsync();

        var info = await alice.IqAsync("<iq type='get' id='d1' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
        Assert.That(info.FirstElement()!.Elements().Where(e => e.Name == "feature").Select(e => e.GetAttribute("var")), Does.Contain(BlockingModule.Namespace));
        var empty = await alice.IqAsync("<iq type='get' id='l0'><blocklist xmlns='urn:xmpp:blocking'/></iq>");
        Assert.That(empty.Child("blocklist", BlockingModule.Namespace)!.ElementCount(), Is.Zero);
        await alice2.IqAsync("<iq type='get' id='l0'><blocklist xmlns='urn:xmpp:blocking'/></iq>");

        // Block: result, a push to both resources that asked for the list, unavailable presence to Bob.
        Assert.That((await alice.IqAsync("<iq type='set' id='b1'><block xmlns='urn:xmpp:blocking'><item jid='bob@localhost'/></block></iq>")).GetAttribute("type"), Is.EqualTo("result"));
        var push = (await alice2.DrainAsync()).Single(e => e.Name == "iq");
        Assert.That(push.Child("block", BlockingModule.Namespace)!.FirstElement()!.GetAttribute("jid"), Is.EqualTo("bob@localhost"));
        var bobSaw = await bob.DrainAsync();
        Assert.That(bobSaw.Where(e => e.Name == "presence").Select(e => (e.GetAttribute("from"), e.GetAttribute("type"))),
            Is.EquivalentTo(new[] { ("alice@localhost/one", "unavailable"), ("alice@localhost/two", "unavailable") }));

        // Bob's message bounces as if Alice were offline, his iq too; his presence is dropped silently.
        await bob.SendAsync("<message to='alice@localhost' type='chat' id='m1'><body>hello?</body></message>");
        await bob.SendAsync("<iq to='alice@localhost' type='get' id='v1'><vCard xmlns='vcard-temp'/></iq>");
        await bob.SendAsync("<presence><show>away</show></presence>");
        var bounced = await bob.DrainAsync();
        Assert.That(bounced.Single(e => e.Name == "message").Child("error", "jabber:client")!.Child("service-unavailable", Stanzas), Is.Not.Null);
        Assert.That(bounced.Single(e => e.Name == "iq").Child("error", "jabber:client")!.Child("service-unavailable", Stanzas), Is.Not.Null);
        Assert.That(await alice.DrainAsync(), Is.Empty);

        // Alice writing to Bob gets not-acceptable with <blocked/>, and Bob gets nothing.
        await alice.SendAsync("<message to='bob@localhost/desk' type='chat' id='m2'><body>you will not read this</body></message>");
        var refused = (await alice.DrainAsync()).Single();
        var error = refused.Child("error", "jabber:client")!;
        Assert.That(error.Child("not-acceptable", Stanzas), Is.Not.Null);
        Assert.That(error.Child("blocked", BlockingModule.ErrorsNamespace), Is.Not.Null);
        Assert.That(await bob.DrainAsync(), Is.Empty);

        // A new session still has the block.
        await alice.CloseAsync();
        await alice.DisposeAsync();
        await using var alice3 = await ImTests.OnlineAsync(server, "alice", "wonderland", "three");
        var list = await alice3.IqAsync("<iq type='get' id='l1'><blocklist xmlns='urn:xmpp:blocking'/></iq>");
        Assert.That(list.Child("blocklist", BlockingModule.Namespace)!.Elements().Select(e => e.GetAttribute("jid")), Is.EqualTo(new[] { "bob@localhost" }));
        Assert.That((await bob.DrainAsync()).Where(e => e.Name == "presence"), Is.Empty, "Bob must not see Alice's new resource");

        // Unblock everything: Bob sees Alice's current presence, and messages flow again.
        await alice2.DrainAsync();
        Assert.That((await alice3.IqAsync("<iq type='set' id='u1'><unblock xmlns='urn:xmpp:blocking'/></iq>")).GetAttribute("type"), Is.EqualTo("result"));
        Assert.That((await alice2.DrainAsync()).Single(e => e.Name == "iq").Child("unblock", BlockingModule.Namespace)!.ElementCount(), Is.Zero);
        var back = await bob.DrainAsync();
        Assert.That(back.Where(e => e.Name == "presence" && e.GetAttribute("type") is null).Select(e => e.GetAttribute("from")),
            Is.EquivalentTo(new[] { "alice@localhost/two", "alice@localhost/three" }));
        await bob.SendAsync("<message to='alice@localhost/three' type='chat'><body>there you are</body></message>");
        await bob.DrainAsync();
        Assert.That((await alice3.DrainAsync()).Single().ChildText("body", "jabber:client"), Is.EqualTo("there you are"));
    }

    [Test]
    public async Task Blocking_a_domain_covers_its_users_and_bad_requests_are_refused()
    {
        await using var server = await TestServer.StartAsync(null, "alice@localhost:wonderland");
        await using var alice = await ImTests.OnlineAsync(server, "alice", "wonderland");
        var none = await alice.IqAsync("<iq type='set' id='b0'><block xmlns='urn:xmpp:blocking'/></iq>");
        Assert.That(none.Child("error", "jabber:client")!.Child("bad-request", Stanzas), Is.Not.Null);
        var bad = await alice.IqAsync("<iq type='set' id='b1'><block xmlns='urn:xmpp:blocking'><item jid='@@'/></block></iq>");
        Assert.That(bad.Child("error", "jabber:client")!.Child("jid-malformed", Stanzas), Is.Not.Null);

        await alice.IqAsync("<iq type='set' id='b2'><block xmlns='urn:xmpp:blocking'><item jid='spam.example'/></block></iq>");
        await alice.SendAsync("<message to='someone@spam.example' type='chat'><body>x</body></message>");
        await alice.SendAsync("<message to='someone@sub.spam.example' type='chat'><body>x</body></message>");
        var refused = await alice.DrainAsync();
        Assert.That(refused.Count(e => e.Child("error", "jabber:client")?.Child("blocked", BlockingModule.ErrorsNamespace) is not null), Is.EqualTo(2));
    }

    [TestCase("juliet@capulet.com/balcony", "juliet@capulet.com/balcony", true)]
    [TestCase("juliet@capulet.com", "juliet@capulet.com/balcony", true)]
    [TestCase("juliet@capulet.com/balcony", "juliet@capulet.com/chamber", false)]
    [TestCase("capulet.com/balcony", "juliet@capulet.com/balcony", true)]
    [TestCase("capulet.com", "juliet@capulet.com", true)]
    [TestCase("capulet.com", "capulet.com", true)]
    [TestCase("capulet.com", "muc.capulet.com", true)]
    [TestCase("capulet.com", "nurse@muc.capulet.com/x", true)]
    [TestCase("muc.capulet.com", "capulet.com", false)]
    [TestCase("capulet.com", "montague.com", false)]
    [TestCase("juliet@capulet.com", "capulet.com", false)]
    public void Jid_matching_follows_the_xep(string item, string jid, bool blocked)
    {
        var list = new HashSet<string> { Jid.Parse(item).ToString() };
        Assert.That(BlockingModule.Matches(list, Jid.Parse(jid)), Is.EqualTo(blocked));
    }
}
