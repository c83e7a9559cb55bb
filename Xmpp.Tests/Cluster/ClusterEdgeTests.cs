using Xmpp.Core;
using Xmpp.Core.Xml;
using Xmpp.Tests.EndToEnd;

namespace Xmpp.Tests.Cluster;

/// <summary>
/// An account's sessions on several nodes (README, "Running a cluster"): a client that logs in on a node other than
/// its account's home stays there, and its session is bound on the home, where the account's other sessions are.
/// </summary>
[TestFixture]
[NonParallelizable]
[ClusterLogs]
[CancelAfter(240_000)]
public sealed class ClusterEdgeTests
{
    private const string Carbons = "urn:xmpp:carbons:2";

    [Test]
    public async Task An_accounts_sessions_on_two_nodes_share_presence_carbons_priorities_and_conflicts()
    {
        await using var cluster = await ClusterNodes.CreateAsync(2, "alice", "bob");
        await cluster.StartAsync(0);
        await cluster.StartAsync(1);

        // Alice's phone makes node 1 her home; her laptop stays on node 2, where bob is.
        await using var phone = await cluster.LoginAsync(0, "alice", "phone");
        await using var laptop = await cluster.LoginAsync(1, "alice", "laptop");
        await using var bob = await cluster.LoginAsync(1, "bob", "desk");
        await cluster.WaitForLogAsync(0, "Bound alice@localhost/laptop here, its home, for its connection on n2");
        await phone.SendAsync("<presence><priority>5</priority></presence>");
        await laptop.SendAsync("<presence><priority>1</priority></presence>");
        await bob.SendAsync("<presence/>");

        // RFC 6121 §4.2.2: the account's other available resources get its presence, across nodes.
        var seen = await phone.ReadUntilAsync(e => e.Name == "presence" && e.GetAttribute("from") == "alice@localhost/laptop");
        Assert.That(seen.ChildText("priority", Ns.Client), Is.EqualTo("1"));

        // The laptop's requests are answered by the account's home.
        var roster = await laptop.IqAsync("<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>");
        Assert.That(roster.GetAttribute("type"), Is.EqualTo("result"), roster.ToString());

        // XEP-0280 on both: a message to the phone is copied to the laptop, one the laptop sends is copied to the phone.
        Assert.That((await phone.IqAsync($"<iq type='set' id='c1'><enable xmlns='{Carbons}'/></iq>")).GetAttribute("type"), Is.EqualTo("result"));
        Assert.That((await laptop.IqAsync($"<iq type='set' id='c2'><enable xmlns='{Carbons}'/></iq>")).GetAttribute("type"), Is.EqualTo("result"));
        await bob.SendAsync("<message to='alice@localhost/phone' type='chat' id='b1'><body>to the phone</body></message>");
        var direct = await phone.ReadUntilAsync(e => e.Name == "message" && e.GetAttribute("id") == "b1");
        Assert.That(direct.ChildText("body", Ns.Client), Is.EqualTo("to the phone"));
        var received = await laptop.ReadUntilAsync(e => e.Name == "message" && e.Child("received", Carbons) is not null);
        Assert.That(received.ToString(), Does.Contain("to the phone"));
        await laptop.SendAsync("<message to='bob@localhost' type='chat' id='a1'><body>from the laptop</body></message>");
        var fromLaptop = await bob.ReadUntilAsync(e => e.Name == "message" && e.GetAttribute("id") == "a1");
        Assert.That(fromLaptop.GetAttribute("from"), Is.EqualTo("alice@localhost/laptop"));
        var sent = await phone.ReadUntilAsync(e => e.Name == "message" && e.Child("sent", Carbons) is not null);
        Assert.That(sent.ToString(), Does.Contain("from the laptop"));

        // RFC 6121 §8.5.2.1.1: a message to the bare JID goes to the highest priority, whichever node it is on.
        await laptop.SendAsync("<presence><priority>10</priority></presence>");
        await phone.ReadUntilAsync(e => e.Name == "presence" && e.GetAttribute("from") == "alice@localhost/laptop" && e.ChildText("priority", Ns.Client) == "10");
        await bob.SendAsync("<message to='alice@localhost' type='chat' id='b2'><body>to the account</body></message>");
        var toAccount = await laptop.ReadUntilAsync(e => e.Name == "message" && (e.GetAttribute("id") == "b2" || e.Child("received", Carbons) is not null));
        Assert.That(toAccount.GetAttribute("id"), Is.EqualTo("b2"), toAccount.ToString());

        // RFC 6120 §7.7.2.2, decided on the home: binding the laptop's resource on node 1 replaces the session on node 2.
        await using var again = await cluster.LoginAsync(0, "alice", "laptop");
        Assert.That(await laptop.ReadStreamErrorAsync(), Is.EqualTo("conflict"));

        // And an edge session replaces a session on the home: the phone on node 1 is replaced by a login on node 2.
        await using var phone2 = await cluster.LoginAsync(1, "alice", "phone");
        Assert.That(await phone.ReadStreamErrorAsync(), Is.EqualTo("conflict"));

        // Ending a session on its edge ends it on the home: the account's other resources see it go.
        await again.SendAsync("<presence/>");
        await phone2.SendAsync("<presence/>");
        await again.ReadUntilAsync(e => e.Name == "presence" && e.GetAttribute("from") == "alice@localhost/phone");
        await phone2.CloseAsync();
        await again.ReadUntilAsync(e => e.Name == "presence" && e.GetAttribute("from") == "alice@localhost/phone" && e.GetAttribute("type") == "unavailable");
    }

