using System.Threading.Channels;
using NLog;
using Orleans.Runtime;

namespace Xmpp.Server.Cluster.Orleans;

/// <summary>
/// What this node sends to one other node: stanzas queued by their streams go out together in one
/// <see cref="INodeGrain.DeliverAsync"/> call, as many as are waiting when the call leaves (Erlang's distribution
/// buffers the same way). Calls are not serialised: a batch's routing may forward back here, and waiting for it
/// could then wait for itself. A client's messages do not wait for each other (<see cref="ForwardWindow"/>): they
/// are queued here in order, and the receiving node routes each sender's in order.
/// </summary>
internal sealed class NodePump : IDisposable
{
    private const int MaxBatch = 512;
    private readonly Channel<(Forwarded Item, TaskCompletionSource<bool> Done)> _queue =
        Channel.CreateUnbounded<(Forwarded, TaskCompletionSource<bool>)>(new UnboundedChannelOptions { SingleReader = true });
    private readonly INodeGrain _node;

    /// <summary>This node's silo address, and the number of the last batch sent (the receiver starts them in this order).</summary>
    private readonly string _sender;
    private long _seq;
    private readonly Logger _log;
    private readonly BatchCounters _counters;
    private readonly CancellationToken _stopping;

    public NodePump(INodeGrain node, string sender, Logger log, BatchCounters counters, CancellationToken stopping)
    {
        _node = node;
        _sender = sender;
        _log = log;
        _counters = counters;
        _stopping = stopping;
        _ = RunAsync(stopping);
    }

    /// <summary>Completes true once the stanza was routed on that node, false when it was not homed there or the node is gone.</summary>
    public Task<bool> SendAsync(Forwarded item)
    {
        var done = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        if (!_queue.Writer.TryWrite((item, done)))
        {
            done.SetResult(false);
        }

        return done.Task;
    }

    private async Task RunAsync(CancellationToken ct)
    {
        var reader = _queue.Reader;
        try
        {
            while (await reader.WaitToReadAsync(ct).ConfigureAwait(false))
            {
                var batch = new List<(Forwarded Item, TaskCompletionSource<bool> Done)>();
                while (batch.Count < MaxBatch && reader.TryRead(out var next))
                {
                    batch.Add(next);
                }

                _counters.Sent(batch.Count);
                _ = DeliverAsync(batch, ++_seq);
            }
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }

        while (reader.TryRead(out var left))
        {
            left.Done.TrySetResult(false);
        }
    }

    private async Task DeliverAsync(List<(Forwarded Item, TaskCompletionSource<bool> Done)> batch, long seq)
    {
        try
        {
            var routed = await _node.DeliverAsync([.. batch.Select(b => b.Item)], _sender, seq).ConfigureAwait(false);
            for (var i = 0; i < batch.Count; i++)
            {
                batch[i].Done.TrySetResult(routed[i]);
            }
        }
        catch (Exception ex) when (Unreachable.Is(ex, _stopping) || ex is InvalidOperationException)
        {
            // The node is gone or unreachable: each stanza goes through its recipient's home grain instead.
            _log.Debug("A batch of {Count} stanza(s) to another node failed: {Reason}", batch.Count, ex.Message);
        }
        catch (Exception ex) when (!_stopping.IsCancellationRequested)
        {
            _log.Error(ex, "A batch of {Count} stanza(s) to another node failed; each goes through its recipient's home grain", batch.Count);
        }
        finally
        {
            // Never left waiting: what was not routed there goes through the home grains (or, stopping, nowhere).
            foreach (var (_, done) in batch)
            {
                done.TrySetResult(false);
            }
        }
    }

    public void Dispose() => _queue.Writer.TryComplete();
}

/// <summary>Batches sent to other nodes and the stanzas in them, over all pumps (for the metrics).</summary>
internal sealed class BatchCounters
{
    private long _batches;
    private long _stanzas;

    public long Batches => Interlocked.Read(ref _batches);

    public long Stanzas => Interlocked.Read(ref _stanzas);

    public void Sent(int stanzas)
    {
        Interlocked.Increment(ref _batches);
        Interlocked.Add(ref _stanzas, stanzas);
    }
}
