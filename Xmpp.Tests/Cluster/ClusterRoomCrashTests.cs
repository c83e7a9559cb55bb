using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using Npgsql;
using NUnit.Framework;
using Xmpp.Core.Xml;
using Xmpp.Tests.EndToEnd;

namespace Xmpp.Tests.Cluster;

/// <summary>
/// A room whose node is killed (kill -9) goes on on another node from its checkpoint: the occupants on the other
/// nodes stay joined, those of the dead node leave with 333, its recent history is kept, and no message its
/// occupants' servers acknowledged is lost. Real processes on 127.0.0.1-3 and a throwaway PostgreSQL.
/// </summary>
[TestFixture]
[NonParallelizable]
[ClusterLogs]
public sealed class ClusterRoomCrashTests
{
    private const string Hall = "hall@conference.localhost";
    private const string Quiet = "quiet@conference.localhost";
    private const int Occupants = 30;

    [Test]
    [CancelAfter(300_000)]
    public async Task A_room_whose_node_is_killed_under_traffic_goes_on_elsewhere_with_its_surviving_occupants_and_history()
    {
        string[] users = [.. Enumerable.Range(0, Occupants).Select(Name), "q1", "q2", "q3", "late"];
        await using var cluster = await ClusterNodes.CreateAsync(3, users);
        await cluster.StartAsync(0);
        await cluster.StartAsync(1);
        await cluster.StartAsync(2);
        var clock = Stopwatch.StartNew();

        // The quiet room: its owner on node 2 (homed there), a member on each other node, five messages of history.
        await using var q2 = await cluster.LoginAsync(1, "q2");
        await using var q1 = await cluster.LoginAsync(0, "q1");
        await using var q3 = await cluster.LoginAsync(2, "q3");
        await MucTests.JoinAsync(q2, "Q2", Quiet);
        await MucTests.InstantRoomAsync(q2, Quiet);
        await MucTests.JoinAsync(q1, "Q1", Quiet);
        await MucTests.JoinAsync(q3, "Q3", Quiet);
        for (var i = 1; i <= 5; i++)
        {
            await q2.SendAsync($"<message to='{Quiet}' type='groupchat' id='h{i}'><body>history {i}</body></message>");
        }

        await q3.ReadUntilAsync(e => e.Name == "message" && e.GetAttribute("id") == "h5");
        await WaitForCheckpointAsync(cluster, Quiet, "h5");

        // The busy room: 30 occupants, 10 on each node; its owner (the first) on node 2, where it lives.
        await using var owner = await cluster.LoginAsync(1, Name(1));
        await MucTests.JoinAsync(owner, Nick(1), Hall);
        await MucTests.InstantRoomAsync(owner, Hall);
        var draining = Task.Run(async () =>
        {
            while (await owner.ReadOrEndAsync(TimeSpan.FromMinutes(5)) is not null)
            {
            }
        });
        var clients = new ConcurrentDictionary<int, SmClient>();
        var seen = new ConcurrentDictionary<int, Observed>();
        foreach (var i in Enumerable.Range(0, Occupants).Where(i => i != 1))
        {
            var observed = seen[i] = new Observed(clock);
            var c = clients[i] = await SmClient.ConnectAsync(cluster, i % 3, Name(i), "r");
            c.Observe = observed.Add;
            await c.SendStanzaAsync($"<presence to='{Hall}/{Nick(i)}'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>");
            await observed.WaitAsync(e => e.Name == "presence" && e.GetAttribute("from") == $"{Hall}/{Nick(i)}" && MucTests.Codes(e).Contains("110"), TimeSpan.FromSeconds(20));
        }

        var survivors = clients.Keys.Where(i => i % 3 != 1).Order().ToArray();
        var dead = Enumerable.Range(0, Occupants).Where(i => i % 3 == 1).ToArray();
        Assert.That(File.ReadAllText(cluster.Log(1)), Does.Contain($"entered {Hall}"), "the room lives on node 2");

        // Traffic: two senders on each node, a message every 100 ms each, until well after the kill.
        var sent = new ConcurrentDictionary<int, ConcurrentBag<string>>();
        using var stop = new CancellationTokenSource();
        async Task SendAsync(int i)
        {
            var ids = sent[i] = [];
            try
            {
                for (var n = 0; !stop.IsCancellationRequested; n++)
                {
                    var id = $"{Name(i)}-{n.ToString(CultureInfo.InvariantCulture)}";
                    var sending = clients[i].SendStanzaAsync($"<message to='{Hall}' type='groupchat' id='{id}'><body>{id}</body></message>");
                    ids.Add(id);
                    await sending;
                    await Task.Delay(100);
                }
            }
            catch (Exception ex) when (ex is IOException or ObjectDisposedException or TimeoutException)
            {
                // Its node is gone.
            }
        }

        int[] senders = [0, 3, 2, 5, 4, 7];
        var sending = senders.Select(i => Task.Run(() => SendAsync(i))).ToArray();
        await Task.Delay(TimeSpan.FromSeconds(3));

        var atKill = senders.ToDictionary(i => i, i => sent[i].Count);
        var killedAt = clock.Elapsed;
        cluster.Process(1).Kill9();
        await Task.WhenAll(dead.Where(clients.ContainsKey).Select(i => clients[i].Lost.WaitAsync(TimeSpan.FromSeconds(10))));

        // What the dead node acknowledged: the ids sent, read before those still unacknowledged. The dead node's senders
        // go on sending into their lost streams; an id read the other way round could be sent between the two reads
        // and count as acknowledged.
        var deadAcked = new HashSet<string>(StringComparer.Ordinal);
        foreach (var i in senders.Where(i => i % 3 == 1))
        {
            var ids = sent[i].ToArray();
            deadAcked.UnionWith(ids.Except(clients[i].UnacknowledgedIds()));
        }

        // Every survivor is told each occupant of the dead node left (333), within 10 s.
        var leaves = new List<TimeSpan>();
        foreach (var s in survivors)
        {
            foreach (var d in dead)
            {
                var left = await seen[s].WaitAsync(e => e.Name == "presence" && e.GetAttribute("type") == "unavailable" && e.GetAttribute("from") == $"{Hall}/{Nick(d)}", TimeSpan.FromSeconds(30));
                Assert.That(MucTests.Codes(left.Element), Does.Contain("333"), left.Element.ToString());
                leaves.Add(left.At - killedAt);
            }
        }

        // The room answers again: the first message sent after the kill reaches the survivors.
        bool SentAfterKill(string? id) => id is not null && senders.Any(i => i % 3 != 1 && id.StartsWith(Name(i) + "-", StringComparison.Ordinal) &&
            int.Parse(id.AsSpan(Name(i).Length + 1), CultureInfo.InvariantCulture) >= atKill[i]);
        var answered = await seen[survivors[0]].WaitAsync(e => e.Name == "message" && e.GetAttribute("type") == "groupchat" && SentAfterKill(e.GetAttribute("id")), TimeSpan.FromSeconds(30));
        await Task.Delay(TimeSpan.FromSeconds(8));
        await stop.CancelAsync();
        await Task.WhenAll(sending);
        await Task.WhenAll(survivors.Select(i => clients[i].AllAcknowledgedAsync(TimeSpan.FromSeconds(60))));

        // Nothing a survivor's server or the dead node acknowledged is lost to any survivor.
        var acked = senders.Where(i => i % 3 != 1).SelectMany(i => sent[i]).Concat(deadAcked).ToList();
        var lost = new List<string>();
        var duplicates = 0;
        foreach (var id in acked)
        {
            foreach (var s in survivors)
            {
                if (!clients[s].Received.TryGetValue(id, out var times))
                {
                    lost.Add($"{id} to {Name(s)}");
                }
                else if (times > 1)
                {
                    duplicates++;
                }
            }
        }

        // A newcomer sees the 20 surviving occupants and none of the dead node's; the quiet room kept its history.
        await using var late = await cluster.LoginAsync(0, "late");
        var joined = await MucTests.JoinAsync(late, "Late", Hall);
        var present = joined.Where(e => e.Name == "presence" && e.GetAttribute("type") is null).Select(e => e.GetAttribute("from")!).ToHashSet();
        var quiet = await MucTests.JoinAsync(late, "Late", Quiet);
        var history = quiet.Where(e => e.Name == "message" && e.Child("delay", "urn:xmpp:delay") is not null).Select(e => e.GetAttribute("id")).ToList();
        var quietPresent = quiet.Where(e => e.Name == "presence" && e.GetAttribute("type") is null).Select(e => e.GetAttribute("from")!).ToHashSet();
        var takenOver = new[] { 0, 2 }.Sum(n => File.ReadAllText(cluster.Log(n)).Split($"{Hall}: its node").Length - 1);

        TestContext.Out.WriteLine(
            $"kill -9 of the room's node: {survivors.Length} survivors told of {dead.Length} leaves (333) in {leaves.Min().TotalSeconds:0.0}-{leaves.Max().TotalSeconds:0.0} s; " +
            $"the room answered {(answered.At - killedAt).TotalSeconds:0.0} s after the kill; {acked.Count} acknowledged messages ({deadAcked.Count} by the dead node) x {survivors.Length} survivors: " +
            $"{lost.Count} lost, {duplicates} duplicate deliveries; {present.Count} occupants seen by a newcomer; quiet room history {string.Join(",", history)}");
        Assert.That(leaves.Max(), Is.LessThan(TimeSpan.FromSeconds(10)), "every survivor was told of the dead node's occupants within 10 s");
        Assert.That(answered.At - killedAt, Is.LessThan(TimeSpan.FromSeconds(10)), "the room answered within 10 s");
        Assert.That(lost, Is.Empty, "acknowledged messages lost");
        Assert.That(present, Is.SupersetOf(survivors.Select(i => $"{Hall}/{Nick(i)}")), "the survivors are still joined");
        Assert.That(present.Intersect(dead.Select(i => $"{Hall}/{Nick(i)}")), Is.Empty, "the dead node's occupants are gone");
        Assert.That(history, Is.EqualTo(new[] { "h1", "h2", "h3", "h4", "h5" }), "the quiet room kept its history");
        Assert.That(quietPresent, Is.SupersetOf(new[] { $"{Quiet}/Q1", $"{Quiet}/Q3" }).And.Not.Contains($"{Quiet}/Q2"));
        Assert.That(takenOver, Is.EqualTo(1), "one node took the room over");

        foreach (var c in clients.Values)
        {
            await c.DisposeAsync();
        }

        await owner.DisposeAsync();
        await draining.WaitAsync(TimeSpan.FromSeconds(10)).ContinueWith(_ => { }, TaskScheduler.Default);
    }