    [Test]
    public async Task When_a_sessions_edge_dies_its_home_ends_it_and_when_its_home_dies_the_edge_closes_it()
    {
        await using var cluster = await ClusterNodes.CreateAsync(3, ["alice", "bob"], [("alice", "bob")]);
        for (var n = 0; n < 3; n++)
        {
            await cluster.StartAsync(n);
        }

        await using var phone = await cluster.LoginAsync(0, "alice", "phone");
        await using var laptop = await cluster.LoginAsync(1, "alice", "laptop");
        await using var tablet = await cluster.LoginAsync(2, "alice", "tablet");
        await using var bob = await cluster.LoginAsync(2, "bob", "desk");
        foreach (var c in new[] { phone, laptop, tablet, bob })
        {
            await c.SendAsync("<presence/>");
        }

        await bob.ReadUntilAsync(e => e.Name == "presence" && e.GetAttribute("from") == "alice@localhost/laptop");

        // A room of bob's, which the laptop joins from node 2 (its presence goes through alice's home).
        const string room = "edges@conference.localhost";
        await MucTests.JoinAsync(bob, "Bob", room);
        await MucTests.InstantRoomAsync(bob, room);
        await MucTests.JoinAsync(laptop, "Laptop", room);
        await bob.ReadUntilAsync(e => e.Name == "presence" && e.GetAttribute("from") == room + "/Laptop");

        // The laptop's node dies: its home ends the session, and alice's contact and other resources see it go; the
        // room removes it as one removed because of an error (XEP-0045 §9, status 333), not as a leave.
        bob.Received = [];
        cluster.Process(1).Kill9();
        var gone = await bob.ReadUntilAsync(e => e.Name == "presence" && e.GetAttribute("from") == "alice@localhost/laptop" && e.GetAttribute("type") == "unavailable");
        Assert.That(gone, Is.Not.Null);
        await phone.ReadUntilAsync(e => e.Name == "presence" && e.GetAttribute("from") == "alice@localhost/laptop" && e.GetAttribute("type") == "unavailable");
        bool Left(Element e) => e.Name == "presence" && e.GetAttribute("from") == room + "/Laptop" && e.GetAttribute("type") == "unavailable";
        var left = bob.Received.FirstOrDefault(Left) ?? await bob.ReadUntilAsync(Left);
        Assert.That(MucTests.Codes(left), Does.Contain("333"), left.ToString());

        // The home's node dies: the tablet, bound there from node 3, is told to log in again; bob keeps his session.
        cluster.Process(0).Kill9();
        Assert.That(await tablet.ReadStreamErrorAsync(), Is.EqualTo("reset"));
        await using var back = await cluster.LoginAsync(2, "alice", "tablet");
        await back.SendAsync("<presence><status>back</status></presence>");
        await bob.ReadUntilAsync(e => e.Name == "presence" && e.GetAttribute("from") == "alice@localhost/tablet" && e.ChildText("status", Ns.Client) == "back");
        await back.SendAsync("<message to='bob@localhost' type='chat' id='t1'><body>back</body></message>");
        await bob.ReadUntilAsync(e => e.Name == "message" && e.GetAttribute("id") == "t1");
    }

