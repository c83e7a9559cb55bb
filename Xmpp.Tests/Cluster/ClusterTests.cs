using System.Collections.Concurrent;
using Xmpp.Core;
using Xmpp.Core.Xml;
using Xmpp.Tests.EndToEnd;

namespace Xmpp.Tests.Cluster;

/// <summary>
/// Cluster mode with real nodes (README, "Running a cluster"): two xmppserver processes on 127.0.0.1 and
/// 127.0.0.2 sharing one PostgreSQL database, and clients on both.
/// </summary>
[TestFixture]
[NonParallelizable]
[ClusterLogs]
[CancelAfter(240_000)]
public sealed class ClusterTests
{
    private const string Sm = "urn:xmpp:sm:3";

    [Test]
    public async Task Users_on_different_nodes_chat_subscribe_see_presence_and_query_each_other()
    {
        await using var cluster = await ClusterNodes.CreateAsync(2, "alice", "bob", "carol");
        await cluster.StartAsync(0);
        await cluster.StartAsync(1);

        // xmppserver check shows the members as the membership table has them.
        var (exit, output) = await cluster.CommandAsync(0, "check");
        Assert.That(exit, Is.Zero, output);
        Assert.That(output, Does.Contain("cluster test: this node is n1"));
        Assert.That(output, Does.Match("n1 at 127\\.0\\.0\\.1:[0-9]+ \\(epoch [0-9]+\\) active"));
        Assert.That(output, Does.Match("n2 at 127\\.0\\.0\\.2:[0-9]+ \\(epoch [0-9]+\\) active"));

        await using var alice = await cluster.LoginAsync(0, "alice", "phone");
        await using var bob = await cluster.LoginAsync(1, "bob", "laptop");
        await alice.SendAsync("<presence/>");
        await bob.SendAsync("<presence/>");

        // A message to the bare JID crosses from node 1 to node 2, and the reply to the full JID comes back.
        await alice.SendAsync("<message to='bob@localhost' type='chat' id='m1'><body>hello across nodes</body></message>");
        var m1 = await bob.ReadUntilAsync(e => e.Name == "message");
        Assert.That(m1.GetAttribute("from"), Is.EqualTo("alice@localhost/phone"));
        Assert.That(m1.ChildText("body", Ns.Client), Is.EqualTo("hello across nodes"));
        await bob.SendAsync("<message to='alice@localhost/phone' type='chat' id='m2'><body>hello back</body></message>");
        var m2 = await alice.ReadUntilAsync(e => e.Name == "message");
        Assert.That(m2.GetAttribute("from"), Is.EqualTo("bob@localhost/laptop"));

        // Subscription both ways (RFC 6121 §3), then each sees the other's presence.
        await SubscribeAsync(alice, "alice@localhost", bob, "bob@localhost/laptop");
        await SubscribeAsync(bob, "bob@localhost", alice, "alice@localhost/phone");

        // A status change reaches the contact on the other node.
        await bob.SendAsync("<presence><show>away</show></presence>");
        var away = await alice.ReadUntilAsync(e => e.Name == "presence" && e.GetAttribute("from") == "bob@localhost/laptop");
        Assert.That(away.ChildText("show", Ns.Client), Is.EqualTo("away"));

        // An iq to the bare JID is answered by the account's home (RFC 6121 §8.5.1: the server answers for the account).
        var set = await bob.IqAsync("<iq type='set' id='vs'><vCard xmlns='vcard-temp'><FN>Bob on node 2</FN></vCard></iq>");
        Assert.That(set.GetAttribute("type"), Is.EqualTo("result"), set.ToString());
        await alice.SendAsync("<iq to='bob@localhost' type='get' id='v1'><vCard xmlns='vcard-temp'/></iq>");
        var vcard = await alice.ReadUntilAsync(e => e.Name == "iq" && e.GetAttribute("id") == "v1");
        Assert.That(vcard.GetAttribute("type"), Is.EqualTo("result"), vcard.ToString());
        Assert.That(vcard.GetAttribute("from"), Is.EqualTo("bob@localhost"));
        Assert.That(vcard.ToString(), Does.Contain("Bob on node 2"));

        // An iq to a full JID reaches the client on the other node, and its answer comes back.
        await alice.SendAsync("<iq to='bob@localhost/laptop' type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>");
        var ping = await bob.ReadUntilAsync(e => e.Name == "iq" && e.GetAttribute("id") == "p1");
        await bob.SendAsync("<iq to='alice@localhost/phone' type='result' id='p1'/>");
        var pong = await alice.ReadUntilAsync(e => e.Name == "iq" && e.GetAttribute("id") == "p1");
        Assert.That(pong.GetAttribute("from"), Is.EqualTo("bob@localhost/laptop"));
        Assert.That(ping.GetAttribute("from"), Is.EqualTo("alice@localhost/phone"));

        // Going offline: the contact on the other node gets unavailable presence (RFC 6121 §4.5.2).
        await bob.CloseAsync();
        var gone = await alice.ReadUntilAsync(e => e.Name == "presence" && e.GetAttribute("from") == "bob@localhost/laptop" && e.GetAttribute("type") == "unavailable");
        Assert.That(gone, Is.Not.Null);
    }

