using System.Text;
using Xmpp.Core;
using Xmpp.Core.Xml;
using Xmpp.Server.Net;

namespace Xmpp.Tests.Server;

/// <summary>The lock-free output queue: nothing reported as queued is lost when the stream closes meanwhile.</summary>
public sealed class OutputQueueTests
{
    [Test]
    public void Bytes_are_bounded_as_well_as_stanzas_and_one_stanza_always_fits()
    {
        var queue = new OutputQueue(() => Stream.Null, "jabber:client");
        Element Big() => new Element("message", Ns.Client) { WireSize = 100_000 };
        Assert.That(queue.TryEnqueue(Big(), 1000, byteLimit: 50_000), Is.EqualTo(EnqueueResult.Queued), "alone it exceeds the limit, but is taken");
        Assert.That(queue.TryEnqueue(Big(), 1000, byteLimit: 50_000), Is.EqualTo(EnqueueResult.Full));
        Assert.That(queue.QueuedBytes, Is.EqualTo(100_000));
        Assert.That(queue.TryEnqueue(new Element("presence", Ns.Client), 1000, byteLimit: 150_000), Is.EqualTo(EnqueueResult.Queued));
        Assert.That(queue.QueuedBytes, Is.EqualTo(100_000 + OutputQueue.MinimumCost), "an element built in code counts the minimum");
    }

    [Test]
    [Repeat(20)]
    public async Task Every_stanza_reported_as_queued_is_written_before_the_closing_tag()
    {
        var output = new MemoryStream();
        var queue = new OutputQueue(() => output, "jabber:client");
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var writer = queue.RunAsync(_ => { }, cts.Token);
        var queued = new System.Collections.Concurrent.ConcurrentBag<int>();
        using var start = new Barrier(5);
        var producers = Enumerable.Range(0, 4).Select(p => Task.Run(() =>
        {
            start.SignalAndWait();
            for (var i = 0; i < 2000; i++)
            {
                var id = p * 10_000 + i;
                if (queue.TryEnqueue(new Element("message", Ns.Client).SetAttribute("id", id.ToString(System.Globalization.CultureInfo.InvariantCulture)), 100_000) == EnqueueResult.Queued)
                {
                    queued.Add(id);
                }
            }
        })).ToList();
        start.SignalAndWait();
        await Task.Delay(Random.Shared.Next(0, 3));
        queue.Complete("</stream:stream>");
        await Task.WhenAll(producers);
        await writer.WaitAsync(TimeSpan.FromSeconds(20));

        var text = Encoding.UTF8.GetString(output.ToArray());
        Assert.That(text, Does.EndWith("</stream:stream>"));
        var written = System.Text.RegularExpressions.Regex.Matches(text, "id='(\\d+)'").Select(m => int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture)).ToHashSet();
        Assert.That(written, Is.EquivalentTo(queued.ToHashSet()), "written exactly what was reported as queued");
        Assert.That(queue.Drain(), Is.Empty);
    }
}