    [Test]
    public async Task Drains_hand_edge_sessions_to_their_homes_and_take_proxies_along_so_clients_resume_unseen()
    {
        await using var cluster = await ClusterNodes.CreateAsync(3, ["alice", "bob"], [("alice", "bob")]);
        for (var n = 0; n < 3; n++)
        {
            await cluster.StartAsync(n);
        }

        await using var bob = await cluster.LoginAsync(2, "bob", "desk");
        bob.Received = [];
        await bob.SendAsync("<presence/>");

        // Alice's phone on node 1 (her home), her laptop on node 2 (bound on node 1), both resumable (XEP-0198).
        var phone = await cluster.LoginAsync(0, "alice", "phone");
        var phoneId = await EnableAsync(phone);
        var laptop = await cluster.LoginAsync(1, "alice", "laptop");
        var laptopId = await EnableAsync(laptop);
        await bob.ReadUntilAsync(e => e.Name == "presence" && e.GetAttribute("from") == "alice@localhost/laptop");
        bob.Received.Clear();

        // A message the laptop receives and does not acknowledge: it comes again after the resumption.
        await bob.SendAsync("<message to='alice@localhost/laptop' type='chat' id='l1'><body>before</body></message>");
        await laptop.ReadUntilAsync(e => e.Name == "message" && e.GetAttribute("id") == "l1");

        // Node 2 drains: the laptop's session is handed to its home; its client resumes it on node 3.
        await cluster.Process(1).SignalAsync("TERM");
        Assert.That(await laptop.ReadStreamErrorAsync(), Is.EqualTo("system-shutdown"));
        laptop.Abort();
        await laptop.DisposeAsync();
        Assert.That(await cluster.Process(1).WaitForExitAsync(TimeSpan.FromSeconds(60)), Is.True, "node 2 stops after the drain");
        Assert.That(await File.ReadAllTextAsync(cluster.Log(1)), Does.Contain("Drained: 1 session(s) whose accounts are homed on other nodes handed to their homes"));
        await using var laptop2 = await ResumeAsync(cluster, 2, laptopId);
        await laptop2.ReadUntilAsync(e => e.Name == "message" && e.GetAttribute("id") == "l1");
        await bob.SendAsync("<message to='alice@localhost/laptop' type='chat' id='l2'><body>after the first drain</body></message>");
        await laptop2.ReadUntilAsync(e => e.Name == "message" && e.GetAttribute("id") == "l2");

        // Node 1, the home, drains: the phone is parked and the laptop's proxy goes along with the home.
        await cluster.Process(0).SignalAsync("TERM");
        Assert.That(await phone.ReadStreamErrorAsync(), Is.EqualTo("system-shutdown"));
        phone.Abort();
        await phone.DisposeAsync();
        Assert.That(await cluster.Process(0).WaitForExitAsync(TimeSpan.FromSeconds(60)), Is.True, "node 1 stops after the drain");
        await using var phone2 = await ResumeAsync(cluster, 2, phoneId);

        // Both sessions go on, and bob never saw alice go.
        await bob.SendAsync("<message to='alice@localhost/laptop' type='chat' id='l3'><body>after the second drain</body></message>");
        await laptop2.ReadUntilAsync(e => e.Name == "message" && e.GetAttribute("id") == "l3");
        await laptop2.SendAsync("<message to='bob@localhost' type='chat' id='a3'><body>still here</body></message>");
        await bob.ReadUntilAsync(e => e.Name == "message" && e.GetAttribute("id") == "a3");
        await bob.SendAsync("<message to='alice@localhost/phone' type='chat' id='p3'><body>and you</body></message>");
        await phone2.ReadUntilAsync(e => e.Name == "message" && e.GetAttribute("id") == "p3");
        Assert.That(bob.Received.Where(e => e.Name == "presence" && e.GetAttribute("type") == "unavailable").Select(e => e.ToString()), Is.Empty);
    }

