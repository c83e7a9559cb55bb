using System.Collections.Concurrent;

namespace Xmpp.Server.Net;

/// <summary>
/// Owns every live connection and the task that runs it: ids, counting, and closing them all at
/// shutdown (Kestrel's TransportConnectionManager).
/// </summary>
public sealed class ConnectionManager
{
    private readonly ConcurrentDictionary<long, (ClientConnection Connection, Task Run)> _connections = new();
    private long _nextId;

    public int Count => _connections.Count;

    public IEnumerable<ClientConnection> All => _connections.Values.Select(c => c.Connection);

    public long NextId() => Interlocked.Increment(ref _nextId);

    /// <summary>Runs a new connection on the thread pool (never a thread per connection) and tracks it until it ends.</summary>
    public void Start(ClientConnection connection)
    {
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
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