    [Test]
    public async Task An_account_has_one_home_a_login_elsewhere_is_bound_there_and_the_home_follows_the_next_login()
    {
        await using var cluster = await ClusterNodes.CreateAsync(2, "alice", "carol");
        await cluster.StartAsync(0);
        await cluster.StartAsync(1);

        await using var alice = await cluster.LoginAsync(0, "alice", "phone");

        // Carol is offline: the message is stored on whichever node is her home now (alice's node).
        await alice.SendAsync("<message to='carol@localhost' type='chat' id='o1'><body>while you were away</body></message>");
        await alice.IqAsync("<iq type='get' id='sync1'><ping xmlns='urn:xmpp:ping'/></iq>");

        // Carol logs in on node 2: her home moves there, and the offline message is delivered.
        await using (var carol = await cluster.LoginAsync(1, "carol", "tablet"))
        {
            await carol.SendAsync("<presence/>");
            var offline = await carol.ReadUntilAsync(e => e.Name == "message");
            Assert.That(offline.ChildText("body", Ns.Client), Is.EqualTo("while you were away"));

            // A second login of carol on node 1 stays there, bound on node 2, her home (RFC 6121 §8.5.2.1.1: a
            // message to her bare JID reaches both her resources).
            await using (var other = await cluster.LoginAsync(0, "carol", "phone"))
            {
                await other.SendAsync("<presence/>");
                await carol.ReadUntilAsync(e => e.Name == "presence" && e.GetAttribute("from") == "carol@localhost/phone");
                await alice.SendAsync("<message to='carol@localhost' type='chat' id='o1b'><body>to both</body></message>");
                await other.ReadUntilAsync(e => e.Name == "message" && e.GetAttribute("id") == "o1b");
                await carol.ReadUntilAsync(e => e.Name == "message" && e.GetAttribute("id") == "o1b");
                await other.CloseAsync();
                await carol.ReadUntilAsync(e => e.Name == "presence" && e.GetAttribute("from") == "carol@localhost/phone" && e.GetAttribute("type") == "unavailable");
            }

            // Live messages from node 1 reach her on node 2.
            await alice.SendAsync("<message to='carol@localhost' type='chat' id='o2'><body>now live</body></message>");
            var live = await carol.ReadUntilAsync(e => e.Name == "message" && e.GetAttribute("id") == "o2");
            Assert.That(live.ChildText("body", Ns.Client), Is.EqualTo("now live"));
            await carol.CloseAsync();
        }

        // Once carol has no session left, her next login may make node 1 her home.
        await using var again = await cluster.LoginAsync(0, "carol", "phone");
        await alice.SendAsync("<message to='carol@localhost/phone' type='chat' id='o3'><body>same node now</body></message>");
        var local = await again.ReadUntilAsync(e => e.Name == "message" && e.GetAttribute("id") == "o3");
        Assert.That(local.GetAttribute("from"), Is.EqualTo("alice@localhost/phone"));
    }

    [Test]
    public async Task A_room_has_occupants_on_every_node_and_one_live_instance()
    {
        const string room = "team@conference.localhost";
        await using var cluster = await ClusterNodes.CreateAsync(2, "alice", "bob", "carol");
        await cluster.StartAsync(0);
        await cluster.StartAsync(1);
        await using var alice = await cluster.LoginAsync(0, "alice");
        await using var bob = await cluster.LoginAsync(1, "bob");
        await using var carol = await cluster.LoginAsync(1, "carol");

        // Alice (node 1) creates the room; it lives on node 1. A persistent room, so that it is stored.
        await MucTests.JoinAsync(alice, "Alice", room);
        await MucTests.InstantRoomAsync(alice, room, "<field var='muc#roomconfig_persistentroom'><value>1</value></field>");
        await alice.SendAsync($"<message to='{room}' type='groupchat' id='g0'><body>before you came</body></message>");
        await alice.ReadUntilAsync(e => e.Name == "message" && e.GetAttribute("id") == "g0");

        // Bob (node 2) enters: he gets the occupant list and the history; alice sees him arrive.
        var joined = await MucTests.JoinAsync(bob, "Bob", room);
        Assert.That(joined.Any(e => e.GetAttribute("from") == room + "/Alice"), Is.True, "the occupant on the other node is listed");
        var history = joined.Single(e => e.Name == "message" && e.ChildText("body", Ns.Client) == "before you came");
        Assert.That(history.Child("delay", "urn:xmpp:delay"), Is.Not.Null, "history carries its delay (XEP-0045 §7.2.15)");
        await alice.ReadUntilAsync(e => e.Name == "presence" && e.GetAttribute("from") == room + "/Bob");
        await MucTests.JoinAsync(carol, "Carol", room);

        // A message from node 2 reaches the occupants on both nodes, once.
        await bob.SendAsync($"<message to='{room}' type='groupchat' id='g1'><body>hi all</body></message>");
        foreach (var c in new[] { alice, bob, carol })
        {
            var m = await c.ReadUntilAsync(e => e.Name == "message" && e.GetAttribute("type") == "groupchat" && e.ChildText("body", Ns.Client) == "hi all");
            Assert.That(m.GetAttribute("from"), Is.EqualTo(room + "/Bob"));
        }

        // A nick change on node 2 (§7.6), seen on node 1.
        await bob.SendAsync($"<presence to='{room}/Robert'/>");
        var renamed = await alice.ReadUntilAsync(e => e.Name == "presence" && e.GetAttribute("from") == room + "/Bob" && e.GetAttribute("type") == "unavailable");
        Assert.That(MucTests.Codes(renamed), Does.Contain("303"));
        await alice.ReadUntilAsync(e => e.Name == "presence" && e.GetAttribute("from") == room + "/Robert");

        // Alice, the owner, kicks carol (node 2) (§8.2).
        var kick = await alice.IqAsync($"<iq type='set' id='k1' to='{room}'><query xmlns='{MucTests.MucAdmin}'><item nick='Carol' role='none'/></query></iq>");
        Assert.That(kick.GetAttribute("type"), Is.EqualTo("result"), kick.ToString());
        var kicked = await carol.ReadUntilAsync(e => e.Name == "presence" && e.GetAttribute("from") == room + "/Carol" && e.GetAttribute("type") == "unavailable");
        Assert.That(MucTests.Codes(kicked), Does.Contain("307"));

        // A temporary room on node 1 is listed by the service on node 2 too (from its checkpoint), as is the stored one.
        await MucTests.JoinAsync(alice, "Alice", "lounge@conference.localhost");
        await MucTests.InstantRoomAsync(alice, "lounge@conference.localhost");
        var listed = System.Diagnostics.Stopwatch.StartNew();
        List<string?> rooms;
        do
        {
            var items = await bob.IqAsync($"<iq type='get' id='items{listed.ElapsedMilliseconds}' to='conference.localhost'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>");
            rooms = [.. items.Child("query", "http://jabber.org/protocol/disco#items")!.Elements().Select(e => e.GetAttribute("jid"))];
        }
        while (!rooms.Contains("lounge@conference.localhost") && listed.Elapsed < TimeSpan.FromSeconds(5));
        Assert.That(rooms, Is.SupersetOf(new[] { "lounge@conference.localhost", room }), "node 2 lists the rooms of node 1");

        // One live instance: every occupant entered the room on node 1, none on node 2.
        var log1 = await File.ReadAllTextAsync(cluster.Log(0));
        Assert.That(log1, Does.Contain("bob@localhost/test entered team@conference.localhost as Bob"));
        Assert.That(log1, Does.Contain("carol@localhost/test entered team@conference.localhost as Carol"));
        Assert.That(await File.ReadAllTextAsync(cluster.Log(1)), Does.Not.Contain("entered team@conference.localhost"));
    }

