using System.Globalization;
using Xmpp.Core.Xml;
using Xmpp.Server.Modules.Mam;

namespace Xmpp.Tests.EndToEnd;

/// <summary>XEP-0313 message archives with XEP-0059 paging and XEP-0359 stanza ids.</summary>
public sealed class MamTests
{
    private const string Stanzas = "urn:ietf:params:xml:ns:xmpp-stanzas";

    [Test]
    public async Task Both_sides_of_a_conversation_are_archived_and_paged_in_both_directions()
    {
        await using var server = await TestServer.StartAsync(null, "alice@localhost:wonderland", "bob@localhost:builder", "carol@localhost:singer");
        await using var alice = await ImTests.OnlineAsync(server, "alice", "wonderland");
        await using var bob = await ImTests.OnlineAsync(server, "bob", "builder");
        await using var carol = await ImTests.OnlineAsync(server, "carol", "singer");

        var info = await alice.IqAsync("<iq type='get' id='d1' to='alice@localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
        Assert.That(info.FirstElement()!.Elements().Select(e => e.GetAttribute("var")), Does.Contain(MamModule.Namespace).And.Contain(MamModule.StanzaIdNamespace));

        var stanzaIds = new List<string>();
        for (var i = 0; i < 30; i++)
        {
            var (from, to, toJid) = i % 2 == 0 ? (alice, bob, "bob@localhost") : (bob, alice, "alice@localhost");
            await from.SendAsync($"<message to='{toJid}' type='chat' id='m{i}'><body>message {i}</body></message>");
            var got = await to.ReadUntilAsync(e => e.Name == "message");
            var sid = got.Child("stanza-id", MamModule.StanzaIdNamespace)!;
            Assert.That(sid.GetAttribute("by"), Is.EqualTo(toJid));
            if (to == alice)
            {
                stanzaIds.Add(sid.GetAttribute("id")!);
            }
        }

        // Not archived: a no-store hint, a headline, and Carol's messages to Alice's archive once Alice says never for her.
        await bob.SendAsync("<message to='alice@localhost' type='chat'><body>ephemeral</body><no-store xmlns='urn:xmpp:hints'/></message>");
        await bob.SendAsync("<message to='alice@localhost' type='headline'><body>news</body></message>");
        var prefs = await alice.IqAsync("<iq type='set' id='pr'><prefs xmlns='urn:xmpp:mam:2' default='always'><always/><never><jid>carol@localhost</jid></never></prefs></iq>");
        Assert.That(prefs.Child("prefs", MamModule.Namespace)!.Child("never", MamModule.Namespace)!.ChildText("jid", MamModule.Namespace), Is.EqualTo("carol@localhost"));
        await carol.SendAsync("<message to='alice@localhost' type='chat'><body>off the record</body></message>");
        await bob.DrainAsync();
        await carol.DrainAsync();
        await alice.DrainAsync();

        // Forward paging with after, 10 at a time.
        var all = new List<string>();
        string? after = null;
        for (var page = 0; ; page++)
        {
            var (results, fin) = await QueryAsync(alice, "q" + page, set: $"<max>10</max>{(after is null ? "" : $"<after>{after}</after>")}");
            all.AddRange(results.Select(Body));
            after = fin.Child("set", MamModule.RsmNamespace)!.ChildText("last", MamModule.RsmNamespace);
            if (fin.GetAttribute("complete") == "true")
            {
                Assert.That(page, Is.EqualTo(2));
                break;
            }
        }

        Assert.That(all, Is.EqualTo(Enumerable.Range(0, 30).Select(i => $"message {i}")));

        // The last page and backward paging from it.
        var (last, lastFin) = await QueryAsync(alice, "l1", set: "<max>5</max><before/>");
        Assert.That(last.Select(Body), Is.EqualTo(Enumerable.Range(25, 5).Select(i => $"message {i}")));
        Assert.That(lastFin.GetAttribute("complete"), Is.Null);
        var first = lastFin.Child("set", MamModule.RsmNamespace)!.ChildText("first", MamModule.RsmNamespace);
        var (previous, _) = await QueryAsync(alice, "l2", set: $"<max>5</max><before>{first}</before>");
        Assert.That(previous.Select(Body), Is.EqualTo(Enumerable.Range(20, 5).Select(i => $"message {i}")));

        // flip-page reverses a page; the result ids are the stanza ids the messages carried.
        var (flipped, _) = await QueryAsync(alice, "f1", set: "<max>3</max><before/>", flip: true);
        Assert.That(flipped.Select(Body), Is.EqualTo(new[] { "message 29", "message 28", "message 27" }));
        Assert.That(flipped[0].Child("result", MamModule.Namespace)!.GetAttribute("id"), Is.EqualTo(stanzaIds[^1]));

        // Filters: with, ids, start/end.
        var (withBob, _) = await QueryAsync(alice, "w1", form: "<field var='with'><value>bob@localhost</value></field>");
        Assert.That(withBob, Has.Count.EqualTo(30));
        var (byIds, _) = await QueryAsync(alice, "i1", form: $"<field var='ids'><value>{stanzaIds[0]}</value><value>{stanzaIds[3]}</value></field>");
        Assert.That(byIds.Select(Body), Is.EqualTo(new[] { "message 1", "message 7" }));
        var stamp = DateTime.UtcNow.AddMinutes(1).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
        var (future, futureFin) = await QueryAsync(alice, "t1", form: $"<field var='start'><value>{stamp}</value></field>");
        Assert.That(future, Is.Empty);
        Assert.That(futureFin.GetAttribute("complete"), Is.EqualTo("true"));
        var (past, _) = await QueryAsync(alice, "t2", form: $"<field var='end'><value>{stamp}</value></field>", set: "<max>100</max>");
        Assert.That(past, Has.Count.EqualTo(30));

        // Each result carries the original with its delay.
        var forwarded = withBob[1].Child("result", MamModule.Namespace)!.Child("forwarded", "urn:xmpp:forward:0")!;
        Assert.That(forwarded.Child("delay", "urn:xmpp:delay")!.GetAttribute("stamp"), Does.EndWith("Z"));
        Assert.That(forwarded.Child("message", "jabber:client")!.GetAttribute("from"), Is.EqualTo("bob@localhost/r"));

        // Errors: an unknown id, another's archive, an unknown field.
        var unknown = await alice.IqAsync("<iq type='set' id='e1'><query xmlns='urn:xmpp:mam:2'><set xmlns='http://jabber.org/protocol/rsm'><after>nope</after></set></query></iq>");
        Assert.That(unknown.Child("error", "jabber:client")!.Child("item-not-found", Stanzas), Is.Not.Null);
        var other = await carol.IqAsync("<iq type='set' id='e2' to='alice@localhost'><query xmlns='urn:xmpp:mam:2'/></iq>");
        Assert.That(other.Child("error", "jabber:client")!.Child("forbidden", Stanzas), Is.Not.Null);
        var field = await alice.IqAsync("<iq type='set' id='e3'><query xmlns='urn:xmpp:mam:2'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field><field var='colour'><value>red</value></field></x></query></iq>");
        Assert.That(field.Child("error", "jabber:client")!.Child("bad-request", Stanzas), Is.Not.Null);

        var metadata = (await alice.IqAsync("<iq type='get' id='md'><metadata xmlns='urn:xmpp:mam:2'/></iq>")).Child("metadata", MamModule.Namespace)!;
        Assert.That(metadata.Child("end", MamModule.Namespace)!.GetAttribute("id"), Is.EqualTo(stanzaIds[^1]));
    }

    [Test]
    public async Task A_message_to_an_offline_account_is_archived_and_delivered_with_its_stanza_id()
    {
        await using var server = await TestServer.StartAsync(null, "alice@localhost:wonderland", "bob@localhost:builder");
        await using var alice = await ImTests.OnlineAsync(server, "alice", "wonderland");
        await alice.SendAsync("<message to='bob@localhost' type='chat' id='o1'><body>while you were out</body></message>");
        await alice.DrainAsync();

        await using var bob = await RawXmppClient.ConnectAsync(server.C2sPort);
        await bob.LoginAsync("bob", "builder");
        await bob.SendAsync("<presence/>");
        var delivered = await bob.ReadUntilAsync(e => e.Name == "message");
        var id = delivered.Child("stanza-id", MamModule.StanzaIdNamespace)!.GetAttribute("id");
        var (archived, _) = await QueryAsync(bob, "o");
        Assert.That(archived.Single().Child("result", MamModule.Namespace)!.GetAttribute("id"), Is.EqualTo(id));

        // Alice's own archive has it too, as sent.
        var (sent, _) = await QueryAsync(alice, "s");
        Assert.That(sent.Select(Body), Is.EqualTo(new[] { "while you were out" }));
    }

    [Test]
    public async Task A_message_sent_again_after_a_lost_session_is_archived_once_and_carries_its_first_stanza_id()
    {
        await using var server = await TestServer.StartAsync(null, "alice@localhost:wonderland", "bob@localhost:builder");
        await using var alice = await ImTests.OnlineAsync(server, "alice", "wonderland");
        await using var bob = await ImTests.OnlineAsync(server, "bob", "builder");

        // Alice's client lost its session before the server acknowledged this message, and sends it again on its
        // next one (XEP-0198 §5), with the same origin id (XEP-0359): Bob receives it twice (the server cannot know
        // the first one arrived), both times with the same stanza id, and both archives keep it once.
        const string Sent = "<message to='bob@localhost' type='chat' id='again'><body>did this arrive?</body><origin-id xmlns='urn:xmpp:sid:0' id='5f1e0c1a-origin'/></message>";
        await alice.SendAsync(Sent);
        var first = await bob.ReadUntilAsync(e => e.Name == "message");
        await alice.SendAsync(Sent.Replace("id='again'", "id='again-2'", StringComparison.Ordinal));
        var second = await bob.ReadUntilAsync(e => e.Name == "message");
        var firstId = first.Child("stanza-id", MamModule.StanzaIdNamespace)!.GetAttribute("id");
        Assert.That(second.Child("stanza-id", MamModule.StanzaIdNamespace)!.GetAttribute("id"), Is.EqualTo(firstId));

        // A new message with a new origin id is a new entry.
        await alice.SendAsync("<message to='bob@localhost' type='chat' id='next'><body>next</body><origin-id xmlns='urn:xmpp:sid:0' id='5f1e0c1a-next'/></message>");
        await bob.ReadUntilAsync(e => e.Name == "message" && e.GetAttribute("id") == "next");
        await alice.DrainAsync();

        var (archived, _) = await QueryAsync(bob, "b");
        Assert.That(archived.Select(Body), Is.EqualTo(new[] { "did this arrive?", "next" }));
        Assert.That(archived[0].Child("result", MamModule.Namespace)!.GetAttribute("id"), Is.EqualTo(firstId));
        var (sent, _) = await QueryAsync(alice, "a");
        Assert.That(sent.Select(Body), Is.EqualTo(new[] { "did this arrive?", "next" }));
    }

    private static async Task<(List<Element> Results, Element Fin)> QueryAsync(RawXmppClient client, string queryId, string form = "", string set = "", bool flip = false)
    {
        var x = form.Length == 0 ? "" : $"<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field>{form}</x>";
        var rsm = set.Length == 0 ? "" : $"<set xmlns='http://jabber.org/protocol/rsm'>{set}</set>";
        await client.SendAsync($"<iq type='set' id='{queryId}'><query xmlns='urn:xmpp:mam:2' queryid='{queryId}'>{x}{rsm}{(flip ? "<flip-page/>" : "")}</query></iq>");
        var results = new List<Element>();
        while (true)
        {
            var e = await client.ReadAsync();
            if (e.Name == "iq" && e.GetAttribute("id") == queryId)
            {
                Assert.That(e.GetAttribute("type"), Is.EqualTo("result"), e.ToString());
                return (results, e.Child("fin", MamModule.Namespace)!);
            }

            if (e.Child("result", MamModule.Namespace) is { } r && r.GetAttribute("queryid") == queryId)
            {
                results.Add(e);
            }
        }
    }

    private static string Body(Element result) =>
        result.Child("result", MamModule.Namespace)!.Child("forwarded", "urn:xmpp:forward:0")!.Child("message", "jabber:client")!.ChildText("body", "jabber:client")!;
}
