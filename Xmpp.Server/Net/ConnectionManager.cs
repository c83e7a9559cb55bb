using System.Collections.Concurrent;

namespace Xmpp.Server.Net;

/// <summary>
/// Owns every live connection and the task that runs it: ids, counting, and closing them all at
/// shutdown (Kestrel's TransportConnectionManager).
/// </summary>
public sealed class ConnectionManager
{
    private readonly ConcurrentDictionary<long, (IConnection Connection, Task Run)> _connections = new();
    private long _nextId;

    public int Count => _connections.Count;

    public IEnumerable<IConnection> All => _connections.Values.Select(c => c.Connection);

    public long NextId() => Interlocked.Increment(ref _nextId);

    /// <summary>Runs a new connection on the thread pool (never a thread per connection) and tracks it until it ends.</summary>
    public void Start(IConnection connection)
    {
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        // A connection started from another connection's flow (an outgoing s2s stream opened for a
        // client's stanza) must not inherit that flow's logging scope (its JID), so the context does not flow.
        using var noFlow = ExecutionContext.SuppressFlow();
        var run = Task.Run(async () =>
        {
            await started.Task.ConfigureAwait(false);
            try
            {
                await connection.RunAsync().ConfigureAwait(false);
            }
            finally
            {
                _connections.TryRemove(connection.ConnectionId, out _);
            }
        });
        _connections[connection.ConnectionId] = (connection, run);
        started.SetResult();
    }

    /// <summary>
    /// One loop for all connections (no timer per connection) that lets each check its idle time, at an
    /// eighth of the idle timeout, between 100 ms and 5 s.
    /// </summary>
    public async Task RunIdleSweepAsync(TimeSpan idleTimeout, CancellationToken cancellationToken)
    {
        var period = TimeSpan.FromMilliseconds(Math.Clamp(idleTimeout.TotalMilliseconds / 8, 100, 5000));
        using var timer = new PeriodicTimer(period);
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false))
            {
                var now = Environment.TickCount64;
                foreach (var (connection, _) in _connections.Values)
                {
                    connection.CheckIdle(now);
                }
            }
        }
        catch (OperationCanceledException)
        {
            // Shutdown.
        }
    }

    /// <summary>Completes when every connection has ended, or after the timeout.</summary>
    public async Task WaitForAllAsync(TimeSpan timeout)
    {
        try
        {
            await Task.WhenAll(_connections.Values.Select(c => c.Run)).WaitAsync(timeout).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            // The caller cancels what is left.
        }
    }
}
