using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;

namespace Xmpp.Tests.Cluster;

/// <summary>
/// kill -9 of one node of three, four times in a row, while about a thousand messages a second cross the nodes
/// and a room of 30 occupants spread over the nodes chats (README, "Running a cluster": "When a node dies"): what
/// the server acknowledged is delivered live or kept in the recipient's archive, the dead node's users' contacts
/// hear of it, the surviving occupants see the dead node's occupants leave with 333, the room answers, and the
/// other nodes' sessions stay up.
/// </summary>
[TestFixture]
[NonParallelizable]
[ClusterLogs]
[CancelAfter(480_000)]
public sealed class ClusterKillLoadTests
{
    private const int Users = 48;
    private const int Kills = 4;
    private const string Room = "load@conference.localhost";

    /// <summary>The room's occupants: the first 30 users, spread over the nodes as they are; the first 3 chat in it, once a second each.</summary>
    private const int Occupants = 30;
    private const int RoomSenders = 3;

    /// <summary>Each client's pause between two messages: 48 clients, about 1,000 messages/s in all.</summary>
    private static readonly TimeSpan Pace = TimeSpan.FromMilliseconds(48);

    /// <summary>Waits (at most 30 s) for each signal; the names of those that did not come, or came as a failure.</summary>
    private static async Task<List<string>> NotDoneAsync(List<Task<TimeSpan>> signals, List<string> names)
    {
        await Task.WhenAny(Task.WhenAll(signals), Task.Delay(TimeSpan.FromSeconds(30)));
        return names.Where((_, n) => !signals[n].IsCompletedSuccessfully).ToList();
    }

