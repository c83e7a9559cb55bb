using System.Collections.Concurrent;
using System.Net.Sockets;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;

namespace Xmpp.Server.Streams;

/// <summary>Result of queueing a stanza for a stream.</summary>
public enum Enqueued
{
    Queued,

    /// <summary>The stream is closing; the stanza was not taken.</summary>
    Closed,

    /// <summary>The peer is not reading: the limit of waiting stanzas (or their bytes) is reached.</summary>
    Full,
}

/// <summary>
/// The output side of one XML stream: a lock-free queue whose stanza count and bytes are capped, drained by
/// one writer loop that hands batches to the transport, so that routing never waits on a socket. Used by
/// every kind of stream.
/// Producers never take a lock: a Channel's writer takes one per item, and in a presence fan-out dozens of
/// threads write to the same stream at once. A producer wakes the writer only when it is asleep
/// (<see cref="_signalled"/> goes from 0 to 1), so a burst costs one semaphore release.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "The semaphore holds no OS handle (AvailableWaitHandle is never used); it lives as long as the stream.")]
public sealed class StreamOutput
{
    /// <summary>What a stanza without a known wire size counts for.</summary>
    public const int MinimumCost = 256;

    /// <summary>About this many bytes of items go to the transport in one write.</summary>
    private const int BatchCost = 64 * 1024;

    private readonly ConcurrentQueue<Entry> _items = new();
    private readonly SemaphoreSlim _wake = new(0);
    private readonly Hosting.ServerMetrics? _metrics;
    private int _signalled;
    private int _completed;
    private int _adding;
    private int _queued;
    private long _queuedBytes;
    private List<Element> _left = [];

    /// <param name="metrics">Counts the stanzas written, when given.</param>
    public StreamOutput(Hosting.ServerMetrics? metrics = null) => _metrics = metrics;

    /// <summary>Bytes of the stanzas waiting, estimated (see <see cref="Element.WireSize"/>).</summary>
    public long QueuedBytes => Interlocked.Read(ref _queuedBytes);

    /// <summary>Whether the stream's last item (its end) has been queued: nothing more is taken.</summary>
    public bool IsCompleted => Volatile.Read(ref _completed) != 0;

    /// <param name="limit">Stanzas that may wait.</param>
    /// <param name="byteLimit">Estimated bytes that may wait (0: no limit); an element built in code counts as <see cref="MinimumCost"/>.</param>
    public Enqueued TryEnqueue(Element stanza, int limit, long byteLimit = 0)
    {
        var cost = Math.Max(stanza.WireSize, MinimumCost);
        if (Interlocked.Increment(ref _queued) > limit)
        {
            Interlocked.Decrement(ref _queued);
            return Enqueued.Full;
        }

        // One stanza is always taken, however large, so that a limit below the stanza size cannot block a stream.
        var bytes = Interlocked.Add(ref _queuedBytes, cost);
        if (byteLimit > 0 && bytes > byteLimit && bytes != cost)
        {
            Interlocked.Add(ref _queuedBytes, -cost);
            Interlocked.Decrement(ref _queued);
            return Enqueued.Full;
        }

        if (!TryAdd(new Entry(OutputItem.Stanza(stanza), null, cost)))
        {
            Interlocked.Add(ref _queuedBytes, -cost);
            Interlocked.Decrement(ref _queued);
            return Enqueued.Closed;
        }

        return Enqueued.Queued;
    }

    /// <summary>Queues a nonza (not counted against the stanza limits); false once the stream is ending.</summary>
    public bool EnqueueNonza(Element element) => TryAdd(new Entry(OutputItem.Nonza(element), null, MinimumCost));

    /// <summary>Queues our stream header; false once the stream is ending.</summary>
    public bool EnqueueHeader(OutgoingHeader header) => TryAdd(new Entry(OutputItem.Open(header), null, MinimumCost));

    /// <summary>Completes when everything queued before it has been written; cancelled if the stream ends first.</summary>
    public Task FlushAsync()
    {
        var tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        if (!TryAdd(new Entry(default, tcs, 0)))
        {
            tcs.TrySetCanceled();
        }

        return tcs.Task;
    }

    /// <summary>
    /// Ends the stream: <paramref name="headerIfUnsent"/> first when no header was sent yet (RFC 6120 §4.9.1.1:
    /// a stream error is always sent inside a stream), then the error if any, then the closing tag. Nothing
    /// can be queued after it.
    /// </summary>
    public void Close(OutgoingHeader? headerIfUnsent, StreamError? streamError)
    {
        if (Interlocked.Exchange(ref _completed, 1) != 0)
        {
            return;
        }

        // Producers in flight finish first: nothing lands after the closing tag, where it would be reported as
        // queued but never written (a producer announces itself before it looks at _completed).
        var spin = default(SpinWait);
        while (Volatile.Read(ref _adding) != 0)
        {
            spin.SpinOnce();
        }

        if (headerIfUnsent is not null)
        {
            _items.Enqueue(new Entry(OutputItem.Open(headerIfUnsent), null, MinimumCost));
        }

        _items.Enqueue(new Entry(OutputItem.End(streamError), null, MinimumCost));
        Signal();
    }

