using System.Buffers;
using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Text;
using Xmpp.Core;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;

namespace Xmpp.Server.Net;

/// <summary>Result of queueing a stanza for a stream.</summary>
public enum EnqueueResult
{
    Queued,

    /// <summary>The stream is closing; the stanza was not taken.</summary>
    Closed,

    /// <summary>The peer is not reading: the limit of waiting stanzas is reached.</summary>
    Full,
}

/// <summary>
/// The output side of one XML stream: a lock-free queue whose stanza count is capped, drained by one
/// writer loop that serialises into pooled buffers, so that routing never waits on a socket. Used by
/// client and server-to-server streams alike.
/// Producers never take a lock: a Channel's writer takes one per item, and in a presence fan-out dozens of
/// threads write to the same stream at once. A producer wakes the writer only when it is asleep
/// (<see cref="_signalled"/> goes from 0 to 1), so a burst costs one semaphore release.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "The semaphore holds no OS handle (AvailableWaitHandle is never used); it lives as long as the stream.")]
internal sealed class OutputQueue
{
    private static readonly UTF8Encoding Utf8 = new(false);
    private readonly ConcurrentQueue<OutItem> _items = new();
    private readonly SemaphoreSlim _wake = new(0);
    private int _signalled;
    private int _completed;
    private int _adding;
    private readonly Func<Stream> _stream;
    private readonly string _contentNamespace;
    private int _queued;
    private long _queuedBytes;
    private List<OutItem> _left = [];

    /// <param name="stream">The current transport (it changes at STARTTLS).</param>
    /// <param name="contentNamespace">
    /// The stream's content namespace: jabber:client, or jabber:server or jabber:component:accept, in which
    /// jabber:client stanzas are then written.
    /// </param>
    /// <param name="metrics">Counts the stanzas written, when given.</param>
    public OutputQueue(Func<Stream> stream, string contentNamespace, Hosting.ServerMetrics? metrics = null)
    {
        _stream = stream;
        _contentNamespace = contentNamespace;
        _metrics = metrics;
    }

    private readonly Hosting.ServerMetrics? _metrics;

    /// <summary>Bytes of the stanzas waiting, estimated (see <see cref="Element.WireSize"/>).</summary>
    public long QueuedBytes => Interlocked.Read(ref _queuedBytes);

    /// <param name="limit">Stanzas that may wait.</param>
    /// <param name="byteLimit">Estimated bytes that may wait (0: no limit); an element built in code counts as <see cref="MinimumCost"/>.</param>
    public EnqueueResult TryEnqueue(Element stanza, int limit, long byteLimit = 0)
    {
        var cost = Math.Max(stanza.WireSize, MinimumCost);
        if (Interlocked.Increment(ref _queued) > limit)
        {
            Interlocked.Decrement(ref _queued);
            return EnqueueResult.Full;
        }

        // One stanza is always taken, however large, so that a limit below the stanza size cannot block a stream.
        var bytes = Interlocked.Add(ref _queuedBytes, cost);
        if (byteLimit > 0 && bytes > byteLimit && bytes != cost)
        {
            Interlocked.Add(ref _queuedBytes, -cost);
            Interlocked.Decrement(ref _queued);
            return EnqueueResult.Full;
        }

        if (!TryAdd(new OutItem(stanza, null, null, false, cost)))
        {
            Interlocked.Add(ref _queuedBytes, -cost);
            Interlocked.Decrement(ref _queued);
            return EnqueueResult.Closed;
        }

        return EnqueueResult.Queued;
    }

    /// <summary>What a stanza without a known wire size counts for.</summary>
    public const int MinimumCost = 256;

    public bool EnqueueRaw(string xml) => TryAdd(new OutItem(null, xml, null, false));

