using System.Globalization;
using Xmpp.Core.Xml;

namespace Xmpp.Tests.Cluster;

/// <summary>
/// A client's messages to another node do not wait for each other (README, "Running a cluster": the hop), yet each
/// recipient gets them in the order sent (RFC 6120 §10.1) and XEP-0198 counts each only once it got there.
/// </summary>
[TestFixture]
[NonParallelizable]
[ClusterLogs]
[CancelAfter(180_000)]
public sealed class ClusterPipelineTests
{
    private const string Sm = "urn:xmpp:sm:3";
    private const int Messages = 400;

    [Test]
    public async Task A_burst_of_messages_to_another_node_arrives_in_order_and_counts_once_delivered()
    {
        await using var cluster = await ClusterNodes.CreateAsync(2, "alice", "bob", "carol");
        await cluster.StartAsync(0);
        await cluster.StartAsync(1);
        await using var alice = await cluster.LoginAsync(0, "alice", "phone");
        await using var bob = await cluster.LoginAsync(1, "bob", "laptop");
        await using var carol = await cluster.LoginAsync(0, "carol", "desk");
        await alice.SendAsync($"<enable xmlns='{Sm}'/>");
        await alice.ReadUntilAsync(e => e.Name == "enabled");

        // One to bob first, so that alice's node knows bob's home and the rest go in batches to it.
        await alice.SendAsync("<message to='bob@localhost/laptop' type='chat' id='first'><body>hi</body></message>");
        await bob.ReadUntilAsync(e => e.Name == "message" && e.GetAttribute("id") == "first");

        // Then a burst in one write: bob (the other node) and carol (this node) alternately, and a presence in the
        // middle to bob's full JID (directed presence), which waits for the messages before it.
        var burst = new System.Text.StringBuilder();
        for (var i = 0; i < Messages; i++)
        {
            var to = i % 2 == 0 ? "bob@localhost/laptop" : "carol@localhost/desk";
            burst.Append(CultureInfo.InvariantCulture, $"<message to='{to}' type='chat' id='m{i}'><body>{i}</body></message>");
            if (i == Messages / 2)
            {
                burst.Append("<presence to='bob@localhost/laptop'/>");
            }
        }

        await alice.SendAsync(burst.ToString());

        async Task<List<string>> ReceiveAsync(EndToEnd.RawXmppClient client, int count, bool presence)
        {
            var order = new List<string>();
            while (order.Count < count)
            {
                var e = await client.ReadUntilAsync(x => (x.Name == "message" && x.GetAttribute("id")?.StartsWith('m') == true) || (presence && x.Name == "presence" && x.GetAttribute("from") == "alice@localhost/phone"));
                order.Add(e.Name == "presence" ? "presence" : e.GetAttribute("id")!);
            }

            return order;
        }

        var toBob = ReceiveAsync(bob, (Messages / 2) + 1, presence: true);
        var toCarol = ReceiveAsync(carol, Messages / 2, presence: false);
        var expectedBob = Enumerable.Range(0, Messages).Where(i => i % 2 == 0).Select(i => $"m{i}").ToList();
        expectedBob.Insert(expectedBob.IndexOf($"m{Messages / 2}") + 1, "presence");
        Assert.That(await toBob.WaitAsync(TimeSpan.FromSeconds(30)), Is.EqualTo(expectedBob), "bob, on the other node, got them in the order sent");
        Assert.That(await toCarol.WaitAsync(TimeSpan.FromSeconds(30)), Is.EqualTo(Enumerable.Range(0, Messages).Where(i => i % 2 == 1).Select(i => $"m{i}")), "carol, on alice's node, too");

        // XEP-0198: every stanza counted once handled, none twice: the first message, the burst and the presence.
        // An <r/> waits for the messages before it, so its answer counts them all.
        await alice.SendAsync($"<r xmlns='{Sm}'/>");
        var a = await alice.ReadUntilAsync(e => e.Name == "a" && e.Namespace == Sm);
        Assert.That(a.GetAttribute("h"), Is.EqualTo((Messages + 2).ToString(CultureInfo.InvariantCulture)), a.ToString());

        // Another burst, the <r/> in the same write right behind it: still every one of them.
        var again = string.Concat(Enumerable.Range(0, 100).Select(i => $"<message to='bob@localhost/laptop' type='chat' id='n{i}'><body>{i}</body></message>"));
        await alice.SendAsync(again + $"<r xmlns='{Sm}'/>");
        a = await alice.ReadUntilAsync(e => e.Name == "a" && e.Namespace == Sm);
        Assert.That(a.GetAttribute("h"), Is.EqualTo((Messages + 102).ToString(CultureInfo.InvariantCulture)), a.ToString());
    }