    private bool TryAdd(Entry entry)
    {
        Interlocked.Increment(ref _adding);
        try
        {
            if (Volatile.Read(ref _completed) != 0)
            {
                return false;
            }

            _items.Enqueue(entry);
        }
        finally
        {
            Interlocked.Decrement(ref _adding);
        }

        Signal();
        return true;
    }

    private void Signal()
    {
        if (Interlocked.Exchange(ref _signalled, 1) == 0)
        {
            _wake.Release();
        }
    }

    /// <summary>Writes until the stream's end is written; returns normally when the transport fails or is cancelled.</summary>
    public async Task RunAsync(IStreamTransport transport, Action<string> onError, CancellationToken ct)
    {
        await Task.Yield();
        var batch = new List<OutputItem>();
        try
        {
            var done = false;
            while (!done)
            {
                if (_items.IsEmpty)
                {
                    transport.ReleaseBuffers();

                    // Let producers wake us, then look again: an item queued before the reset is seen here, one
                    // queued after it releases the semaphore.
                    Volatile.Write(ref _signalled, 0);
                    if (_items.IsEmpty)
                    {
                        await _wake.WaitAsync(ct).ConfigureAwait(false);
                    }

                    continue;
                }

                (done, var flushed) = Take(batch);
                if (batch.Count > 0)
                {
                    // A failed write is looked at, not awaited: awaiting would throw its exception here once
                    // more, on every logout whose client closed its socket first (ByteStreamTransport.WriteAsync).
                    var write = transport.WriteAsync(batch, ct);
                    if (!write.IsCompletedSuccessfully)
                    {
                        var task = write.AsTask();
                        await task.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                        if (!task.IsCompletedSuccessfully)
                        {
                            var failure = task.Exception?.InnerException ?? new OperationCanceledException(ct);
                            if (!IsTransportFailure(failure))
                            {
                                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failure);
                            }

                            onError(failure.Message);
                            return;
                        }
                    }

                    batch.Clear();
                }

                flushed?.TrySetResult();
            }
        }
        catch (Exception ex) when (IsTransportFailure(ex))
        {
            onError(ex.Message);
        }
        finally
        {
            // Flush barriers still queued are released (stanzas stay for Drain).
            ReleaseBarriers(batch);
        }
    }

    /// <summary>How a stream's writes end when the peer goes or the stream is torn down; anything else is a bug and propagates.</summary>
    private static bool IsTransportFailure(Exception ex) =>
        ex is IOException or SocketException or ObjectDisposedException or OperationCanceledException or System.Security.Authentication.AuthenticationException;

    /// <summary>One batch: up to about <see cref="BatchCost"/> bytes, up to a flush barrier or the end.</summary>
    private (bool Done, TaskCompletionSource? Flushed) Take(List<OutputItem> batch)
    {
        var cost = 0;
        while (cost < BatchCost && _items.TryDequeue(out var entry))
        {
            if (entry.Flushed is not null)
            {
                return (false, entry.Flushed);
            }

            cost += entry.Cost;
            batch.Add(entry.Item);
            if (entry.Item.Kind == OutputKind.Stanza)
            {
                Interlocked.Decrement(ref _queued);
                Interlocked.Add(ref _queuedBytes, -entry.Cost);
                _metrics?.StanzaOut(entry.Item.Element!.Name);
            }
            else if (entry.Item.Kind == OutputKind.Close)
            {
                return (true, null);
            }
        }

        return (false, null);
    }

    private void ReleaseBarriers(List<OutputItem> unwritten)
    {
        var keep = unwritten.Where(i => i.Kind == OutputKind.Stanza).Select(i => i.Element!).ToList();
        while (_items.TryDequeue(out var entry))
        {
            if (entry.Flushed is not null)
            {
                entry.Flushed.TrySetCanceled(CancellationToken.None);
            }
            else if (entry.Item.Kind == OutputKind.Stanza)
            {
                keep.Add(entry.Item.Element!);
            }
        }

        _left = keep;
    }

    /// <summary>Stanzas taken but not written when the stream ended (for bouncing or rerouting).</summary>
    public List<Element> Drain()
    {
        var left = _left;
        _left = [];
        while (_items.TryDequeue(out var entry))
        {
            if (entry.Item.Kind == OutputKind.Stanza)
            {
                left.Add(entry.Item.Element!);
            }

            entry.Flushed?.TrySetCanceled(CancellationToken.None);
        }

        return left;
    }

    private readonly record struct Entry(OutputItem Item, TaskCompletionSource? Flushed, int Cost);
}