    [Test]
    public async Task A_session_whose_connection_dropped_on_a_node_other_than_its_home_resumes_on_a_third_node()
    {
        await using var cluster = await ClusterNodes.CreateAsync(3, ["alice", "bob"], [("alice", "bob")]);
        for (var n = 0; n < 3; n++)
        {
            await cluster.StartAsync(n);
        }

        await using var bob = await cluster.LoginAsync(2, "bob", "desk");
        await bob.SendAsync("<presence/>");
        await using var phone = await cluster.LoginAsync(0, "alice", "phone");
        await phone.SendAsync("<presence/>");
        var laptop = await cluster.LoginAsync(1, "alice", "laptop");
        var laptopId = await EnableAsync(laptop);
        await bob.ReadUntilAsync(e => e.Name == "presence" && e.GetAttribute("from") == "alice@localhost/laptop");
        bob.Received = [];
        await bob.SendAsync("<message to='alice@localhost/laptop' type='chat' id='d1'><body>before the drop</body></message>");
        await laptop.ReadUntilAsync(e => e.Name == "message" && e.GetAttribute("id") == "d1");

        // The laptop's connection drops (no stream close): its session waits on node 2, where its stream was.
        laptop.Abort();
        await laptop.DisposeAsync();
        await cluster.WaitForLogAsync(1, "Connection lost for alice@localhost/laptop");
        await bob.SendAsync("<message to='alice@localhost/laptop' type='chat' id='d2'><body>while away</body></message>");

        // Its client resumes on node 3: the session is taken from node 2 through the account's home (node 1).
        await using var again = await ResumeAsync(cluster, 2, laptopId);
        await again.ReadUntilAsync(e => e.Name == "message" && e.GetAttribute("id") == "d1");
        await again.ReadUntilAsync(e => e.Name == "message" && e.GetAttribute("id") == "d2");
        await again.SendAsync("<message to='bob@localhost' type='chat' id='d3'><body>back</body></message>");
        await bob.ReadUntilAsync(e => e.Name == "message" && e.GetAttribute("id") == "d3");
        Assert.That(bob.Received.Where(e => e.Name == "presence" && e.GetAttribute("type") == "unavailable").Select(e => e.ToString()), Is.Empty);
    }

    [Test]
    public async Task A_message_a_session_on_another_node_never_acknowledged_goes_to_the_accounts_other_session()
    {
        await using var cluster = await ClusterNodes.CreateAsync(2, "alice", "bob");
        await cluster.StartAsync(0);
        await cluster.StartAsync(1);
        await using var phone = await cluster.LoginAsync(0, "alice", "phone");
        await phone.SendAsync("<presence/>");
        await using var laptop = await cluster.LoginAsync(1, "alice", "laptop");
        await EnableAsync(laptop);
        await phone.ReadUntilAsync(e => e.Name == "presence" && e.GetAttribute("from") == "alice@localhost/laptop");
        await using var bob = await cluster.LoginAsync(1, "bob", "desk");
        await bob.SendAsync("<message to='alice@localhost/laptop' type='chat' id='u1'><body>never acknowledged</body></message>");
        await laptop.ReadUntilAsync(e => e.Name == "message" && e.GetAttribute("id") == "u1");

        // The laptop closes its stream without acknowledging it (XEP-0198 §4): its home delivers it to the phone, late.
        await laptop.CloseAsync();
        var again = await phone.ReadUntilAsync(e => e.Name == "message" && e.GetAttribute("id") == "u1");
        Assert.That(again.Child("delay", "urn:xmpp:delay"), Is.Not.Null, again.ToString());
        Assert.That(again.ChildText("body", Ns.Client), Is.EqualTo("never acknowledged"));
    }

    private static async Task<string> EnableAsync(RawXmppClient client)
    {
        await client.SendAsync("<enable xmlns='urn:xmpp:sm:3' resume='true'/>");
        var enabled = await client.ReadUntilAsync(e => e.Name == "enabled");
        await client.SendAsync("<presence/>");
        return enabled.GetAttribute("id")!;
    }

    private static async Task<RawXmppClient> ResumeAsync(ClusterNodes cluster, int node, string id)
    {
        var client = await RawXmppClient.ConnectAsync(cluster.Nodes[node].ClientPort, address: cluster.Nodes[node].Address.ToString());
        await client.AuthenticateOnlyAsync("alice", "pw-alice");
        await client.SendAsync($"<resume xmlns='urn:xmpp:sm:3' previd='{id}' h='0'/>");
        var resumed = await client.ReadAsync();
        Assert.That(resumed.Name, Is.EqualTo("resumed"), $"on node {node + 1}: {resumed}");
        return client;
    }
}
