using NLog;
using Xmpp.Server.Cluster.Orleans;

namespace Xmpp.Tests.Server;

/// <summary>
/// The pump from an account's home to the node its client is connected to, over a fake node grain: items reach the
/// edge node in the order they were queued, and a flow of work that queued some (<see cref="EdgeMarks"/>) is done
/// only once they reached it. No silo, no sockets.
/// </summary>
public sealed class EdgePumpTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);

    [Test]
    public async Task What_a_flow_of_work_queued_has_reached_the_edge_node_before_the_flow_is_done()
    {
        var edge = new GatedEdge();
        using var stopping = new CancellationTokenSource();
        using var pump = new EdgePump(null!, edge, LogManager.GetLogger("test"), stopping.Token);
        using var marks = new EdgeMarks(null);

        // The first batch is held by the edge node; the flow's item is queued behind it.
        var first = pump.Post(new EdgeItem(1, EdgeItemKind.Stanza, "<message id='a'/>"));
        await edge.Called.WaitAsync(Bound);
        marks.Add(pump, pump.Post(new EdgeItem(1, EdgeItemKind.Stanza, "<presence type='unsubscribe'/>")));
        var reached = marks.ReachedAsync(CancellationToken.None);
        Assert.That(first, Is.EqualTo(1));
        Assert.That(reached.IsCompleted, Is.False, "done before its item reached the edge node");

        edge.Release();
        await reached.WaitAsync(Bound);
        Assert.That(edge.Received, Is.EqualTo(new[] { "<message id='a'/>", "<presence type='unsubscribe'/>" }), "in the order queued");
        await stopping.CancelAsync();
    }

    [Test]
    public async Task A_flow_that_queued_nothing_for_other_nodes_does_not_wait()
    {
        using var marks = new EdgeMarks(null);
        await marks.ReachedAsync(CancellationToken.None).WaitAsync(TimeSpan.FromMilliseconds(100));
        Assert.Pass();
    }

    [Test]
    public async Task An_inner_flow_s_items_count_for_the_outer_one_too()
    {
        var edge = new GatedEdge();
        using var stopping = new CancellationTokenSource();
        using var pump = new EdgePump(null!, edge, LogManager.GetLogger("test"), stopping.Token);
        using var outer = new EdgeMarks(null);
        using (var inner = new EdgeMarks(outer))
        {
            inner.Add(pump, pump.Post(new EdgeItem(1, EdgeItemKind.Stanza, "<iq type='set'/>")));
        }

        await edge.Called.WaitAsync(Bound);
        var reached = outer.ReachedAsync(CancellationToken.None);
        Assert.That(reached.IsCompleted, Is.False);
        edge.Release();
        await reached.WaitAsync(Bound);
        await stopping.CancelAsync();
    }

    /// <summary>An edge node whose first call waits until released.</summary>
    private sealed class GatedEdge : INodeGrain
    {
        private readonly TaskCompletionSource _called = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _release = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public List<string> Received { get; } = [];

        public Task Called => _called.Task;

        public void Release() => _release.TrySetResult();

        public async Task<long[]> ToEdgesAsync(EdgeItem[] batch)
        {
            _called.TrySetResult();
            await _release.Task;
            lock (Received)
            {
                Received.AddRange(batch.Select(i => i.Xml));
            }

            return [];
        }

        public Task<bool[]> DeliverAsync(Forwarded[] batch, string sender, long seq) => throw new NotSupportedException();

        public Task<string> TakeWaitingAsync(string bare, string resumeId) => throw new NotSupportedException();

        public Task<string[]> CheckpointsAsync(string domain) => throw new NotSupportedException();

        public Task BlockAsync(string account, DateTimeOffset until) => throw new NotSupportedException();
    }
}
