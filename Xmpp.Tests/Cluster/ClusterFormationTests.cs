using System.Text.RegularExpressions;
using Xmpp.Core;

namespace Xmpp.Tests.Cluster;

/// <summary>
/// How a cluster forms (README, "Running a cluster"): through the membership table alone, with no join command and
/// no start order, also after every node was stopped (ejabberd's Mnesia wants the last node stopped to start first).
/// </summary>
[TestFixture]
[NonParallelizable]
[ClusterLogs]
[CancelAfter(300_000)]
public sealed partial class ClusterFormationTests
{
    [Test]
    public async Task Eight_nodes_started_at_once_form_one_cluster()
    {
        await using var cluster = await ClusterNodes.CreateAsync(8, "alice", "bob");

        // All at once, in a shuffled order: whoever writes the membership table first, they end up one cluster.
        var order = Enumerable.Range(0, 8).OrderBy(_ => Random.Shared.Next()).ToList();
        await Task.WhenAll(order.Select(cluster.StartAsync));
        await WaitForActiveAsync(cluster, 0, 8);

        // Users on the first and the last node talk to each other.
        await ChatAsync(cluster, 0, 7, "from node 1 to node 8");
    }

    [Test]
    public async Task A_stopped_cluster_starts_again_in_any_order()
    {
        await using var cluster = await ClusterNodes.CreateAsync(3, "alice", "bob");
        foreach (var n in new[] { 1, 2, 0 })
        {
            await cluster.StartAsync(n);
        }

        await WaitForActiveAsync(cluster, 0, 3);

        // Every node stops; the one stopped last is not the one started first again.
        foreach (var n in new[] { 0, 1, 2 })
        {
            await cluster.Process(n).SignalAsync("TERM");
            Assert.That(await cluster.Process(n).WaitForExitAsync(TimeSpan.FromSeconds(60)), Is.True);
        }

        foreach (var n in new[] { 0, 2, 1 })
        {
            await cluster.StartAsync(n);
        }

        await WaitForActiveAsync(cluster, 1, 3);
        await ChatAsync(cluster, 0, 2, "after a full restart");
    }

    /// <summary>Alice on node <paramref name="from"/> writes to bob on node <paramref name="to"/>, who receives it.</summary>
    private static async Task ChatAsync(ClusterNodes cluster, int from, int to, string text)
    {
        await using var alice = await cluster.LoginAsync(from, "alice", "a");
        await using var bob = await cluster.LoginAsync(to, "bob", "b");
        await alice.SendAsync($"<message to='bob@localhost/b' type='chat' id='x'><body>{text}</body></message>");
        var m = await bob.ReadUntilAsync(e => e.Name == "message");
        Assert.That(m.ChildText("body", Ns.Client), Is.EqualTo(text));
    }

    /// <summary>Waits (bounded) until <c>xmppserver check</c> on node <paramref name="node"/> lists <paramref name="count"/> distinct active nodes.</summary>
    private static async Task WaitForActiveAsync(ClusterNodes cluster, int node, int count)
    {
        var output = string.Empty;
        for (var attempt = 0; attempt < 30; attempt++)
        {
            (_, output) = await cluster.CommandAsync(node, "check");
            var active = ActiveMember().Matches(output).Select(m => m.Groups[1].Value).ToHashSet();
            if (active.Count == count)
            {
                TestContext.Out.WriteLine(output);
                return;
            }

            await Task.Delay(TimeSpan.FromSeconds(1));
        }

        Assert.Fail($"not {count} active members:\n{output}");
    }

    [GeneratedRegex(@"(n[0-9]+) at \S+ \(epoch [0-9]+\) active")]
    private static partial Regex ActiveMember();
}
