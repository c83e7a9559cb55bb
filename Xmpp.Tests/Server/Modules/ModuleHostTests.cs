using Xmpp.Core.Xml;
using Xmpp.Server.Modules.Carbons;
using Xmpp.Server.Modules.Mam;
using Xmpp.Server.Storage;

namespace Xmpp.Tests.Server.Modules;

/// <summary>
/// Modules in the module test host: presence and roster (RFC 6121 §3, §4) with the core alone, and carbons
/// with archives (XEP-0280, XEP-0313) sharing one stanza. No streams, no sockets.
/// </summary>
public sealed class ModuleHostTests
{
    private static async Task BefriendAsync(ModuleTestHost host, FakeClient a, FakeClient b)
    {
        await host.SendAsync(a, $"<presence type='subscribe' to='{b.Jid.Bare}'/>");
        await host.SendAsync(b, $"<presence type='subscribed' to='{a.Jid.Bare}'/>");
        await host.SendAsync(b, $"<presence type='subscribe' to='{a.Jid.Bare}'/>");
        await host.SendAsync(a, $"<presence type='subscribed' to='{b.Jid.Bare}'/>");
        a.Take();
        b.Take();
    }

    private static IEnumerable<Element> Presences(IEnumerable<Element> written, string from, string? type = null) =>
        written.Where(e => e.Name == "presence" && e.GetAttribute("from") == from && e.GetAttribute("type") == type);

    [Test]
    [CancelAfter(60_000)]
    public async Task Contacts_see_each_others_resources_come_and_go()
    {
        await using var host = await ModuleTestHost.StartAsync([], "alice@localhost:a", "bob@localhost:b");
        var alice = await host.OnlineAsync("alice@localhost/phone");
        var bob = await host.OnlineAsync("bob@localhost/desk");
        await BefriendAsync(host, alice, bob);
        var roster = await host.Context.Modules.Rosters.GetAsync(alice.Jid, CancellationToken.None);
        Assert.That(roster.Find(bob.Jid)!.Subscription, Is.EqualTo(Subscription.Both));

        // §4.2.2: a new resource's initial presence goes to the contacts and the account's resources, and the
        // server probes the contacts for it; it also sees the account's other resources.
        var laptop = await host.BindAsync("alice@localhost/laptop");
        await host.SendAsync(laptop, "<presence><show>away</show></presence>");
        var bobSaw = Presences(bob.Take(), "alice@localhost/laptop").Single();
        Assert.That(bobSaw.GetAttribute("to"), Is.EqualTo("bob@localhost"));
        Assert.That(bobSaw.ChildText("show", "jabber:client"), Is.EqualTo("away"));
        Assert.That(Presences(alice.Take(), "alice@localhost/laptop"), Has.Exactly(1).Items);
        var laptopSaw = laptop.Take();
        Assert.That(Presences(laptopSaw, "bob@localhost/desk"), Has.Exactly(1).Items, "the probe answered");
        Assert.That(Presences(laptopSaw, "alice@localhost/phone"), Has.Exactly(1).Items);

        // §4.6.3 / §4.5.3.2: the session ends without unavailable presence; the server sends it for it.
        await ModuleTestHost.EndAsync(laptop);
        Assert.That(Presences(bob.Take(), "alice@localhost/laptop", "unavailable"), Has.Exactly(1).Items);
        Assert.That(Presences(alice.Take(), "alice@localhost/laptop", "unavailable"), Has.Exactly(1).Items);
        Assert.That(host.Context.Sessions.Find(laptop.Jid), Is.Null);
    }

    [Test]
    [CancelAfter(60_000)]
    public async Task A_sent_carbon_and_the_recipients_archived_copy_share_the_message_and_not_their_ids()
    {
        await using var host = await ModuleTestHost.StartAsync(["carbons", "mam"], "alice@localhost:a", "bob@localhost:b");
        var phone = await host.OnlineAsync("alice@localhost/phone");
        var laptop = await host.OnlineAsync("alice@localhost/laptop");
        var bob = await host.OnlineAsync("bob@localhost/desk");
        foreach (var c in new[] { phone, laptop })
        {
            var enabled = await host.IqAsync(c, $"<iq type='set' id='c'><enable xmlns='{CarbonsModule.Namespace}'/></iq>");
            Assert.That(enabled.GetAttribute("type"), Is.EqualTo("result"));
        }

        await host.SendAsync(phone, "<message to='bob@localhost' type='chat' id='m1'><body>hi</body></message>");
        var delivered = bob.Take().Single(e => e.Name == "message");
        var inner = laptop.Take().Single().Child("sent", CarbonsModule.Namespace)!.Child("forwarded", "urn:xmpp:forward:0")!.Child("message", "jabber:client")!;

        static IEnumerable<string?> Ids(Element m) => m.Elements().Where(e => e.Is("stanza-id", MamModule.StanzaIdNamespace)).Select(e => e.GetAttribute("by"));
        Assert.That(Ids(delivered), Is.EqualTo(new[] { "bob@localhost" }));
        Assert.That(Ids(inner), Has.None.EqualTo("bob@localhost"));
        Assert.That(inner.IsFrozen, Is.True, "the carbon wraps the routed stanza itself, which nobody can change");
        Assert.That(ReferenceEquals(inner.Child("body", "jabber:client"), delivered.Child("body", "jabber:client")), Is.True, "the body is shared, not copied");
    }
}
