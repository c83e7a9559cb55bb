using Xmpp.Server.Modules.PrivateStorage;
using Xmpp.Server.Modules.VCard;

namespace Xmpp.Tests.EndToEnd;

/// <summary>XEP-0049 private XML storage and XEP-0054 vcard-temp.</summary>
public sealed class ProfileStorageTests
{
    [Test]
    public async Task Private_fragments_are_kept_per_root_and_only_for_the_account_itself()
    {
        await using var server = await TestServer.StartAsync(null, "alice@localhost:wonderland", "bob@localhost:builder");
        await using var alice = await RawXmppClient.ConnectAsync(server.C2sPort);
        await using var bob = await RawXmppClient.ConnectAsync(server.C2sPort);
        await alice.LoginAsync("alice", "wonderland");
        await bob.LoginAsync("bob", "builder");

        // Nothing stored yet: the empty element comes back.
        var empty = await alice.IqAsync("<iq type='get' id='p0'><query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'/></query></iq>");
        Assert.That(empty.GetAttribute("type"), Is.EqualTo("result"));
        Assert.That(empty.FirstElement()!.FirstElement()!.Is("storage", "storage:bookmarks"));
        Assert.That(empty.FirstElement()!.FirstElement()!.ElementCount(), Is.Zero);

        var set = await alice.IqAsync("<iq type='set' id='p1'><query xmlns='jabber:iq:private'>" +
            "<storage xmlns='storage:bookmarks'><conference jid='tea@conference.localhost' autojoin='true'><nick>Alice</nick></conference></storage>" +
            "<prefs xmlns='client:prefs'><theme>dark</theme></prefs></query></iq>");
        Assert.That(set.GetAttribute("type"), Is.EqualTo("result"));

        var got = await alice.IqAsync("<iq type='get' id='p2'><query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'/></query></iq>");
        var storage = got.FirstElement()!.Child("storage", "storage:bookmarks")!;
        Assert.That(storage.Child("conference", "storage:bookmarks")!.GetAttribute("jid"), Is.EqualTo("tea@conference.localhost"));
        Assert.That(storage.Child("conference", "storage:bookmarks")!.ChildText("nick", "storage:bookmarks"), Is.EqualTo("Alice"));

        // Replacing one fragment leaves the other alone.
        await alice.IqAsync("<iq type='set' id='p3'><query xmlns='jabber:iq:private'><prefs xmlns='client:prefs'><theme>light</theme></prefs></query></iq>");
        var prefs = await alice.IqAsync("<iq type='get' id='p4' to='alice@localhost'><query xmlns='jabber:iq:private'><prefs xmlns='client:prefs'/></query></iq>");
        Assert.That(prefs.FirstElement()!.FirstElement()!.ChildText("theme", "client:prefs"), Is.EqualTo("light"));
        var again = await alice.IqAsync("<iq type='get' id='p5'><query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'/></query></iq>");
        Assert.That(again.FirstElement()!.FirstElement()!.ElementCount(), Is.EqualTo(1));

        // Bob can neither read nor write Alice's data; reserved namespaces are refused.
        var peek = await bob.IqAsync("<iq type='get' id='b1' to='alice@localhost'><query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'/></query></iq>");
        Assert.That(peek.Child("error", "jabber:client")!.Child("forbidden", "urn:ietf:params:xml:ns:xmpp-stanzas"), Is.Not.Null);
        var reserved = await alice.IqAsync("<iq type='set' id='p6'><query xmlns='jabber:iq:private'><query xmlns='jabber:iq:roster'/></query></iq>");
        Assert.That(reserved.Child("error", "jabber:client")!.Child("not-acceptable", "urn:ietf:params:xml:ns:xmpp-stanzas"), Is.Not.Null);
        var none = await alice.IqAsync("<iq type='get' id='p7'><query xmlns='jabber:iq:private'/></iq>");
        Assert.That(none.Child("error", "jabber:client")!.Child("not-acceptable", "urn:ietf:params:xml:ns:xmpp-stanzas"), Is.Not.Null);

        var info = await alice.IqAsync("<iq type='get' id='d1' to='alice@localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
        Assert.That(info.FirstElement()!.Elements().Where(e => e.Name == "feature").Select(e => e.GetAttribute("var")), Does.Contain(PrivateStorageModule.Namespace));
    }

    [Test]
    public async Task VCard_is_set_by_its_owner_readable_by_anyone_and_survives_a_restart()
    {
        var dataDir = Path.Combine(Path.GetTempPath(), "xmpp-vcard-" + Guid.NewGuid().ToString("N"));
        try
        {
            const string photo = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";
            await using (var server = await TestServer.StartAsync(o => o with { DataDirectory = dataDir, Storage = new Xmpp.Server.Config.StorageOptions { File = Path.Combine(dataDir, "xmpp.db") } }, "alice@localhost:wonderland", "bob@localhost:builder"))
            {
                await using var alice = await RawXmppClient.ConnectAsync(server.C2sPort);
                await using var bob = await RawXmppClient.ConnectAsync(server.C2sPort);
                await alice.LoginAsync("alice", "wonderland");
                await bob.LoginAsync("bob", "builder");

                // XEP-0054 §3.1: no vCard yet is an error: service-unavailable to others, as for an account that
                // does not exist (below), and item-not-found to the owner.
                var before = await bob.IqAsync("<iq type='get' id='v0' to='alice@localhost'><vCard xmlns='vcard-temp'/></iq>");
                Assert.That(before.Child("error", "jabber:client")!.Child("service-unavailable", "urn:ietf:params:xml:ns:xmpp-stanzas"), Is.Not.Null);
                var own = await alice.IqAsync("<iq type='get' id='v00'><vCard xmlns='vcard-temp'/></iq>");
                Assert.That(own.Child("error", "jabber:client")!.Child("item-not-found", "urn:ietf:params:xml:ns:xmpp-stanzas"), Is.Not.Null);

                var set = await alice.IqAsync("<iq type='set' id='v1'><vCard xmlns='vcard-temp'><FN>Alice Liddell</FN><NICKNAME>alice</NICKNAME>" +
                    $"<PHOTO><TYPE>image/png</TYPE><BINVAL>{photo}</BINVAL></PHOTO></vCard></iq>");
                Assert.That(set.GetAttribute("type"), Is.EqualTo("result"));

                var forged = await bob.IqAsync("<iq type='set' id='v2' to='alice@localhost'><vCard xmlns='vcard-temp'><FN>Mallory</FN></vCard></iq>");
                Assert.That(forged.Child("error", "jabber:client")!.Child("forbidden", "urn:ietf:params:xml:ns:xmpp-stanzas"), Is.Not.Null);

                var nobody = await bob.IqAsync("<iq type='get' id='v3' to='nobody@localhost'><vCard xmlns='vcard-temp'/></iq>");
                Assert.That(nobody.Child("error", "jabber:client")!.Child("service-unavailable", "urn:ietf:params:xml:ns:xmpp-stanzas"), Is.Not.Null);
            }

            await using (var server = await TestServer.StartAsync(o => o with { DataDirectory = dataDir, Storage = new Xmpp.Server.Config.StorageOptions { File = Path.Combine(dataDir, "xmpp.db") } }))
            {
                await using var bob = await RawXmppClient.ConnectAsync(server.C2sPort);
                await bob.LoginAsync("bob", "builder");
                var vcard = (await bob.IqAsync("<iq type='get' id='v4' to='alice@localhost'><vCard xmlns='vcard-temp'/></iq>")).Child("vCard", VCardModule.Namespace)!;
                Assert.That(vcard.ChildText("FN", VCardModule.Namespace), Is.EqualTo("Alice Liddell"));
                Assert.That(vcard.Child("PHOTO", VCardModule.Namespace)!.ChildText("BINVAL", VCardModule.Namespace), Is.EqualTo(photo));
            }
        }
        finally
        {
            Directory.Delete(dataDir, recursive: true);
        }
    }
}