    [Test]
    public async Task A_client_that_asks_for_an_ack_after_every_message_gets_every_answer_in_order_and_its_messages_in_order()
    {
        await using var cluster = await ClusterNodes.CreateAsync(2, "alice", "bob");
        await cluster.StartAsync(0);
        await cluster.StartAsync(1);
        await using var alice = await cluster.LoginAsync(0, "alice", "phone");
        await using var bob = await cluster.LoginAsync(1, "bob", "laptop");
        await alice.SendAsync($"<enable xmlns='{Sm}'/>");
        await alice.ReadUntilAsync(e => e.Name == "enabled");
        await alice.SendAsync("<message to='bob@localhost/laptop' type='chat' id='first'><body>hi</body></message>");
        await bob.ReadUntilAsync(e => e.Name == "message" && e.GetAttribute("id") == "first");

        // As mobile clients do: an <r/> behind every message. Each <r/> is answered once the messages before it are
        // counted (each once it got to bob's node), so the answers never go down and never count a message before it
        // got there, and the last one counts them all.
        var pairs = string.Concat(Enumerable.Range(0, Messages).Select(i => $"<message to='bob@localhost/laptop' type='chat' id='m{i}'><body>{i}</body></message><r xmlns='{Sm}'/>"));
        await alice.SendAsync(pairs);
        var received = new List<string>();
        while (received.Count < Messages)
        {
            var e = await bob.ReadUntilAsync(x => x.Name == "message" && x.GetAttribute("id")?.StartsWith('m') == true).WaitAsync(TimeSpan.FromSeconds(30));
            received.Add(e.GetAttribute("id")!);
        }

        Assert.That(received, Is.EqualTo(Enumerable.Range(0, Messages).Select(i => $"m{i}")), "bob got them in the order sent");
        var answers = new List<long>();
        while (answers.Count < Messages)
        {
            var a = await alice.ReadUntilAsync(e => e.Name == "a" && e.Namespace == Sm).WaitAsync(TimeSpan.FromSeconds(30));
            answers.Add(long.Parse(a.GetAttribute("h")!, CultureInfo.InvariantCulture));
        }

        Assert.That(answers, Is.Ordered, "answers in increasing order");
        Assert.That(answers.Select((h, i) => h >= i + 2), Has.All.True, "each answer counts at least the messages before its <r/> (and the first one)");
        Assert.That(answers[^1], Is.EqualTo(Messages + 1), "the last answer counts every message, once");

        // Anything else still waits for the messages before it: a ping's answer comes after the count covers them.
        await alice.SendAsync(string.Concat(Enumerable.Range(0, 50).Select(i => $"<message to='bob@localhost/laptop' type='chat' id='n{i}'><body>{i}</body></message>")) + "<iq type='get' id='ping' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>" + $"<r xmlns='{Sm}'/>");
        await alice.ReadUntilAsync(e => e.Name == "iq" && e.GetAttribute("id") == "ping").WaitAsync(TimeSpan.FromSeconds(30));
        var last = await alice.ReadUntilAsync(e => e.Name == "a" && e.Namespace == Sm).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.That(last.GetAttribute("h"), Is.EqualTo((Messages + 52).ToString(CultureInfo.InvariantCulture)), last.ToString());
    }
}
