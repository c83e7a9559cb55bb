namespace Xmpp.Server.Cluster;

/// <summary>
/// Cluster mode: a client stream's messages whose forwarding to another node is under way. The stream reads its next
/// stanza without waiting for them, so that what one client sends to another node goes out in batches and arrives
/// there together (a single stanza in flight per stream made every message its own write at the recipient's node).
/// Each is counted as handled (XEP-0198's 'h') only once it reached that node, and in the order the client sent
/// them, so that an acknowledged message is never lost with a node. The stream's other stanzas wait until all of
/// them have been (RFC 6120 §10.1: a request may change how what follows it is handled); messages keep their order
/// per recipient through the node batch they share, and the receiving node routes each sender's in order
/// (<see cref="Orleans.OrleansCluster"/>).
/// </summary>
public sealed class ForwardWindow
{
    /// <summary>Messages under way per stream at most; the stream reads on once the oldest ones are done.</summary>
    public const int MaxInFlight = 64;

    private Task _tail = Task.CompletedTask;
    private int _inFlight;

    /// <summary>Completes once every message so far is done and counted.</summary>
    public Task Tail => _tail;

    /// <summary>Whether the stream must wait for the window before handling another message.</summary>
    public bool Full => Volatile.Read(ref _inFlight) >= MaxInFlight;

    /// <summary>
    /// A message was handled, its forwards still under way in <paramref name="pending"/> (null when none is):
    /// <paramref name="handled"/> runs once they and every message before it are done. Called by the stream only,
    /// one message at a time.
    /// </summary>
    public void Completed(Task? pending, Action handled)
    {
        if (pending is null && _tail.IsCompleted)
        {
            handled();
            return;
        }

        Interlocked.Increment(ref _inFlight);
        _tail = AfterAsync(_tail, pending ?? Task.CompletedTask, handled);
    }

    private async Task AfterAsync(Task before, Task own, Action handled)
    {
        await before.ConfigureAwait(false);
        try
        {
            await own.ConfigureAwait(false);
        }
        catch (Exception)
        {
            // Its forward logged what went wrong; the message counts as handled, as one refused at once does.
        }

        handled();
        Interlocked.Decrement(ref _inFlight);
    }
}

/// <summary>
/// The forwards one message left under way (<see cref="ICluster.Pipeline"/>), until <see cref="Close"/>: a forward
/// that starts later (work the message set off in the background) is waited for as before.
/// </summary>
public sealed class PipelineScope(Task before, PipelineScope? outer = null, AsyncLocal<PipelineScope?>? slot = null) : IDisposable
{
    private List<Task>? _pending;
    private bool _closed;

    /// <summary>Completes once the stream's earlier messages are done: a forward that fails over to the recipient's home grain waits for it, so that order holds.</summary>
    public Task Before => before;

    public bool IsOpen => !_closed;

    public void Add(Task forward) => (_pending ??= []).Add(forward);

    /// <summary>What the message left under way, or null.</summary>
    public Task? Close()
    {
        _closed = true;
        return _pending switch
        {
            null => null,
            [var one] => one,
            _ => Task.WhenAll(_pending),
        };
    }

    /// <summary>Closes the scope and gives the flow of work its outer scope back (<see cref="ICluster.Pipeline"/>).</summary>
    public void Dispose()
    {
        _closed = true;
        if (slot is not null)
        {
            slot.Value = outer;
        }
    }
}