    /// <summary>
    /// Queues an item unless the stream is complete. Nothing can land after the closing tag, where it would
    /// be reported as queued but never written: a producer announces itself (<see cref="_adding"/>) before
    /// it looks at <see cref="_completed"/>, and <see cref="Complete"/> sets that flag before it waits for
    /// producers in flight. Both use full fences, so one of them always sees the other.
    /// </summary>
    private bool TryAdd(OutItem item)
    {
        Interlocked.Increment(ref _adding);
        try
        {
            if (Volatile.Read(ref _completed) != 0)
            {
                return false;
            }

            _items.Enqueue(item);
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

    /// <summary>Completes when everything queued before it has been written.</summary>
    public Task FlushAsync()
    {
        var tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        if (!TryAdd(new OutItem(null, null, tcs, false)))
        {
            tcs.TrySetCanceled();
        }

        return tcs.Task;
    }

    /// <summary>Queues the last bytes of the stream (its closing tag) and takes nothing more.</summary>
    public void Complete(string finalXml)
    {
        if (Interlocked.Exchange(ref _completed, 1) != 0)
        {
            return;
        }

        var spin = default(SpinWait);
        while (Volatile.Read(ref _adding) != 0)
        {
            spin.SpinOnce();
        }

        _items.Enqueue(new OutItem(null, finalXml, null, true));
        Signal();
    }

    /// <summary>
    /// Ends the stream: <paramref name="headerIfUnsent"/> first when no header was sent yet (RFC 6120
    /// §4.9.1.1: a stream error is always sent inside a stream), then the error if any, then the closing tag.
    /// </summary>
    public void Close(string? headerIfUnsent, StreamError? streamError)
    {
        var sb = new StringBuilder(headerIfUnsent ?? string.Empty);
        if (streamError is not null)
        {
            sb.Append("<stream:error>");
            foreach (var child in streamError.ToElement().Elements())
            {
                ElementWriter.Write(sb, child, Ns.Stream);
            }

            sb.Append("</stream:error>");
        }

        Complete(sb.Append("</stream:stream>").ToString());
    }

    /// <summary>Writes until the stream is complete; returns normally when the transport fails or is cancelled.</summary>
    public async Task RunAsync(Action<string> onError, CancellationToken ct)
    {
        await Task.Yield();
        StringBuilder? sb = null;
        try
        {
            var done = false;
            while (!done)
            {
                if (_items.IsEmpty)
                {
                    // The builder lives only while there is output: an idle stream holds none (it would keep
                    // the largest size it ever grew to, several KB after the login exchange).
                    sb = null;

                    // Let producers wake us, then look again: an item queued before the reset is seen here,
                    // one queued after it releases the semaphore.
                    Volatile.Write(ref _signalled, 0);
                    if (_items.IsEmpty)
                    {
                        await _wake.WaitAsync(ct).ConfigureAwait(false);
                    }

                    continue;
                }

                sb ??= new StringBuilder(1024);
                TaskCompletionSource? flushed = null;
                while (sb.Length < 64 * 1024 && _items.TryDequeue(out var item))
                {
                    if (item.Element is not null)
                    {
                        Interlocked.Decrement(ref _queued);
                        Interlocked.Add(ref _queuedBytes, -item.Cost);
                        ElementWriter.Write(sb, item.Element, _contentNamespace, _contentNamespace == Ns.Client ? null : _contentNamespace);
                        _metrics?.StanzaOut(item.Element.Name);
                    }
                    else if (item.Raw is not null)
                    {
                        sb.Append(item.Raw);
                    }

                    if (item.Flushed is not null)
                    {
                        flushed = item.Flushed;
                        break;
                    }

                    if (item.Close)
                    {
                        done = true;
                        break;
                    }
                }

                if (sb.Length > 0)
                {
                    await WriteAsync(sb, ct).ConfigureAwait(false);
                }

                flushed?.TrySetResult();
            }
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException or OperationCanceledException or System.Security.Authentication.AuthenticationException)
        {
            onError(ex.Message);
        }
        finally
        {
            // Flush barriers still queued are released (stanzas stay for Drain).
            ReleaseBarriers();
        }
    }

    private void ReleaseBarriers()
    {
        if (_items.IsEmpty)
        {
            return;
        }

        var keep = new List<OutItem>();
        while (_items.TryDequeue(out var item))
        {
            if (item.Flushed is not null)
            {
                item.Flushed.TrySetCanceled(CancellationToken.None);
            }
            else if (item.Element is not null)
            {
                keep.Add(item);
            }
        }

        _left = keep;
    }

    /// <summary>Stanzas taken but not written when the stream ended (for bouncing).</summary>
    public List<Element> Drain()
    {
        var left = _left.Select(i => i.Element!).ToList();
        _left = [];
        while (_items.TryDequeue(out var item))
        {
            if (item.Element is not null)
            {
                left.Add(item.Element);
            }

            item.Flushed?.TrySetCanceled(CancellationToken.None);
        }

        return left;
    }

    private async Task WriteAsync(StringBuilder sb, CancellationToken ct)
    {
        var max = Utf8.GetMaxByteCount(sb.Length);
        var buffer = ArrayPool<byte>.Shared.Rent(max);
        try
        {
            var count = 0;
            foreach (var chunk in sb.GetChunks())
            {
                count += Utf8.GetBytes(chunk.Span, buffer.AsSpan(count));
            }

            sb.Clear();
            var stream = _stream();
            await stream.WriteAsync(buffer.AsMemory(0, count), ct).ConfigureAwait(false);
            await stream.FlushAsync(ct).ConfigureAwait(false);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private readonly record struct OutItem(Element? Element, string? Raw, TaskCompletionSource? Flushed, bool Close, int Cost = 0);
}
