using Xmpp.Core.Caps;
using Xmpp.Core.Xml;
using Xmpp.Server.Modules.Pep;

namespace Xmpp.Tests.EndToEnd;

/// <summary>XEP-0163 personal eventing with XEP-0115 +notify filtering, XEP-0060 publish-options and access models.</summary>
public sealed class PepTests
{
    private const string Avatar = "urn:xmpp:avatar:metadata";
    private const string Nick = "http://jabber.org/protocol/nick";
    private const string Event = PepModule.EventNamespace;

    [Test]
    public async Task After_a_reload_contacts_online_before_it_still_get_notifications()
    {
        await using var server = await TestServer.StartAsync(null, "alice@localhost:wonderland", "bob@localhost:builder");
        await using var alice = await ImTests.OnlineAsync(server, "alice", "wonderland", "phone", presence: "");
        await using var bob = await ImTests.OnlineAsync(server, "bob", "builder", "desk", presence: "");
        await ImTests.BefriendAsync(alice, "alice@localhost", bob, "bob@localhost");
        await AnnounceAsync(alice, []);
        await AnnounceAsync(bob, [Avatar + "+notify"]);
        await Settle(alice, bob);

        // A new generation of modules: what the old PEP module learnt of Bob's caps comes along.
        var reloaded = await server.Server.ReloadAsync(server.Server.Options, CancellationToken.None);
        Assert.That(reloaded.Applied, Is.True);
        Assert.That(server.Server.Modules.Loaded.OfType<PepModule>().Single(), Is.Not.Null);
        await alice.IqAsync(Publish("p1", Avatar, "a1", "<metadata xmlns='urn:xmpp:avatar:metadata'><info id='a1' bytes='10' type='image/png'/></metadata>"));
        Assert.That(Events(await bob.DrainAsync()), Is.EqualTo(new[] { $"{Avatar}:a1" }));
    }

