using Xmpp.Core.Xml;
using Xmpp.Server.Modules.Carbons;
using Xmpp.Server.Modules.Mam;

namespace Xmpp.Tests.EndToEnd;

/// <summary>
/// One routed stanza is held by many at once: the sender's sent carbons wrap it, the recipients' queues hold
/// it, and each recipient's archive gives it an id of its own (XEP-0313 §5.1.2, XEP-0359). What one of them
/// changes must never show in what another one sends: here, the stanza-id a recipient's archive stamps must
/// not appear in the sender's carbon, and no writer may see an element change while it writes it.
/// </summary>
public sealed class SharedStanzaTests
{
    private const int Messages = 1000;

    /// <summary>
    /// Big enough that the watcher's carbons cannot all sit in the kernel's socket buffers (a few MiB on
    /// loopback) while it does not read: the rest wait in the server's queue, as elements, while the
    /// recipients' archives handle the same messages.
    /// </summary>
    private static readonly string Filler = new('x', 8000);

    [Test]
    [CancelAfter(120_000)]
    public async Task A_recipients_archive_id_never_shows_in_the_senders_carbons_under_load()
    {
        await using var server = await TestServer.StartAsync(
            o => o with { Limits = o.Limits with { StanzaRate = 0 } },
            "alice@localhost:wonderland", "bob@localhost:builder", "carol@localhost:singer");
        await using var sender = await Online(server, "alice", "wonderland", "writer");
        await using var watcher = await Online(server, "alice", "wonderland", "watcher");
        var recipients = new List<RawXmppClient>();
        foreach (var (user, password) in new[] { ("bob", "builder"), ("carol", "singer") })
        {
            for (var r = 0; r < 3; r++)
            {
                recipients.Add(await Online(server, user, password, "r" + r));
            }
        }

        // Every recipient reads all the time; the watcher does not read until the end, so that its carbons
        // wait in its queue while the recipients' archives handle the messages they wrap.
        var reading = recipients.Select(ReadMessagesAsync).ToList();
        for (var i = 0; i < Messages; i++)
        {
            var to = i % 2 == 0 ? "bob@localhost" : "carol@localhost";
            await sender.SendAsync($"<message to='{to}' type='chat' id='m{i}'><body>message {i} {Filler}</body></message>");
        }

        // Once the sender's ping is answered, every message has been through every hook (the server handles a
        // stream's stanzas in order); only then does the watcher read its carbons.
        await sender.DrainAsync();
        var sent = await ReadSentCarbonsAsync(watcher);
        Assert.That(sent, Has.Count.EqualTo(Messages));
        foreach (var inner in sent)
        {
            var by = inner.Elements().Where(e => e.Is("stanza-id", MamModule.StanzaIdNamespace)).Select(e => e.GetAttribute("by")).ToList();
            Assert.That(by, Has.None.EqualTo("bob@localhost").And.None.EqualTo("carol@localhost"), "a recipient's archive id in the sender's carbon: " + inner);
        }

        // Each recipient's copy carries its own archive's id and no one else's.
        foreach (var (client, index) in recipients.Select((c, i) => (c, i)))
        {
            var got = await reading[index];
            var owner = index < 3 ? "bob@localhost" : "carol@localhost";
            foreach (var m in got)
            {
                var by = m.Elements().Where(e => e.Is("stanza-id", MamModule.StanzaIdNamespace)).Select(e => e.GetAttribute("by")).ToList();
                Assert.That(by, Is.EqualTo(new[] { owner }), m.ToString());
            }
        }

        Assert.That(server.ErrorLogs, Is.Empty);
    }

    private static async Task<RawXmppClient> Online(TestServer server, string user, string password, string resource)
    {
        var client = await RawXmppClient.ConnectAsync(server.C2sPort);
        await client.LoginAsync(user, password, resource: resource);
        Assert.That((await client.IqAsync("<iq type='set' id='on'><enable xmlns='urn:xmpp:carbons:2'/></iq>")).GetAttribute("type"), Is.EqualTo("result"));
        await client.SendAsync("<presence/>");
        await client.DrainAsync();
        return client;
    }

    /// <summary>
    /// What a recipient resource gets of its account's share: each message once, either itself or, where the
    /// server gave it to another resource of the account, as a received carbon; the messages themselves are
    /// returned (not their carbons).
    /// </summary>
    private static async Task<List<Element>> ReadMessagesAsync(RawXmppClient client)
    {
        var got = new List<Element>();
        var seen = 0;
        while (seen < Messages / 2)
        {
            var e = await client.ReadAsync();
            if (e.Name == "message" && e.ChildText("body", "jabber:client") is not null)
            {
                got.Add(e);
                seen++;
            }
            else if (e.Child("received", CarbonsModule.Namespace) is not null)
            {
                seen++;
            }
        }

        return got;
    }

    /// <summary>The messages inside the sent carbons the watcher gets.</summary>
    private static async Task<List<Element>> ReadSentCarbonsAsync(RawXmppClient watcher)
    {
        var got = new List<Element>();
        while (got.Count < Messages)
        {
            var e = await watcher.ReadAsync();
            var inner = e.Child("sent", CarbonsModule.Namespace)?.Child("forwarded", "urn:xmpp:forward:0")?.Child("message", "jabber:client");
            if (inner is not null)
            {
                got.Add(inner);
            }
        }

        return got;
    }
}
