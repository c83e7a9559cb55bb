using System.Collections.Concurrent;
using System.Net;

namespace Xmpp.Server.Net;

/// <summary>
/// Owns every live connection and the task that runs it: ids, counting, and closing them all at
/// shutdown (Kestrel's TransportConnectionManager).
/// </summary>
public sealed class ConnectionManager
{
    private readonly ConcurrentDictionary<long, (IConnection Connection, Task Run)> _connections = new();
    private readonly ConcurrentDictionary<IPAddress, int> _perAddress = new();
    private long _nextId;

    public int Count => _connections.Count;

    public IEnumerable<IConnection> All => _connections.Values.Select(c => c.Connection);

    public long NextId() => Interlocked.Increment(ref _nextId);

    /// <summary>Open connections by kind, for the metrics endpoint (read at each scrape).</summary>
    public IEnumerable<(string Labels, double Value)> CountByKind()
    {
        int c2s = 0, s2sIn = 0, s2sOut = 0, component = 0;
        foreach (var (connection, _) in _connections.Values)
        {
            _ = (connection as Streams.StreamConnection)?.Protocol switch
            {
                Streams.IncomingS2sStateMachine => s2sIn++,
                Streams.OutgoingS2sStateMachine => s2sOut++,
                Streams.ComponentStateMachine => component++,
                _ => c2s++,
            };
        }

        return
        [
            ("{kind=\"c2s\"}", c2s),
            ("{kind=\"s2s_in\"}", s2sIn),
            ("{kind=\"s2s_out\"}", s2sOut),
            ("{kind=\"component\"}", component),
        ];
    }

    /// <summary>Open connections from one address (accepted ones; outgoing streams are not counted).</summary>
    public int CountFrom(IPAddress address) => _perAddress.TryGetValue(Normalize(address), out var n) ? n : 0;

    /// <summary>
    /// Counts one more accepted connection from an address, unless <paramref name="limit"/> (when positive)
    /// are open already. Every successful call is matched by the release at the end of <see cref="Start"/>.
    /// </summary>
    public bool TryAdmit(IPAddress address, int limit)
    {
        address = Normalize(address);
        while (true)
        {
            if (!_perAddress.TryGetValue(address, out var n))
            {
                if (_perAddress.TryAdd(address, 1))
                {
                    return true;
                }

                continue;
            }

            if (limit > 0 && n >= limit)
            {
                return false;
            }

            if (_perAddress.TryUpdate(address, n + 1, n))
            {
                return true;
            }
        }
    }

    private void Release(IPAddress address)
    {
        while (_perAddress.TryGetValue(address, out var n))
        {
            var done = n <= 1
                ? _perAddress.TryRemove(new KeyValuePair<IPAddress, int>(address, n))
                : _perAddress.TryUpdate(address, n - 1, n);
            if (done)
            {
                return;
            }
        }
    }

    private static IPAddress Normalize(IPAddress address) => address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;

    /// <summary>
    /// Runs a new connection on the thread pool (never a thread per connection) and tracks it until it ends;
    /// <paramref name="admitted"/> is the address <see cref="TryAdmit"/> counted it under, released at the end.
    /// </summary>
    /// <summary>Runs a connection, tracked until it ends; the returned task completes then (a WebSocket's request waits on it).</summary>
    public Task Start(IConnection connection, IPAddress? admitted = null)
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
                if (admitted is not null)
                {
                    Release(Normalize(admitted));
                }
            }
        });
        _connections[connection.ConnectionId] = (connection, run);
        started.SetResult();
        return run;
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