    [Test]
    public async Task When_a_node_is_killed_its_users_contacts_and_directed_presence_targets_see_them_go_and_its_occupants_leave_the_rooms_with_333()
    {
        const string room = "crew@conference.localhost";
        await using var cluster = await ClusterNodes.CreateAsync(2, "alice", "bob", "carol");
        await cluster.StartAsync(0);
        await cluster.StartAsync(1);
        await using var alice = await cluster.LoginAsync(0, "alice", "phone");
        await using var carol = await cluster.LoginAsync(0, "carol", "desk");
        var bob = await cluster.LoginAsync(1, "bob", "laptop");
        await alice.SendAsync("<presence/>");
        await carol.SendAsync("<presence/>");
        await bob.SendAsync("<presence/>");
        await SubscribeAsync(alice, "alice@localhost", bob, "bob@localhost/laptop");

        // Directed presence to carol, who is not in bob's roster (RFC 6121 §4.6).
        await bob.SendAsync("<presence to='carol@localhost'><show>chat</show></presence>");
        await carol.ReadUntilAsync(e => e.Name == "presence" && e.GetAttribute("from") == "bob@localhost/laptop" && e.GetAttribute("type") is null);

        // A room on node 1 with bob (node 2) in it.
        await MucTests.JoinAsync(alice, "Alice", room);
        await MucTests.InstantRoomAsync(alice, room);
        await MucTests.JoinAsync(bob, "Bob", room);
        await alice.ReadUntilAsync(e => e.Name == "presence" && e.GetAttribute("from") == room + "/Bob");

        // kill -9 of node 2: nothing of its own shutdown runs.
        var killed = System.Diagnostics.Stopwatch.StartNew();
        cluster.Process(1).Kill9();
        bob.Abort();
        await bob.DisposeAsync();

        var seen = new List<Element>();
        Element? gone = null, left = null;
        while (gone is null || left is null)
        {
            var e = await alice.ReadWithinAsync(TimeSpan.FromSeconds(30));
            seen.Add(e);
            if (e.Name == "presence" && e.GetAttribute("from") == "bob@localhost/laptop" && e.GetAttribute("type") == "unavailable")
            {
                gone = e;
            }
            else if (e.Name == "presence" && e.GetAttribute("from") == room + "/Bob" && e.GetAttribute("type") == "unavailable")
            {
                left = e;
            }
        }

        TestContext.Out.WriteLine($"unavailable presence and the 333 leave within {killed.Elapsed.TotalSeconds:0.0} s of the kill");
        Assert.That(MucTests.Codes(left), Does.Contain("333"));
        await carol.ReadUntilAsync(e => e.Name == "presence" && e.GetAttribute("from") == "bob@localhost/laptop" && e.GetAttribute("type") == "unavailable");
        Assert.That(killed.Elapsed, Is.LessThan(TimeSpan.FromSeconds(30)));

        // The room goes on, and bob can log in again on node 1.
        await using var again = await cluster.LoginAsync(0, "bob", "laptop2");
        await again.SendAsync("<presence/>");
        await alice.ReadUntilAsync(e => e.Name == "presence" && e.GetAttribute("from") == "bob@localhost/laptop2" && e.GetAttribute("type") is null);
    }