    [Test]
    public async Task Four_kills_under_a_thousand_messages_a_second_lose_no_acknowledged_message()
    {
        var users = Enumerable.Range(0, Users).Select(i => $"k{i}").ToArray();

        // Partners i and i^1 are contacts, always on different nodes (i % 3 differs): every message crosses nodes.
        var pairs = Enumerable.Range(0, Users / 2).Select(i => (users[2 * i], users[(2 * i) + 1])).ToArray();
        await using var cluster = await ClusterNodes.CreateAsync(3, [.. users, "watcher"], pairs);
        for (var n = 0; n < 3; n++)
        {
            await cluster.StartAsync(n);
        }

        var clients = new SmClient[Users];
        await Parallel.ForEachAsync(Enumerable.Range(0, Users), new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (i, _) =>
            clients[i] = await SmClient.ConnectAsync(cluster, i % 3, users[i], "r"));
        try
        {
            await Task.WhenAll(clients.Select(c => c.AllAcknowledgedAsync(TimeSpan.FromSeconds(30))));

            // The room: its owner (k0, node 1) creates it as an instant room; 29 others join from every node.
            async Task JoinRoomAsync(int i)
            {
                var joined = clients[i].WaitForAsync(e => e.Name == "presence" && e.GetAttribute("from") == $"{Room}/{users[i]}" && e.GetAttribute("type") is null && EndToEnd.MucTests.Codes(e).Contains("110"));
                await clients[i].SendStanzaAsync($"<presence to='{Room}/{users[i]}'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>");
                await joined.WaitAsync(TimeSpan.FromSeconds(30));
            }

            await JoinRoomAsync(0);
            var configured = clients[0].WaitForAsync(e => e.Name == "iq" && e.GetAttribute("id") == "instant");
            await clients[0].SendStanzaAsync($"<iq type='set' to='{Room}' id='instant'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'/></query></iq>");
            Assert.That((await configured.WaitAsync(TimeSpan.FromSeconds(30))).GetAttribute("type"), Is.EqualTo("result"), "the room is configured");
            await Parallel.ForEachAsync(Enumerable.Range(1, Occupants - 1), new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (i, _) => await JoinRoomAsync(i));

            // Steady traffic: each client writes to its partner at its pace; one that lost its node waits to be back.
            var sent = new ConcurrentDictionary<string, int>(StringComparer.Ordinal);
            var paused = new bool[Users];
            using var stop = new CancellationTokenSource();
            var clock = Stopwatch.StartNew();
            var traffic = Enumerable.Range(0, Users).Select(i => Task.Run(async () =>
            {
                for (var n = 0; !stop.IsCancellationRequested; n++)
                {
                    if (!Volatile.Read(ref paused[i]))
                    {
                        var id = $"{users[i]}-{n.ToString(CultureInfo.InvariantCulture)}";
                        sent[id] = i ^ 1;
                        await clients[i].SendStanzaAsync($"<message to='{users[i ^ 1]}@localhost' type='chat' id='{id}'><body>{n}</body><origin-id xmlns='urn:xmpp:sid:0' id='{id}'/></message>");
                    }

                    await Task.Delay(Pace);
                }
            })).ToList();
            var roomTraffic = Enumerable.Range(0, RoomSenders).Select(i => Task.Run(async () =>
            {
                for (var n = 0; !stop.IsCancellationRequested; n++)
                {
                    if (!Volatile.Read(ref paused[i]))
                    {
                        await clients[i].SendStanzaAsync($"<message to='{Room}' type='groupchat' id='g-{users[i]}-{n.ToString(CultureInfo.InvariantCulture)}'><body>{n}</body><origin-id xmlns='urn:xmpp:sid:0' id='g-{users[i]}-{n.ToString(CultureInfo.InvariantCulture)}'/></message>");
                    }

                    await Task.Delay(TimeSpan.FromSeconds(1));
                }
            })).ToList();

            var resent = new ConcurrentBag<string>();
            var unacknowledgedAtKills = new HashSet<string>(StringComparer.Ordinal);
            var reports = new List<string>();
            for (var round = 0; round < Kills; round++)
            {
                var k = (round + 1) % 3;
                await Task.Delay(TimeSpan.FromSeconds(3));
                var victims = Enumerable.Range(0, Users).Where(i => clients[i].Node == k).ToList();
                var survivors = Enumerable.Range(0, Users).Where(i => clients[i].Node != k).ToList();
                foreach (var i in victims)
                {
                    Volatile.Write(ref paused[i], true);
                }

                // What the clients had sent and the server not acknowledged around the kill: only such a message may
                // arrive twice (its sender cannot know it arrived, and sends it again or its node forwards it again).
                var window = clients.SelectMany(c => c.UnacknowledgedIds()).ToList();
                var killedAt = clock.Elapsed;
                cluster.Process(k).Kill9();
                unacknowledgedAtKills.UnionWith(window);
                unacknowledgedAtKills.UnionWith(clients.SelectMany(c => c.UnacknowledgedIds()));

                // Every partner of a dead session on another node hears it went offline (they are contacts), within 10 s.
                var toldOf = victims.Where(i => clients[i ^ 1].Node != k).ToList();
                var told = toldOf.Select(i => Task.Run(async () =>
                {
                    await clients[i ^ 1].WentAsync(clients[i].Jid);
                    return clock.Elapsed - killedAt;
                })).ToList();
                // Every surviving occupant sees each of the dead node's occupants leave with 333 (XEP-0045: removed
                // because of an error), and the room answers a message (its node may be the dead one).
                var roomVictims = victims.Where(i => i < Occupants).ToList();
                var roomSurvivors = survivors.Where(i => i < Occupants).ToList();
                var pairs333 = roomSurvivors.SelectMany(s => roomVictims.Select(v => (Survivor: s, Victim: v))).ToList();
                var left = pairs333.Select(p => Task.Run(async () =>
                {
                    var leave = await clients[p.Survivor].WentAsync($"{Room}/{users[p.Victim]}");
                    Assert.That(EndToEnd.MucTests.Codes(leave), Does.Contain("333"), leave.ToString());
                    return clock.Elapsed - killedAt;
                })).ToList();
                // A watcher that chats with nobody joins from a surviving node and writes to the room: the room answers.
                var probe = $"probe-{round.ToString(CultureInfo.InvariantCulture)}";
                await using (var watcher = await cluster.LoginAsync((k + 1) % 3, "watcher", $"w{round.ToString(CultureInfo.InvariantCulture)}"))
                {
                    await watcher.SendAsync($"<presence to='{Room}/watcher{round.ToString(CultureInfo.InvariantCulture)}'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>");
                    await watcher.ReadUntilAsync(e => e.Name == "presence" && e.GetAttribute("from") == $"{Room}/watcher{round.ToString(CultureInfo.InvariantCulture)}" && EndToEnd.MucTests.Codes(e).Contains("110")).WaitAsync(TimeSpan.FromSeconds(30));
                    await watcher.SendAsync($"<message to='{Room}' type='groupchat' id='{probe}'><body>still there?</body></message>");
                    await watcher.ReadUntilAsync(e => e.Name == "message" && e.GetAttribute("id") == probe).WaitAsync(TimeSpan.FromSeconds(30));
                }

                var answered = clock.Elapsed - killedAt;
                var untold = await NotDoneAsync(told, toldOf.Select(i => $"{users[i]}->{users[i ^ 1]}").ToList());
                Assert.That(untold, Is.Empty, $"kill {round + 1} (node {k + 1}): contacts not told of a dead session 30 s after the kill");
                var delays = await Task.WhenAll(told);
                var missing = await NotDoneAsync(left, pairs333.Select(p => $"{users[p.Victim]}->{users[p.Survivor]}(node {clients[p.Survivor].Node + 1})").ToList());
                Assert.That(missing, Is.Empty, $"kill {round + 1} (node {k + 1}): 333 leaves not seen 30 s after the kill ({missing.Count} of {pairs333.Count}; leaves without 333: {string.Join("; ", left.Where(t => t.IsFaulted).Select(t => t.Exception!.InnerException!.Message).Distinct())})");
                var leaves = await Task.WhenAll(left);

                // The dead node's clients log in again on the other two nodes, join the room again, and send again the
                // messages the server had not acknowledged, with their origin ids, as mobile clients do; the node comes back.
                await Task.WhenAll(victims.Select(i => clients[i].Lost)).WaitAsync(TimeSpan.FromSeconds(30));
                await Parallel.ForEachAsync(victims, new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (i, _) =>
                {
                    var again = await clients[i].ReconnectAsync((k + 1 + (i % 2)) % 3);
                    if (i < Occupants)
                    {
                        await JoinRoomAsync(i);
                    }

                    foreach (var xml in again.Where(x => x.StartsWith("<message", StringComparison.Ordinal)))
                    {
                        if (SmClient.IdOf(xml) is { } id && sent.ContainsKey(id))
                        {
                            resent.Add(id);
                        }

                        await clients[i].SendStanzaAsync(xml);
                    }

                    Volatile.Write(ref paused[i], false);
                });
                foreach (var c in clients)
                {
                    c.ClearUnavailable();
                }

                Assert.That(survivors.Where(i => clients[i].Lost.IsCompleted).Select(i => clients[i].Jid), Is.Empty, $"kill {round + 1}: sessions on the other nodes were disturbed");
                Assert.That(delays, Is.Not.Empty, $"kill {round + 1}: no dead session had a contact on another node");
                Assert.That(leaves, Is.Not.Empty, $"kill {round + 1}: no occupant died");
                reports.Add($"kill {round + 1} (node {k + 1} at {killedAt.TotalSeconds:0.0} s): {victims.Count} sessions died, their {delays.Length} contacts on other nodes told after {delays.Min().TotalSeconds:0.0}-{delays.Max().TotalSeconds:0.0} s; " +
                    $"{roomSurvivors.Count} occupants saw {roomVictims.Count} leave with 333 after {leaves.Min().TotalSeconds:0.0}-{leaves.Max().TotalSeconds:0.0} s; the room answered after {answered.TotalSeconds:0.0} s");
                Assert.That(delays.Max(), Is.LessThan(TimeSpan.FromSeconds(10)), reports[^1]);
                Assert.That(leaves.Max(), Is.LessThan(TimeSpan.FromSeconds(10)), reports[^1]);
                Assert.That(answered, Is.LessThan(TimeSpan.FromSeconds(10)), reports[^1]);
                await cluster.StartAsync(k);
            }

            await Task.Delay(TimeSpan.FromSeconds(2));
            await stop.CancelAsync();
            await Task.WhenAll(traffic.Concat(roomTraffic));
            var elapsed = clock.Elapsed;
            await Task.WhenAll(clients.Select(c => c.AllAcknowledgedAsync(TimeSpan.FromSeconds(60))));

            // Every message is acknowledged by now (those unacknowledged at a kill were sent again). Each must have reached
            // its recipient: live, or in its archive (a message acknowledged and routed, but lost with the recipient's
            // connection).
            var acknowledged = sent.Keys.ToList();
            var archived = new ConcurrentDictionary<int, Dictionary<string, int>>();
            await Parallel.ForEachAsync(Enumerable.Range(0, Users), new ParallelOptions { MaxDegreeOfParallelism = 6 }, async (i, _) =>
            {
                await using var check = await cluster.LoginAsync(i % 3, users[i], "check");
                archived[i] = await ClusterTests.ArchivedIdCountsAsync(check);
            });
            var lost = acknowledged.Where(id => !clients[sent[id]].Received.ContainsKey(id) && !archived[sent[id]].ContainsKey(id)).ToList();
            var twice = clients.SelectMany(c => c.Received.Where(r => r.Value > 1 && sent.ContainsKey(r.Key)).Select(r => r.Key)).ToList();
            var duplicates = twice.Count;
            var unexplained = twice.Where(id => !unacknowledgedAtKills.Contains(id)).ToList();
            var archivedTwice = archived.SelectMany(a => a.Value.Where(e => e.Value > 1).Select(e => $"{users[a.Key]}:{e.Key}")).ToList();
            var live = acknowledged.Count(id => clients[sent[id]].Received.ContainsKey(id));
            foreach (var r in reports)
            {
                TestContext.Out.WriteLine(r);
            }

            TestContext.Out.WriteLine($"{sent.Count} messages in {elapsed.TotalSeconds:0} s ({sent.Count / elapsed.TotalSeconds:0} msg/s; partners start on different nodes, the dead nodes' clients pause while they log in again); {acknowledged.Count} acknowledged, {live} of them delivered live, {acknowledged.Count - live - lost.Count} only in the archive, {lost.Count} lost; {unacknowledgedAtKills.Count} unacknowledged at the kills, {resent.Count} sent again after them; {duplicates} delivered twice, {archivedTwice.Count} archived twice");
            Assert.That(lost, Is.Empty, "acknowledged messages lost");
            Assert.That(unexplained, Is.Empty, "messages delivered twice that were acknowledged to their senders before every kill");
            Assert.That(archivedTwice, Is.Empty, "messages archived twice (a message sent again carries the same origin id)");
        }
        finally
        {
            foreach (var c in clients.Where(c => c is not null))
            {
                await c.DisposeAsync();
            }
        }
    }
}