    [Test]
    public async Task Published_items_reach_contacts_and_own_resources_that_want_them_and_only_those()
    {
        await using var server = await TestServer.StartAsync(null, "alice@localhost:wonderland", "bob@localhost:builder", "carol@localhost:singer");
        await using var alice = await ImTests.OnlineAsync(server, "alice", "wonderland", "phone", presence: "");
        await using var bob = await ImTests.OnlineAsync(server, "bob", "builder", "desk", presence: "");
        await using var carol = await ImTests.OnlineAsync(server, "carol", "singer", "tab", presence: "");
        await ImTests.BefriendAsync(alice, "alice@localhost", bob, "bob@localhost");

        // Alice's own laptop wants avatars; Bob wants avatars and nicknames; Carol (no subscription) wants both too.
        await using var laptop = await ImTests.OnlineAsync(server, "alice", "wonderland", "laptop", presence: "");
        await AnnounceAsync(alice, []);
        await AnnounceAsync(laptop, [Avatar + "+notify"]);
        await AnnounceAsync(bob, [Avatar + "+notify", Nick + "+notify"]);
        await AnnounceAsync(carol, [Avatar + "+notify", Nick + "+notify"]);
        await Settle(alice, laptop, bob, carol);

        var info = await alice.IqAsync("<iq type='get' id='d1' to='alice@localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
        Assert.That(info.FirstElement()!.Elements().Any(e => e.Name == "identity" && e.GetAttribute("category") == "pubsub" && e.GetAttribute("type") == "pep"));
        Assert.That(info.FirstElement()!.Elements().Select(e => e.GetAttribute("var")), Does.Contain(PepModule.Namespace + "#publish-options"));

        var published = await alice.IqAsync(Publish("p1", Avatar, "a1", "<metadata xmlns='urn:xmpp:avatar:metadata'><info id='a1' bytes='10' type='image/png'/></metadata>"));
        Assert.That(published.GetAttribute("type"), Is.EqualTo("result"));
        Assert.That(published.Child("pubsub", PepModule.Namespace)!.Child("publish", PepModule.Namespace)!.FirstElement()!.GetAttribute("id"), Is.EqualTo("a1"));

        Assert.That(Events(await laptop.DrainAsync()), Is.EqualTo(new[] { $"{Avatar}:a1" }), "own resource with +notify");
        Assert.That(Events(await bob.DrainAsync()), Is.EqualTo(new[] { $"{Avatar}:a1" }), "subscribed contact with +notify");
        Assert.That(Events(await carol.DrainAsync()), Is.Empty, "not subscribed to Alice's presence");
        Assert.That(Events(await alice.DrainAsync()), Is.Empty, "no +notify");

        // Open access lets anyone read, but notifications follow presence (XEP-0163 §4.3): not to Carol.
        await alice.IqAsync(Publish("p2", Nick, "n1", "<nick xmlns='http://jabber.org/protocol/nick'>Alice</nick>", "<field var='pubsub#access_model'><value>open</value></field>"));
        Assert.That(Events(await carol.DrainAsync()), Is.Empty);
        Assert.That(Events(await bob.DrainAsync()), Is.EqualTo(new[] { $"{Nick}:n1" }));
        Assert.That(Events(await laptop.DrainAsync()), Is.Empty);

        // Items: Bob may read the presence-access node, Carol may not; both may read the open one.
        var bobItems = await bob.IqAsync($"<iq type='get' id='i1' to='alice@localhost'><pubsub xmlns='{PepModule.Namespace}'><items node='{Avatar}'/></pubsub></iq>");
        Assert.That(bobItems.Child("pubsub", PepModule.Namespace)!.Child("items", PepModule.Namespace)!.Child("item", PepModule.Namespace)!.GetAttribute("id"), Is.EqualTo("a1"));
        var carolItems = await carol.IqAsync($"<iq type='get' id='i2' to='alice@localhost'><pubsub xmlns='{PepModule.Namespace}'><items node='{Avatar}'/></pubsub></iq>");
        var error = carolItems.Child("error", "jabber:client")!;
        Assert.That(error.Child("not-authorized", "urn:ietf:params:xml:ns:xmpp-stanzas"), Is.Not.Null);
        Assert.That(error.Child("presence-subscription-required", PepModule.ErrorsNamespace), Is.Not.Null);
        var carolNick = await carol.IqAsync($"<iq type='get' id='i3' to='alice@localhost'><pubsub xmlns='{PepModule.Namespace}'><items node='{Nick}'/></pubsub></iq>");
        Assert.That(carolNick.GetAttribute("type"), Is.EqualTo("result"));

        // Only the owner publishes.
        var forged = await bob.IqAsync($"<iq type='set' id='f1' to='alice@localhost'><pubsub xmlns='{PepModule.Namespace}'><publish node='{Nick}'><item><nick xmlns='{Nick}'>Mallory</nick></item></publish></pubsub></iq>");
        Assert.That(forged.Child("error", "jabber:client")!.Child("forbidden", "urn:ietf:params:xml:ns:xmpp-stanzas"), Is.Not.Null);

        // Retract notifies.
        await alice.IqAsync($"<iq type='set' id='r1'><pubsub xmlns='{PepModule.Namespace}'><retract node='{Nick}' notify='true'><item id='n1'/></retract></pubsub></iq>");
        var retracted = (await bob.DrainAsync()).Single(e => e.Name == "message");
        Assert.That(retracted.Child("event", Event)!.Child("items", Event)!.Child("retract", Event)!.GetAttribute("id"), Is.EqualTo("n1"));
        await carol.DrainAsync();

        // Bob's second device comes online and gets the last avatar at once.
        await using var tablet = await ImTests.OnlineAsync(server, "bob", "builder", "tablet", presence: "");
        await AnnounceAsync(tablet, [Avatar + "+notify"]);
        var last = Events(await Settle(tablet));
        Assert.That(last, Is.EqualTo(new[] { $"{Avatar}:a1" }));
    }

    [Test]
    public async Task Publish_options_max_items_and_whitelist_private_storage()
    {
        await using var server = await TestServer.StartAsync(null, "alice@localhost:wonderland", "bob@localhost:builder");
        await using var alice = await ImTests.OnlineAsync(server, "alice", "wonderland");
        await using var bob = await ImTests.OnlineAsync(server, "bob", "builder");
        await ImTests.BefriendAsync(alice, "alice@localhost", bob, "bob@localhost");

        // XEP-0402-style private node: whitelist, many items.
        const string Bookmarks = "urn:xmpp:bookmarks:1";
        var options = "<field var='pubsub#persist_items'><value>true</value></field><field var='pubsub#access_model'><value>whitelist</value></field><field var='pubsub#max_items'><value>max</value></field><field var='pubsub#send_last_published_item'><value>never</value></field>";
        foreach (var room in new[] { "tea", "chess", "news" })
        {
            var r = await alice.IqAsync(Publish("b" + room, Bookmarks, $"{room}@conference.localhost", $"<conference xmlns='{Bookmarks}' autojoin='true'/>", options));
            Assert.That(r.GetAttribute("type"), Is.EqualTo("result"), r.ToString());
        }

        var all = await alice.IqAsync($"<iq type='get' id='g1'><pubsub xmlns='{PepModule.Namespace}'><items node='{Bookmarks}'/></pubsub></iq>");
        Assert.That(ItemIds(all), Is.EqualTo(new[] { "tea@conference.localhost", "chess@conference.localhost", "news@conference.localhost" }));
        var newest = await alice.IqAsync($"<iq type='get' id='g2'><pubsub xmlns='{PepModule.Namespace}'><items node='{Bookmarks}' max_items='2'/></pubsub></iq>");
        Assert.That(ItemIds(newest), Is.EqualTo(new[] { "chess@conference.localhost", "news@conference.localhost" }));
        var one = await alice.IqAsync($"<iq type='get' id='g3'><pubsub xmlns='{PepModule.Namespace}'><items node='{Bookmarks}'><item id='tea@conference.localhost'/></items></pubsub></iq>");
        Assert.That(ItemIds(one), Is.EqualTo(new[] { "tea@conference.localhost" }));

        var denied = await bob.IqAsync($"<iq type='get' id='g4' to='alice@localhost'><pubsub xmlns='{PepModule.Namespace}'><items node='{Bookmarks}'/></pubsub></iq>");
        Assert.That(denied.Child("error", "jabber:client")!.Child("closed-node", PepModule.ErrorsNamespace), Is.Not.Null);

        // A precondition that does not hold is refused; the node is unchanged.
        var conflict = await alice.IqAsync(Publish("c1", Bookmarks, "x", $"<conference xmlns='{Bookmarks}'/>", "<field var='pubsub#access_model'><value>open</value></field>"));
        Assert.That(conflict.Child("error", "jabber:client")!.Child("precondition-not-met", PepModule.ErrorsNamespace), Is.Not.Null);

        // Default PEP node: one item; the configuration form shows it; the owner changes it.
        await alice.IqAsync(Publish("m1", "urn:example:mood", "1", "<mood xmlns='urn:example:mood'>happy</mood>"));
        await alice.IqAsync(Publish("m2", "urn:example:mood", "2", "<mood xmlns='urn:example:mood'>sleepy</mood>"));
        var moods = await alice.IqAsync($"<iq type='get' id='g5'><pubsub xmlns='{PepModule.Namespace}'><items node='urn:example:mood'/></pubsub></iq>");
        Assert.That(ItemIds(moods), Is.EqualTo(new[] { "2" }));
        var form = await alice.IqAsync($"<iq type='get' id='c2'><pubsub xmlns='{PepModule.OwnerNamespace}'><configure node='urn:example:mood'/></pubsub></iq>");
        var fields = DataFormValues(form.Child("pubsub", PepModule.OwnerNamespace)!.Child("configure", PepModule.OwnerNamespace)!.Child("x", "jabber:x:data")!);
        Assert.That(fields["pubsub#max_items"], Is.EqualTo("1"));
        Assert.That(fields["pubsub#access_model"], Is.EqualTo("presence"));

        // Disco#items lists what the asker may see: Bob sees the mood node, not the bookmarks.
        var bobItems = await bob.IqAsync("<iq type='get' id='di' to='alice@localhost'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>");
        Assert.That(bobItems.FirstElement()!.Elements().Select(e => e.GetAttribute("node")), Is.EqualTo(new[] { "urn:example:mood" }));

        // Delete.
        var deleted = await alice.IqAsync($"<iq type='set' id='x1'><pubsub xmlns='{PepModule.OwnerNamespace}'><delete node='urn:example:mood'/></pubsub></iq>");
        Assert.That(deleted.GetAttribute("type"), Is.EqualTo("result"));
        var gone = await alice.IqAsync($"<iq type='get' id='g6'><pubsub xmlns='{PepModule.Namespace}'><items node='urn:example:mood'/></pubsub></iq>");
        Assert.That(gone.Child("error", "jabber:client")!.Child("item-not-found", "urn:ietf:params:xml:ns:xmpp-stanzas"), Is.Not.Null);
    }

    private static string Publish(string id, string node, string itemId, string payload, string? options = null)
    {
        var publishOptions = options is null ? "" :
            $"<publish-options><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>{NodeConfig.PublishOptionsFormType}</value></field>{options}</x></publish-options>";
        return $"<iq type='set' id='{id}'><pubsub xmlns='{PepModule.Namespace}'><publish node='{node}'><item id='{itemId}'>{payload}</item></publish>{publishOptions}</pubsub></iq>";
    }

    /// <summary>Sends available presence with caps for these features and answers the server's disco#info queries about them.</summary>
    private static async Task AnnounceAsync(RawXmppClient client, string[] features)
    {
        var query = new Element("query", "http://jabber.org/protocol/disco#info");
        query.AddChild("identity").SetAttribute("category", "client").SetAttribute("type", "pc").SetAttribute("name", "test");
        foreach (var f in features.Append("http://jabber.org/protocol/disco#info"))
        {
            query.AddChild("feature").SetAttribute("var", f);
        }

        var ver = EntityCapabilities.Verification(query)!;
        client.CapsQuery = query;
        await client.SendAsync($"<presence>{EntityCapabilities.Element("https://test.example", ver)}</presence>");
    }

    /// <summary>Drains each client, answering caps queries, until nothing more arrives; returns what the first one saw.</summary>
    private static async Task<List<Element>> Settle(params RawXmppClient[] clients)
    {
        var first = new List<Element>();
        for (var round = 0; round < 4; round++)
        {
            foreach (var c in clients)
            {
                foreach (var e in await c.DrainAsync())
                {
                    if (e.Name == "iq" && e.GetAttribute("type") == "get" && e.Child("query", "http://jabber.org/protocol/disco#info") is { } q && c.CapsQuery is { } answer)
                    {
                        var reply = answer.Clone().SetAttribute("node", q.GetAttribute("node"));
                        await c.SendAsync($"<iq type='result' id='{e.GetAttribute("id")}' to='{e.GetAttribute("from")}'>{reply}</iq>");
                    }
                    else if (ReferenceEquals(c, clients[0]))
                    {
                        first.Add(e);
                    }
                }
            }
        }

        return first;
    }

    private static List<string> Events(List<Element> stanzas) =>
        stanzas.Where(e => e.Name == "message")
            .Select(e => e.Child("event", Event)?.Child("items", Event))
            .Where(i => i is not null)
            .SelectMany(i => i!.Elements().Where(x => x.Name == "item").Select(x => i.GetAttribute("node") + ":" + x.GetAttribute("id")))
            .ToList();

    private static List<string?> ItemIds(Element reply) =>
        reply.Child("pubsub", PepModule.Namespace)!.Child("items", PepModule.Namespace)!.Elements().Select(e => e.GetAttribute("id")).ToList();

    private static Dictionary<string, string> DataFormValues(Element form) =>
        form.Elements().Where(e => e.Name == "field" && e.GetAttribute("var") is not null)
            .ToDictionary(e => e.GetAttribute("var")!, e => e.ChildText("value", "jabber:x:data") ?? "");
}

/// <summary>XEP-0115 §6.3: the server's own caps.</summary>
public sealed class ServerCapsTests
{
    [Test]
    public async Task Stream_features_carry_the_servers_caps_which_verify_against_its_disco_info()
    {
        await using var server = await TestServer.StartAsync(null, "alice@localhost:wonderland");
        await using var c = await RawXmppClient.ConnectAsync(server.C2sPort);
        var features = await c.AuthenticateOnlyAsync("alice", "wonderland");
        var caps = features.Child("c", EntityCapabilities.Namespace)!;
        Assert.That(caps.GetAttribute("hash"), Is.EqualTo("sha-1"));
        await c.SendAsync("<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>");
        await c.ReadAsync();

        var node = caps.GetAttribute("node") + "#" + caps.GetAttribute("ver");
        var info = await c.IqAsync($"<iq type='get' id='d' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info' node='{node}'/></iq>");
        var query = info.Child("query", "http://jabber.org/protocol/disco#info")!;
        Assert.That(query.GetAttribute("node"), Is.EqualTo(node));
        Assert.That(EntityCapabilities.Verification(query), Is.EqualTo(caps.GetAttribute("ver")));
    }
}

/// <summary>XEP-0411: legacy (XEP-0048 in private XML) and native (XEP-0402) bookmarks in step.</summary>
public sealed class BookmarkConversionTests
{
    private const string Native = "urn:xmpp:bookmarks:1";

    [Test]
    public async Task Bookmarks_stored_either_way_are_seen_the_other_way()
    {
        await using var server = await TestServer.StartAsync(null, "alice@localhost:wonderland");
        await using var alice = await ImTests.OnlineAsync(server, "alice", "wonderland");
        var info = await alice.IqAsync("<iq type='get' id='d' to='alice@localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
        Assert.That(info.FirstElement()!.Elements().Select(e => e.GetAttribute("var")), Does.Contain(Native + "#compat"));

        // An old client stores two rooms and a URL the XEP-0048 way.
        await alice.IqAsync("<iq type='set' id='l1'><query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'>" +
            "<conference jid='tea@conference.localhost' name='Tea' autojoin='true'><nick>Alice</nick></conference>" +
            "<conference jid='chess@conference.localhost' name='Chess'/><url name='Home' url='https://example.org/'/></storage></query></iq>");
        Assert.That(await NativeAsync(alice), Is.EqualTo(new[] { "tea@conference.localhost Tea true Alice", "chess@conference.localhost Chess  " }));

        // A new client removes one room and adds another the XEP-0402 way.
        await alice.IqAsync($"<iq type='set' id='r'><pubsub xmlns='{PepModule.Namespace}'><retract node='{Native}'><item id='chess@conference.localhost'/></retract></pubsub></iq>");
        await alice.IqAsync($"<iq type='set' id='p'><pubsub xmlns='{PepModule.Namespace}'><publish node='{Native}'><item id='go@conference.localhost'><conference xmlns='{Native}' name='Go'><nick>A.</nick></conference></item></publish></pubsub></iq>");
        var legacy = (await alice.IqAsync("<iq type='get' id='l2'><query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'/></query></iq>"))
            .FirstElement()!.FirstElement()!;
        Assert.That(legacy.Elements().Where(e => e.Name == "conference").Select(e => e.GetAttribute("jid") + " " + e.ChildText("nick", "storage:bookmarks")),
            Is.EqualTo(new[] { "tea@conference.localhost Alice", "go@conference.localhost A." }));
        Assert.That(legacy.Child("url", "storage:bookmarks")!.GetAttribute("url"), Is.EqualTo("https://example.org/"), "URL bookmarks are kept");

        // And the old client's next store replaces the set again.
        await alice.IqAsync("<iq type='set' id='l3'><query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'><conference jid='go@conference.localhost' name='Go'><nick>A.</nick></conference></storage></query></iq>");
        Assert.That(await NativeAsync(alice), Is.EqualTo(new[] { "go@conference.localhost Go  A." }));
    }

    private static async Task<List<string>> NativeAsync(RawXmppClient client)
    {
        var items = await client.IqAsync($"<iq type='get' id='n{Guid.NewGuid():N}'><pubsub xmlns='{PepModule.Namespace}'><items node='{Native}'/></pubsub></iq>");
        return items.Child("pubsub", PepModule.Namespace)!.Child("items", PepModule.Namespace)!.Elements()
            .Select(i => (i.GetAttribute("id"), i.Child("conference", Native)!))
            .Select(p => $"{p.Item1} {p.Item2.GetAttribute("name")} {p.Item2.GetAttribute("autojoin")} {p.Item2.ChildText("nick", Native)}")
            .ToList();
    }
}

/// <summary>XEP-0398 with XEP-0153: PEP avatars and vCard photos are one avatar.</summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Security", "CA5350", Justification = "XEP-0084 and XEP-0153 name images by their SHA-1.")]
public sealed class AvatarConversionTests
{
    private const string Png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";

    [Test]
    public async Task A_pep_avatar_reaches_the_vcard_and_presence_and_a_vcard_photo_reaches_pep()
    {
        await using var server = await TestServer.StartAsync(null, "alice@localhost:wonderland", "bob@localhost:builder");
        await using var alice = await ImTests.OnlineAsync(server, "alice", "wonderland");
        await using var bob = await ImTests.OnlineAsync(server, "bob", "builder");
        await ImTests.BefriendAsync(alice, "alice@localhost", bob, "bob@localhost");
        await bob.DrainAsync();
        var info = await alice.IqAsync("<iq type='get' id='d' to='alice@localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
        Assert.That(info.FirstElement()!.Elements().Select(e => e.GetAttribute("var")), Does.Contain("urn:xmpp:pep-vcard-conversion:0"));

        // PEP → vCard and presence.
        var bytes = Convert.FromBase64String(Png);
        var id = Convert.ToHexStringLower(System.Security.Cryptography.SHA1.HashData(bytes));
        await alice.IqAsync($"<iq type='set' id='a1'><pubsub xmlns='{PepModule.Namespace}'><publish node='urn:xmpp:avatar:data'><item id='{id}'><data xmlns='urn:xmpp:avatar:data'>{Png}</data></item></publish></pubsub></iq>");
        await alice.IqAsync($"<iq type='set' id='a2'><pubsub xmlns='{PepModule.Namespace}'><publish node='urn:xmpp:avatar:metadata'><item id='{id}'><metadata xmlns='urn:xmpp:avatar:metadata'><info id='{id}' bytes='{bytes.Length}' type='image/png'/></metadata></item></publish></pubsub></iq>");
        var presence = (await bob.DrainAsync()).Last(e => e.Name == "presence");
        Assert.That(presence.Child("x", "vcard-temp:x:update")!.ChildText("photo", "vcard-temp:x:update"), Is.EqualTo(id));
        var vcard = (await bob.IqAsync("<iq type='get' id='v' to='alice@localhost'><vCard xmlns='vcard-temp'/></iq>")).Child("vCard", "vcard-temp")!;
        Assert.That(vcard.Child("PHOTO", "vcard-temp")!.ChildText("BINVAL", "vcard-temp"), Is.EqualTo(Png));
        Assert.That(vcard.Child("PHOTO", "vcard-temp")!.ChildText("TYPE", "vcard-temp"), Is.EqualTo("image/png"));

        // vCard → PEP: Bob sets a photo in his vCard the XEP-0153 way; Alice sees it on PEP and in his presence.
        var other = Convert.ToBase64String([.. bytes, 0]);
        var otherId = Convert.ToHexStringLower(System.Security.Cryptography.SHA1.HashData([.. bytes, 0]));
        await bob.IqAsync($"<iq type='set' id='v2'><vCard xmlns='vcard-temp'><FN>Bob</FN><PHOTO><TYPE>image/png</TYPE><BINVAL>{other}</BINVAL></PHOTO></vCard></iq>");
        await alice.DrainAsync();
        var meta = await alice.IqAsync($"<iq type='get' id='m' to='bob@localhost'><pubsub xmlns='{PepModule.Namespace}'><items node='urn:xmpp:avatar:metadata'/></pubsub></iq>");
        var infoElement = meta.Child("pubsub", PepModule.Namespace)!.Child("items", PepModule.Namespace)!.Child("item", PepModule.Namespace)!.Child("metadata", "urn:xmpp:avatar:metadata")!.Child("info", "urn:xmpp:avatar:metadata")!;
        Assert.That(infoElement.GetAttribute("id"), Is.EqualTo(otherId));
        var data = await alice.IqAsync($"<iq type='get' id='dd' to='bob@localhost'><pubsub xmlns='{PepModule.Namespace}'><items node='urn:xmpp:avatar:data'><item id='{otherId}'/></items></pubsub></iq>");
        Assert.That(data.Child("pubsub", PepModule.Namespace)!.Child("items", PepModule.Namespace)!.Child("item", PepModule.Namespace)!.ChildText("data", "urn:xmpp:avatar:data"), Is.EqualTo(other));

        await bob.SendAsync("<presence><x xmlns='vcard-temp:x:update'><photo>stale</photo></x></presence>");
        var fresh = await alice.ReadUntilAsync(e => e.Name == "presence" && e.GetAttribute("from") == "bob@localhost/r");
        Assert.That(fresh.Child("x", "vcard-temp:x:update")!.ChildText("photo", "vcard-temp:x:update"), Is.EqualTo(otherId));
    }
}