    [Test]
    public async Task A_node_frozen_past_failure_detection_is_declared_dead_and_stops_by_itself_routing_nothing_after_it_resumes()
    {
        await using var cluster = await ClusterNodes.CreateAsync(2, "alice", "bob");
        await cluster.StartAsync(0);
        await cluster.StartAsync(1);
        await using var alice = await cluster.LoginAsync(0, "alice", "phone");
        await using var bob = await cluster.LoginAsync(1, "bob", "laptop");
        await alice.SendAsync("<presence/>");
        await bob.SendAsync("<presence/>");
        await SubscribeAsync(alice, "alice@localhost", bob, "bob@localhost/laptop");

        // SIGSTOP looks like a partition or a long pause to node 1, which declares node 2 dead and cleans up.
        var node2 = cluster.Process(1);
        await node2.SignalAsync("STOP");
        var gone = await alice.ReadWithinAsync(TimeSpan.FromSeconds(30));
        while (!(gone.Name == "presence" && gone.GetAttribute("from") == "bob@localhost/laptop" && gone.GetAttribute("type") == "unavailable"))
        {
            gone = await alice.ReadWithinAsync(TimeSpan.FromSeconds(30));
        }

        // Meanwhile bob's client sends (its kernel buffers it); then node 2 resumes.
        await bob.SendAsync("<message to='alice@localhost' type='chat' id='after'><body>sent while frozen</body></message><iq type='get' id='ack'><ping xmlns='urn:xmpp:ping'/></iq>");
        await node2.SignalAsync("CONT");
        var resumed = System.Diagnostics.Stopwatch.StartNew();
        Assert.That(await node2.WaitForExitAsync(TimeSpan.FromSeconds(20)), Is.True, "node 2 stops by itself");
        TestContext.Out.WriteLine($"node 2 stopped {resumed.Elapsed.TotalSeconds:0.0} s after it resumed");

        // Nothing it got after resuming was acknowledged or delivered.
        var after = await bob.ReadOrEndAsync();
        while (after is not null)
        {
            Assert.That(after.GetAttribute("id"), Is.Not.EqualTo("ack"), "node 2 answered after it resumed: " + after);
            after = await bob.ReadOrEndAsync();
        }

        var received = await alice.DrainAsync();
        Assert.That(received.Where(e => e.GetAttribute("id") == "after"), Is.Empty, "the message sent to node 2 while it was frozen was delivered");
        Assert.That(await File.ReadAllTextAsync(cluster.Log(1)), Does.Contain("declared dead while it was paused"));
    }

