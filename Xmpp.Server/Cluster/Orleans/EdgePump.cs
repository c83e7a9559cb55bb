using System.Threading.Channels;
using NLog;

namespace Xmpp.Server.Cluster.Orleans;

/// <summary>
/// What a home node sends to one edge node, in order: one <see cref="INodeGrain.ToEdgesAsync"/> call at a time, with
/// everything queued meanwhile (a session's stanzas must reach its client in the order they were routed). Each item
/// is numbered as it is queued, so that a caller can wait until what it queued has reached the edge node
/// (<see cref="ReachedAsync"/>; see <see cref="EdgeMarks"/>).
/// </summary>
internal sealed class EdgePump : IDisposable
{
    private const int MaxBatch = 512;
    private readonly Channel<(EdgeItem Item, long Seq)> _queue = Channel.CreateUnbounded<(EdgeItem, long)>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Lock _posting = new();
    private readonly OrleansCluster _home;
    private readonly INodeGrain _edge;
    private readonly Logger _log;
    private readonly CancellationToken _stopping;
    private long _posted;
    private long _reached;
    private TaskCompletionSource _batchDone = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public EdgePump(OrleansCluster home, INodeGrain edge, Logger log, CancellationToken stopping)
    {
        _home = home;
        _edge = edge;
        _log = log;
        _stopping = stopping;
        _ = RunAsync(stopping);
    }

    /// <summary>Queues an item; its number (0 when the pump has stopped).</summary>
    public long Post(EdgeItem item)
    {
        // Numbered and queued under one lock: the queue's order is the numbers' order.
        lock (_posting)
        {
            if (!_queue.Writer.TryWrite((item, _posted + 1)))
            {
                return 0;
            }

            return ++_posted;
        }
    }

    /// <summary>Completes once the batch holding item <paramref name="seq"/> was handed to the edge node (or failed: its death ends the proxies).</summary>
    public async Task ReachedAsync(long seq)
    {
        while (Volatile.Read(ref _reached) < seq)
        {
            var done = Volatile.Read(ref _batchDone).Task;
            if (Volatile.Read(ref _reached) >= seq)
            {
                return;
            }

            await done.ConfigureAwait(false);
        }
    }

    private async Task RunAsync(CancellationToken ct)
    {
        var reader = _queue.Reader;
        try
        {
            while (await reader.WaitToReadAsync(ct).ConfigureAwait(false))
            {
                var batch = new List<EdgeItem>();
                var last = 0L;
                while (batch.Count < MaxBatch && reader.TryRead(out var next))
                {
                    batch.Add(next.Item);
                    last = next.Seq;
                }

                try
                {
                    var unknown = await _edge.ToEdgesAsync([.. batch]).ConfigureAwait(false);
                    if (unknown.Length > 0)
                    {
                        // Off this loop: ending those proxies routes presence, and the next batch need not wait for it.
                        _ = UnknownAsync([.. batch.Where(i => unknown.Contains(i.Id))]);
                    }
                }
                catch (Exception ex) when (!ct.IsCancellationRequested)
                {
                    // The edge node is gone or unreachable (an Orleans cancellation included: not this pump's
                    // stopping): its death ends the proxies (the stanzas are in the archive).
                    _log.Warn("{Count} item(s) for sessions on another node were not delivered: {Reason}", batch.Count, ex.Message);
                }

                Reached(last);
            }
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }
        finally
        {
            // Nobody waits on a pump that has stopped.
            Reached(long.MaxValue);
        }
    }

    private void Reached(long seq)
    {
        Volatile.Write(ref _reached, seq);
        Interlocked.Exchange(ref _batchDone, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
    }

    private async Task UnknownAsync(EdgeItem[] items)
    {
        try
        {
            await _home.UnknownAtEdgeAsync(items).ConfigureAwait(false);
        }
        catch (Exception ex) when (!_stopping.IsCancellationRequested)
        {
            _log.Error(ex, "Ending {Count} session(s) that their edge node no longer knows failed", items.Select(i => i.Id).Distinct().Count());
        }
    }

    public void Dispose() => _queue.Writer.TryComplete();
}

/// <summary>
/// What one piece of work (a request being answered, a stanza from another node being routed) queued for clients
/// connected to other nodes, by pump: the work waits for it to reach those nodes before it says it is done, so
/// that what it caused is seen before its answer is. One user removes another from the roster: the other's client
/// has the unsubscribe before the first client has the result of its request, as on a single node.
/// </summary>
internal sealed class EdgeMarks(EdgeMarks? outer, AsyncLocal<EdgeMarks?>? scope = null) : IReachScope
{
    /// <summary>How long an answer waits at most for an edge node that does not take its batch.</summary>
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(5);

    // Made at the first mark: most flows of work (every iq, every stanza from another node) queue nothing for an edge.
    private Lock? _gate;
    private Dictionary<EdgePump, long>? _marks;

    public EdgeMarks? Outer => outer;

    private Lock Gate => Volatile.Read(ref _gate) ?? Interlocked.CompareExchange(ref _gate, new Lock(), null) ?? _gate!;

    public void Add(EdgePump pump, long seq)
    {
        lock (Gate)
        {
            _marks ??= [];
            if (!_marks.TryGetValue(pump, out var before) || before < seq)
            {
                _marks[pump] = seq;
            }
        }

        outer?.Add(pump, seq);
    }

    /// <summary>Completes once everything marked reached its edge node (at most <see cref="Patience"/>).</summary>
    public Task ReachedAsync(CancellationToken ct)
    {
        if (Volatile.Read(ref _gate) is not { } gate)
        {
            return Task.CompletedTask;
        }

        KeyValuePair<EdgePump, long>[] marks;
        lock (gate)
        {
            if (_marks is null)
            {
                return Task.CompletedTask;
            }

            marks = [.. _marks];
        }

        var waits = marks.Select(m => m.Key.ReachedAsync(m.Value)).Where(t => !t.IsCompleted).ToArray();
        return waits.Length == 0 ? Task.CompletedTask : Task.WhenAll(waits).WaitAsync(Patience, ct).ContinueWith(_ => { }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    /// <summary>Gives the flow of work its outer scope back (<see cref="OrleansCluster.Track"/>).</summary>
    public void Dispose()
    {
        if (scope is not null)
        {
            scope.Value = outer;
        }
    }
}
