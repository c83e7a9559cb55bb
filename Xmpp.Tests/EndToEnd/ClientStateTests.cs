using Xmpp.Core.Xml;

namespace Xmpp.Tests.EndToEnd;

/// <summary>XEP-0352 client state indication.</summary>
public sealed class ClientStateTests
{
    private const string Csi = "urn:xmpp:csi:0";

    [Test]
    public async Task An_inactive_client_gets_collapsed_noise_only_when_something_important_arrives()
    {
        await using var server = await TestServer.StartAsync(null, "alice@localhost:wonderland", "bob@localhost:builder");
        await using var alice = await RawXmppClient.ConnectAsync(server.C2sPort);
        await alice.LoginAsync("alice", "wonderland", resource: "phone");
        await using var bob = await ImTests.OnlineAsync(server, "bob", "builder", "desk");
        await alice.IqAsync("<iq type='get' id='r0'><query xmlns='jabber:iq:roster'/></iq>");
        await alice.SendAsync("<presence/>");
        await ImTests.BefriendAsync(alice, "alice@localhost", bob, "bob@localhost");
        await alice.DrainAsync();

        await alice.SendAsync($"<inactive xmlns='{Csi}'/>");

        // A barrier: the server has handled <inactive/> before Bob's stanzas arrive (the ping result is an
        // iq, important, and finds nothing held yet).
        await alice.DrainAsync();
        foreach (var show in new[] { "away", "xa", "dnd" })
        {
            await bob.SendAsync($"<presence><show>{show}</show></presence>");
        }

        await bob.SendAsync("<message to='alice@localhost/phone' type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>");
        await bob.SendAsync("<message to='alice@localhost/phone' type='chat'><paused xmlns='http://jabber.org/protocol/chatstates'/></message>");
        await bob.DrainAsync();

        // What was held comes, collapsed, just before the first important stanza: had anything been sent
        // at once, Alice would see three presences and two chat states.
        await bob.SendAsync("<message to='alice@localhost/phone' type='chat'><body>wake up</body></message>");
        var seen = new List<string>();
        while (!seen.Contains("message wake up"))
        {
            seen.Add(Describe(await alice.ReadAsync()));
        }

        Assert.That(seen, Is.EqualTo(new[] { "presence dnd", "message paused", "message wake up" }));

        // <active/> lets go of what is held.
        await bob.SendAsync("<presence><show>chat</show></presence>");
        await bob.DrainAsync();
        await alice.SendAsync($"<active xmlns='{Csi}'/>");
        Assert.That(Describe(await alice.ReadAsync()), Is.EqualTo("presence chat"));

        // And while active, nothing waits.
        await bob.SendAsync("<presence><show>away</show></presence>");
        Assert.That(Describe(await alice.ReadAsync()), Is.EqualTo("presence away"));
    }

    private static string Describe(Element e) => e.Name switch
    {
        "presence" => "presence " + e.ChildText("show", "jabber:client"),
        "message" => "message " + (e.ChildText("body", "jabber:client") ?? e.FirstElement()?.Name),
        _ => e.Name,
    };
}