    [Test]
    public async Task A_drained_node_parks_its_resumable_sessions_which_resume_on_other_nodes_without_contacts_seeing_them_go()
    {
        await using var cluster = await ClusterNodes.CreateAsync(3, "alice", "dave", "bob", "carol");
        await cluster.StartAsync(0);
        await cluster.StartAsync(1);
        await cluster.StartAsync(2);

        // Bob (node 3) is the contact of alice and dave, who are on node 1 with resumable sessions (XEP-0198).
        await using var bob = await cluster.LoginAsync(2, "bob", "laptop");
        bob.Received = [];
        await bob.SendAsync("<presence/>");
        var parked = new Dictionary<string, (RawXmppClient Client, string Id)>();
        foreach (var (user, resource) in new[] { ("alice", "phone"), ("dave", "pc") })
        {
            var client = await cluster.LoginAsync(0, user, resource);
            await client.SendAsync($"<enable xmlns='{Sm}' resume='true'/>");
            var enabled = await client.ReadUntilAsync(e => e.Name == "enabled");
            await client.SendAsync("<presence/>");
            await SubscribeAsync(bob, "bob@localhost", client, $"{user}@localhost/{resource}");
            await SubscribeAsync(client, $"{user}@localhost", bob, "bob@localhost/laptop");
            parked[user] = (client, enabled.GetAttribute("id")!);
        }

        // A room alice created on node 1, with bob (node 3) in it, and a message in its history.
        const string room = "standup@conference.localhost";
        await MucTests.JoinAsync(parked["alice"].Client, "Alice", room);
        await MucTests.InstantRoomAsync(parked["alice"].Client, room);
        await MucTests.JoinAsync(bob, "Bob", room);
        await bob.SendAsync($"<message to='{room}' type='groupchat' id='g1'><body>before the restart</body></message>");
        await parked["alice"].Client.ReadUntilAsync(e => e.Name == "message" && e.GetAttribute("id") == "g1");

        // A message alice receives and never acknowledges: it must come again after the resumption.
        await bob.SendAsync("<message to='alice@localhost/phone' type='chat' id='before'><body>before the restart</body></message>");
        await parked["alice"].Client.ReadUntilAsync(e => e.Name == "message" && e.GetAttribute("id") == "before");
        await bob.DrainAsync();

        // SIGTERM in cluster mode drains: the clients are told to go, their sessions do not end.
        await cluster.Process(0).SignalAsync("TERM");
        foreach (var (client, _) in parked.Values)
        {
            Assert.That(await client.ReadStreamErrorAsync(), Is.EqualTo("system-shutdown"));
            client.Abort();
            await client.DisposeAsync();
        }

        // While they are away (parked, moving to their new home), bob writes to both.
        await bob.SendAsync("<message to='alice@localhost' type='chat' id='away1'><body>to the bare JID while parked</body></message>");
        await bob.SendAsync("<message to='dave@localhost/pc' type='chat' id='away2'><body>to the full JID while parked</body></message>");
        Assert.That(await cluster.Process(0).WaitForExitAsync(TimeSpan.FromSeconds(60)), Is.True, "node 1 stops after the drain");
        var log0 = await File.ReadAllTextAsync(cluster.Log(0));
        Assert.That(log0, Does.Contain("Drained: 3 session(s) and room(s) of 3 account(s) and room(s)"), "two accounts' sessions and the room");
        Assert.That(log0, Does.Contain($"Room {room} leaves for another node with its 2 occupant(s)"));

        // Each resumes on another node (alice on node 2, dave on node 3): one of them where its home went, the
        // other where it has to follow the login.
        var resumedOn = new Dictionary<string, RawXmppClient>();
        foreach (var (user, node) in new[] { ("alice", 1), ("dave", 2) })
        {
            var again = await RawXmppClient.ConnectAsync(cluster.Nodes[node].ClientPort, address: cluster.Nodes[node].Address.ToString());
            var features = await again.AuthenticateOnlyAsync(user, "pw-" + user);
            Assert.That(features.Child("sm", Sm), Is.Not.Null);
            await again.SendAsync($"<resume xmlns='{Sm}' previd='{parked[user].Id}' h='0'/>");
            var resumed = await again.ReadAsync();
            Assert.That(resumed.Name, Is.EqualTo("resumed"), $"{user} on node {node + 1}: {resumed}");
            resumedOn[user] = again;
        }

        var alice = resumedOn["alice"];
        var dave = resumedOn["dave"];
        var aliceGot = (await alice.DrainAsync()).Where(e => e.Name == "message").Select(e => e.GetAttribute("id")).ToList();
        Assert.That(aliceGot, Does.Contain("before"), "the unacknowledged message came again");
        Assert.That(aliceGot, Does.Contain("away1"));
        await dave.ReadUntilAsync(e => e.Name == "message" && e.GetAttribute("id") == "away2");

        // The sessions go on: same addresses, live both ways.
        await bob.SendAsync("<message to='alice@localhost/phone' type='chat' id='back'><body>welcome back</body></message>");
        await alice.ReadUntilAsync(e => e.Name == "message" && e.GetAttribute("id") == "back");
        await dave.SendAsync("<message to='bob@localhost' type='chat' id='hi'><body>still here</body></message>");
        await bob.ReadUntilAsync(e => e.Name == "message" && e.GetAttribute("id") == "hi");

        // The room went on elsewhere with both occupants: bob's message reaches alice, and a newcomer gets the history.
        await bob.SendAsync($"<message to='{room}' type='groupchat' id='g2'><body>after the restart</body></message>");
        await alice.ReadUntilAsync(e => e.Name == "message" && e.GetAttribute("id") == "g2");
        await using (var carol = await cluster.LoginAsync(1, "carol", "tablet"))
        {
            var joined = await MucTests.JoinAsync(carol, "Carol", room);
            var occupants = joined.Where(e => e.Name == "presence" && e.GetAttribute("type") is null).Select(e => e.GetAttribute("from")).ToList();
            Assert.That(occupants, Does.Contain(room + "/Alice").And.Contain(room + "/Bob"));
            Assert.That(joined.Where(e => e.Name == "message").Select(e => e.ChildText("body", Ns.Client)), Does.Contain("before the restart").And.Contain("after the restart"));
        }

        // Bob never saw either of them go offline, nor alice leave the room (carol's leaving is the only one).
        await bob.DrainAsync();
        Assert.That(bob.Received.Where(e => e.Name == "presence" && e.GetAttribute("type") == "unavailable" && e.GetAttribute("from") != room + "/Carol"), Is.Empty);
        foreach (var c in resumedOn.Values)
        {
            await c.DisposeAsync();
        }
    }

