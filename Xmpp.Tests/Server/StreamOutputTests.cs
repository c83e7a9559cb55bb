using Xmpp.Core;
using Xmpp.Core.Xml;
using Xmpp.Server.Streams;
using Xmpp.Tests.Server.Streams;

namespace Xmpp.Tests.Server;

/// <summary>The lock-free output queue of every stream: nothing reported as queued is lost when the stream closes meanwhile.</summary>
public sealed class StreamOutputTests
{
    [Test]
    public void Bytes_are_bounded_as_well_as_stanzas_and_one_stanza_always_fits()
    {
        var queue = new StreamOutput();
        Element Big() => new Element("message", Ns.Client) { WireSize = 100_000 };
        Assert.That(queue.TryEnqueue(Big(), 1000, byteLimit: 50_000), Is.EqualTo(Enqueued.Queued), "alone it exceeds the limit, but is taken");
        Assert.That(queue.TryEnqueue(Big(), 1000, byteLimit: 50_000), Is.EqualTo(Enqueued.Full));
        Assert.That(queue.QueuedBytes, Is.EqualTo(100_000));
        Assert.That(queue.TryEnqueue(new Element("presence", Ns.Client), 1000, byteLimit: 150_000), Is.EqualTo(Enqueued.Queued));
        Assert.That(queue.QueuedBytes, Is.EqualTo(100_000 + StreamOutput.MinimumCost), "an element built in code counts the minimum");
    }

    [Test]
    [Repeat(20)]
    public async Task Every_stanza_reported_as_queued_is_written_before_the_closing_tag()
    {
        var queue = new StreamOutput();
        var transport = new S2sTestTransport();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var writer = queue.RunAsync(transport, _ => { }, cts.Token);
        var queued = new System.Collections.Concurrent.ConcurrentBag<string>();
        using var start = new Barrier(5);
        var producers = Enumerable.Range(0, 4).Select(p => Task.Run(() =>
        {
            start.SignalAndWait();
            for (var i = 0; i < 2000; i++)
            {
                var id = (p * 10_000 + i).ToString(System.Globalization.CultureInfo.InvariantCulture);
                if (queue.TryEnqueue(new Element("message", Ns.Client).SetAttribute("id", id), 100_000) == Enqueued.Queued)
                {
                    queued.Add(id);
                }
            }
        })).ToList();
        start.SignalAndWait();
        await Task.Delay(Random.Shared.Next(0, 3));
        queue.Close(null, null);
        await Task.WhenAll(producers);
        await writer.WaitAsync(TimeSpan.FromSeconds(20));

        var items = transport.Written();
        Assert.That(items[^1].Kind, Is.EqualTo(OutputKind.Close));
        var written = items.Where(i => i.Kind == OutputKind.Stanza).Select(i => i.Element!.GetAttribute("id")!).ToHashSet();
        Assert.That(written, Is.EquivalentTo(queued.ToHashSet()), "written exactly what was reported as queued");
        Assert.That(queue.Drain(), Is.Empty);
    }
}