    private static string Name(int i) => "u" + i.ToString("00", CultureInfo.InvariantCulture);

    private static string Nick(int i) => "N" + i.ToString("00", CultureInfo.InvariantCulture);

    /// <summary>Waits until the room's checkpoint in the shared database holds <paramref name="text"/>.</summary>
    private static async Task WaitForCheckpointAsync(ClusterNodes cluster, string room, string text)
    {
        await using var connection = new NpgsqlConnection(cluster.Connection);
        await connection.OpenAsync();
        var started = Stopwatch.StartNew();
        while (true)
        {
            await using var cmd = new NpgsqlCommand("SELECT snapshot FROM cluster_checkpoints WHERE jid = $1", connection) { Parameters = { new() { Value = room } } };
            if (await cmd.ExecuteScalarAsync() is string snapshot && snapshot.Contains(text, StringComparison.Ordinal))
            {
                return;
            }

            Assert.That(started.Elapsed, Is.LessThan(TimeSpan.FromSeconds(10)), $"no checkpoint of {room} with {text}");
            await Task.Delay(50);
        }
    }

    /// <summary>What one client received, with when, and waits for a stanza to arrive.</summary>
    private sealed class Observed(Stopwatch clock)
    {
        private readonly List<(TimeSpan At, Element Element)> _items = [];
        private readonly List<(Func<Element, bool> Match, TaskCompletionSource<(TimeSpan, Element)> Done)> _waiters = [];

        public void Add(Element e)
        {
            lock (_items)
            {
                var at = clock.Elapsed;
                _items.Add((at, e));
                foreach (var w in _waiters.Where(w => w.Match(e)).ToList())
                {
                    _waiters.Remove(w);
                    w.Done.TrySetResult((at, e));
                }
            }
        }

        public async Task<(TimeSpan At, Element Element)> WaitAsync(Func<Element, bool> match, TimeSpan timeout)
        {
            TaskCompletionSource<(TimeSpan, Element)> done;
            lock (_items)
            {
                foreach (var (at, e) in _items)
                {
                    if (match(e))
                    {
                        return (at, e);
                    }
                }

                done = new TaskCompletionSource<(TimeSpan, Element)>(TaskCreationOptions.RunContinuationsAsynchronously);
                _waiters.Add((match, done));
            }

            return await done.Task.WaitAsync(timeout);
        }
    }
}