    [Test]
    public async Task A_rolling_restart_of_every_node_under_load_resumes_every_session_elsewhere_losing_and_repeating_nothing()
    {
        const int Users = 300;
        var users = Enumerable.Range(0, Users).Select(i => $"u{i}").ToArray();
        var pairs = Enumerable.Range(0, Users / 2).Select(i => (users[2 * i], users[(2 * i) + 1])).ToArray();
        await using var cluster = await ClusterNodes.CreateAsync(3, users, pairs);
        await cluster.StartAsync(0);
        await cluster.StartAsync(1);
        await cluster.StartAsync(2);

        // 300 resumable sessions, 100 per node; each user's contact (its partner) is on another node.
        var clients = new SmClient[Users];
        await Parallel.ForEachAsync(Enumerable.Range(0, Users), new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (i, _) =>
            clients[i] = await SmClient.ConnectAsync(cluster, i % 3, users[i], "r"));
        try
        {
            // The probes of the first logins were answered with unavailable presence for partners not logged in yet.
            await Task.WhenAll(clients.Select(c => c.AllAcknowledgedAsync(TimeSpan.FromSeconds(30))));
            foreach (var c in clients)
            {
                c.ClearUnavailable();
            }

            // Steady traffic: each client in turn writes to its partner.
            var sent = new ConcurrentDictionary<string, int>(StringComparer.Ordinal);
            using var stop = new CancellationTokenSource();
            var traffic = Task.Run(async () =>
            {
                for (var n = 0; !stop.IsCancellationRequested; n++)
                {
                    var i = n % Users;
                    var id = "m" + n.ToString(System.Globalization.CultureInfo.InvariantCulture);
                    sent[id] = i ^ 1;
                    await clients[i].SendStanzaAsync($"<message to='{users[i ^ 1]}@localhost' type='chat' id='{id}'><body>{n}</body></message>");
                    await Task.Delay(4);
                }
            });

            // Each node in turn: drained (SIGTERM, or xmppserver drain for the second), its clients resume on the next node, and it starts again.
            var drains = new List<string>();
            for (var k = 0; k < 3; k++)
            {
                await Task.Delay(TimeSpan.FromSeconds(2));
                var on = clients.Where(c => c.Node == k).ToList();
                if (k == 1)
                {
                    // The command does what SIGTERM does.
                    var (exit, output) = await cluster.CommandAsync(k, "drain");
                    Assert.That(exit, Is.Zero, output);
                    Assert.That(output, Does.Contain("draining"));
                }
                else
                {
                    await cluster.Process(k).SignalAsync("TERM");
                }

                await Task.WhenAll(on.Select(c => c.Lost)).WaitAsync(TimeSpan.FromSeconds(60));
                var next = (k + 1) % 3;
                await Parallel.ForEachAsync(on, new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (c, _) => await c.ResumeAsync(next));
                Assert.That(await cluster.Process(k).WaitForExitAsync(TimeSpan.FromSeconds(60)), Is.True, $"node {k + 1} stops after its drain");
                drains.Add(File.ReadLines(cluster.Log(k)).LastOrDefault(l => l.Contains("Drained:", StringComparison.Ordinal)) ?? $"node {k + 1}: no drain logged");
                Assert.That(clients.SelectMany(c => c.Failures), Is.Empty);
                await cluster.StartAsync(k);
            }

            await Task.Delay(TimeSpan.FromSeconds(1));
            await stop.CancelAsync();
            await traffic;

            // Everything sent was acknowledged by the server, then received exactly once, and nobody went offline.
            await Task.WhenAll(clients.Select(c => c.AllAcknowledgedAsync(TimeSpan.FromSeconds(30))));
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
            List<string> missing;
            while ((missing = [.. sent.Where(s => !clients[s.Value].Received.ContainsKey(s.Key)).Select(s => s.Key)]).Count > 0 && DateTime.UtcNow < deadline)
            {
                await Task.Delay(100);
            }

            var repeated = clients.SelectMany(c => c.Received.Where(r => r.Value > 1).Select(r => $"{r.Key} x{r.Value} to {c.Jid}")).ToList();
            var unavailable = clients.SelectMany(c => c.Unavailable.Select(u => $"{c.Jid} saw {u} go")).ToList();
            TestContext.Out.WriteLine($"{sent.Count} messages sent, {sent.Count - missing.Count} received, {missing.Count} lost, {repeated.Count} repeated; {clients.Sum(c => c.Resumptions)} resumptions, {clients.Sum(c => c.Failures.Count)} failed; {unavailable.Count} unavailable presences");
            foreach (var d in drains.Concat(missing.Take(10).Select(m => $"lost: {m} to {clients[sent[m]].Jid}")).Concat(repeated.Take(10)).Concat(unavailable.Take(10)))
            {
                TestContext.Out.WriteLine(d);
            }

            // A lost message's recipient: what every node logged of it (the logs' tails shown on failure may not reach back that far).
            foreach (var account in missing.Take(3).Select(m => $"u{sent[m]}@localhost").Distinct())
            {
                foreach (var log in Directory.GetFiles(cluster.Directory, "n*.log").Order(StringComparer.Ordinal))
                {
                    using var reader = new StreamReader(new FileStream(log, FileMode.Open, FileAccess.Read, FileShare.ReadWrite));
                    foreach (var line in reader.ReadToEnd().Split('\n').Where(l => l.Contains(account + "/", StringComparison.Ordinal) || l.Contains(account + " ", StringComparison.Ordinal) || l.Contains(account + ":", StringComparison.Ordinal)))
                    {
                        TestContext.Out.WriteLine($"{Path.GetFileName(log)}: {line}");
                    }
                }
            }

            Assert.That(clients.Sum(c => c.Resumptions), Is.EqualTo(Users / 3 * (1 + 2 + 3)), "every session resumed at each drain of its node (100, then 200, then 300)");
            Assert.That(missing, Is.Empty, "lost");
            Assert.That(repeated, Is.Empty, "repeated");
            Assert.That(unavailable, Is.Empty, "contacts saw a session go offline");
        }
        finally
        {
            foreach (var c in clients.Where(c => c is not null))
            {
                await c.DisposeAsync();
            }
        }
    }

    [Test]
    public async Task Failed_logins_for_one_account_count_on_every_node_and_block_it_everywhere()
    {
        await using var cluster = await ClusterNodes.CreateAsync(2, "alice");
        cluster.ExtraConfig = "<authentication account-failures='3' failure-delay='0'/>";
        await cluster.StartAsync(0);
        await cluster.StartAsync(1);

        // Two wrong passwords on node 1, one on node 2: the limit of three is reached only counting both nodes.
        foreach (var node in new[] { 0, 0, 1 })
        {
            var failure = await AuthenticateAsync(cluster, node, "wrong");
            Assert.That(failure.Name, Is.EqualTo("failure"), failure.ToString());
            Assert.That(failure.Child("not-authorized", Ns.Sasl), Is.Not.Null, failure.ToString());
        }

        // The right password is refused on both nodes during the block, with the answer a wrong one gets then
        // (node 1 hears of the block from the username's grain, in a one-way call).
        await cluster.WaitForLogAsync(0, "alice@localhost is blocked here");
        foreach (var node in new[] { 1, 0 })
        {
            var refused = await AuthenticateAsync(cluster, node, "pw-alice");
            Assert.That(refused.Name, Is.EqualTo("failure"), $"node {node + 1}: {refused}");
            Assert.That(refused.Child("temporary-auth-failure", Ns.Sasl), Is.Not.Null, refused.ToString());
        }

    }

    [Test]
    public async Task The_administration_commands_see_and_end_sessions_on_every_node()
    {
        await using var cluster = await ClusterNodes.CreateAsync(2, "boss", "bob", "carol");
        cluster.ExtraConfig = "<admin jid='boss@localhost'/>";
        await cluster.StartAsync(0);
        await cluster.StartAsync(1);
        await using var boss = await cluster.LoginAsync(0, "boss", "desk");
        await using var carol = await cluster.LoginAsync(0, "carol", "phone");
        await using var bob = await cluster.LoginAsync(1, "bob", "laptop");
        await bob.SendAsync("<presence/>");
        await carol.SendAsync("<presence/>");

        // XEP-0133 online users on node 1 include bob on node 2 (from the crash ledger, written in batches).
        var online = new List<string>();
        for (var attempt = 0; attempt < 50 && !online.Contains("bob@localhost"); attempt++)
        {
            online = AdminCommandsTests.Values(await AdminCommandsTests.RunAsync(boss, "get-online-users-list", AdminCommandsTests.Form(("max_items", ["none"]))), "onlineuserjids");
            await Task.Delay(100);
        }

        Assert.That(online, Is.EquivalentTo(new[] { "boss@localhost", "bob@localhost", "carol@localhost" }));

        // An announcement reaches the sessions of both nodes.
        var announced = await AdminCommandsTests.RunAsync(boss, "announce", AdminCommandsTests.Form(("announcement", ["Rolling restart at noon"])));
        Assert.That(AdminCommandsTests.Note(announced), Does.StartWith("info: Announcement sent to "));
        var headline = await bob.ReadUntilAsync(e => e.Name == "message" && e.GetAttribute("type") == "headline");
        Assert.That(headline.ChildText("body", Ns.Client), Is.EqualTo("Rolling restart at noon"));
        await carol.ReadUntilAsync(e => e.Name == "message" && e.GetAttribute("type") == "headline");

        // Ending bob's session from node 1 ends it on node 2.
        var ended = await AdminCommandsTests.RunAsync(boss, "end-user-session", AdminCommandsTests.Form(("accountjids", ["bob@localhost"])));
        Assert.That(AdminCommandsTests.Note(ended), Is.EqualTo("info: 1 session ended."));
        Assert.That(await bob.ReadStreamErrorAsync(), Is.EqualTo("policy-violation"));
    }

    [Test]
    public async Task Killing_a_node_under_traffic_loses_no_acknowledged_message_and_leaves_the_other_nodes_sessions_alone()
    {
        await using var cluster = await ClusterNodes.CreateAsync(3, ["alice", "bob", "carol"], [("alice", "bob")]);
        await cluster.StartAsync(0);
        await cluster.StartAsync(1);
        await cluster.StartAsync(2);
        await using var alice = await SmClient.ConnectAsync(cluster, 0, "alice", "phone");
        await using var bob = await SmClient.ConnectAsync(cluster, 1, "bob", "laptop");
        await using var carol = await SmClient.ConnectAsync(cluster, 2, "carol", "tablet");
        await Task.WhenAll(alice.AllAcknowledgedAsync(TimeSpan.FromSeconds(10)), bob.AllAcknowledgedAsync(TimeSpan.FromSeconds(10)));

        // Traffic from the survivors to bob (homed on node 2) and from bob to alice, until well after the kill.
        var toBob = new System.Collections.Concurrent.ConcurrentBag<string>();
        var toAlice = new System.Collections.Concurrent.ConcurrentBag<string>();
        using var stop = new CancellationTokenSource();
        async Task SendAsync(SmClient from, string to, string prefix, System.Collections.Concurrent.ConcurrentBag<string> ids)
        {
            for (var n = 0; !stop.IsCancellationRequested; n++)
            {
                var id = prefix + n.ToString(System.Globalization.CultureInfo.InvariantCulture);
                // In the client's outbox before it is in the list (so a list read then an outbox read never counts it acknowledged wrongly).
                var sending = from.SendStanzaAsync($"<message to='{to}' type='chat' id='{id}'><body>{id}</body></message>");
                ids.Add(id);
                await sending;
                await Task.Delay(10);
            }
        }

        var senders = new[] { SendAsync(alice, "bob@localhost", "a", toBob), SendAsync(carol, "bob@localhost", "c", toBob) };
        var bobSends = SendAsync(bob, "alice@localhost", "b", toAlice);
        await Task.Delay(TimeSpan.FromSeconds(2));
        var killed = System.Diagnostics.Stopwatch.StartNew();
        cluster.Process(1).Kill9();
        var told = Task.Run(async () =>
        {
            await alice.WentAsync("bob@localhost/laptop");
            return killed.Elapsed;
        });
        await bob.Lost.WaitAsync(TimeSpan.FromSeconds(10));
        var bobAcked = toAlice.ToHashSet();
        bobAcked.ExceptWith(bob.UnacknowledgedIds());
        await Task.Delay(TimeSpan.FromSeconds(12));
        await stop.CancelAsync();
        await Task.WhenAll(senders);
        try
        {
            await bobSends;
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or TimeoutException)
        {
            // Its node is gone.
        }

        // The survivors' sessions were never disturbed, and the server acknowledged everything they sent.
        Assert.That(alice.Lost.IsCompleted, Is.False, "alice's connection (node 1) was closed");
        Assert.That(carol.Lost.IsCompleted, Is.False, "carol's connection (node 3) was closed");
        await Task.WhenAll(alice.AllAcknowledgedAsync(TimeSpan.FromSeconds(60)), carol.AllAcknowledgedAsync(TimeSpan.FromSeconds(60)));
        var toldAfter = await told.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.That(toldAfter, Is.LessThan(TimeSpan.FromSeconds(10)), "alice was told bob went offline");

        // Bob logs in again on node 1 (his session died with node 2): everything sent to him is live, offline or archived.
        await using var again = await cluster.LoginAsync(0, "bob", "again");
        await again.SendAsync("<presence/>");
        var got = bob.Received.Keys.ToHashSet();
        foreach (var e in await again.DrainAsync())
        {
            if (e.Name == "message" && e.GetAttribute("id") is { } id)
            {
                got.Add(id);
            }
        }

        got.UnionWith(await ArchivedIdsAsync(again));
        var lostToBob = toBob.Where(id => !got.Contains(id)).ToList();
        var lostToAlice = bobAcked.Where(id => !alice.Received.ContainsKey(id)).ToList();
        TestContext.Out.WriteLine($"kill -9 of node 2: {toBob.Count} messages to bob from nodes 1 and 3 (all acknowledged), {lostToBob.Count} lost; {bobAcked.Count} acknowledged from bob before the kill, {lostToAlice.Count} lost; bob's contact told {toldAfter.TotalSeconds:0.0} s after the kill");
        Assert.That(lostToBob, Is.Empty, "acknowledged messages to bob lost");
        Assert.That(lostToAlice, Is.Empty, "acknowledged messages from bob lost");
    }

    /// <summary>Every message id in the account's archive (XEP-0313), page by page.</summary>
    internal static async Task<HashSet<string>> ArchivedIdsAsync(RawXmppClient c) => [.. (await ArchivedIdCountsAsync(c)).Keys];

    /// <summary>Every message id in the account's archive (XEP-0313), with how many entries have it.</summary>
    internal static async Task<Dictionary<string, int>> ArchivedIdCountsAsync(RawXmppClient c)
    {
        var ids = new Dictionary<string, int>(StringComparer.Ordinal);
        string? after = null;
        for (var page = 0; page < 100; page++)
        {
            var set = after is null ? "<set xmlns='http://jabber.org/protocol/rsm'><max>200</max></set>" : $"<set xmlns='http://jabber.org/protocol/rsm'><max>200</max><after>{after}</after></set>";
            await c.SendAsync($"<iq type='set' id='mam{page}'><query xmlns='urn:xmpp:mam:2' queryid='q{page}'>{set}</query></iq>");
            while (true)
            {
                var e = await c.ReadAsync();
                if (e.Name == "message" && e.Child("result", "urn:xmpp:mam:2") is { } result)
                {
                    if (result.Child("forwarded", "urn:xmpp:forward:0")?.Child("message", Ns.Client)?.GetAttribute("id") is { } id)
                    {
                        ids[id] = ids.GetValueOrDefault(id) + 1;
                    }
                }
                else if (e.Name == "iq" && e.GetAttribute("id") == $"mam{page}")
                {
                    var fin = e.Child("fin", "urn:xmpp:mam:2");
                    Assert.That(fin, Is.Not.Null, e.ToString());
                    if (fin!.GetAttribute("complete") == "true")
                    {
                        return ids;
                    }

                    after = fin.Child("set", "http://jabber.org/protocol/rsm")?.ChildText("last", "http://jabber.org/protocol/rsm");
                    break;
                }
            }
        }

        return ids;
    }

    private static async Task<Element> AuthenticateAsync(ClusterNodes cluster, int node, string password)
    {
        await using var client = await RawXmppClient.ConnectAsync(cluster.Nodes[node].ClientPort, address: cluster.Nodes[node].Address.ToString());
        await client.OpenAsync();
        await client.StartTlsAsync();
        await client.OpenAsync();
        return await client.AuthenticateAsync("SCRAM-SHA-256", "alice", password);
    }

    /// <summary>
    /// <paramref name="subscriber"/> asks for <paramref name="contact"/>'s presence, which approves (RFC 6121 §3.1);
    /// then the subscriber gets the contact's available presence from <paramref name="contactFull"/>.
    /// </summary>
    private static async Task SubscribeAsync(RawXmppClient subscriber, string subscriberBare, RawXmppClient contact, string contactFull)
    {
        var contactBare = contactFull.Split('/')[0];
        await subscriber.SendAsync($"<presence to='{contactBare}' type='subscribe'/>");
        var request = await contact.ReadUntilAsync(e => e.Name == "presence" && e.GetAttribute("type") == "subscribe");
        Assert.That(request.GetAttribute("from"), Is.EqualTo(subscriberBare));
        await contact.SendAsync($"<presence to='{subscriberBare}' type='subscribed'/>");
        await subscriber.ReadUntilAsync(e => e.Name == "presence" && e.GetAttribute("from") == contactFull && e.GetAttribute("type") is null);
    }
}
