using System.Diagnostics;
using Npgsql;
using Orleans.Runtime;

namespace Xmpp.Server.Cluster.Orleans;

/// <summary>Cluster mode: a node that was paused checks it is still a member before routing anything.</summary>
public sealed partial class OrleansCluster
{
    // ---- the self-fence: a node that was paused checks it is still a member before going on -------------

    private long _lastTick = Stopwatch.GetTimestamp();
    private volatile bool _fenced;
    private Task? _verifying;
    private readonly object _fenceGate = new();

    /// <summary>A pause this long could have let the others declare this node dead (half their detection time).</summary>
    private TimeSpan FenceAfter => _options.ProbeTimeout * _options.MissedProbes / 2;

    public ValueTask FenceAsync(CancellationToken cancellationToken)
    {
        if (!_fenced && Stopwatch.GetElapsedTime(Volatile.Read(ref _lastTick)) < FenceAfter)
        {
            return ValueTask.CompletedTask;
        }

        _fenced = true;
        return new ValueTask(Verify().WaitAsync(cancellationToken));
    }

    /// <summary>Ticks every 250 ms; a late tick means the process was paused, and fences it until verified.</summary>
    private async Task WatchdogAsync(CancellationToken ct)
    {
        try
        {
            while (!ct.IsCancellationRequested)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(250), ct).ConfigureAwait(false);
                if (Stopwatch.GetElapsedTime(Volatile.Read(ref _lastTick)) >= FenceAfter)
                {
                    _fenced = true;
                    _ = Verify();
                }

                if (!_fenced)
                {
                    Volatile.Write(ref _lastTick, Stopwatch.GetTimestamp());
                }
            }
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }
    }

    private Task Verify()
    {
        lock (_fenceGate)
        {
            return _verifying ??= VerifyAsync();
        }
    }

    /// <summary>Reads this node's own membership row: dead, the process stops at once; otherwise routing goes on.</summary>
    private async Task VerifyAsync()
    {
        var paused = Stopwatch.GetElapsedTime(Volatile.Read(ref _lastTick));
        _log.Warn("This node was paused for {Paused:0.0} s: checking that it is still a cluster member before routing anything", paused.TotalSeconds);
        while (true)
        {
            try
            {
                await using var connection = await _db.OpenConnectionAsync(CancellationToken.None).ConfigureAwait(false);
                await using var cmd = new NpgsqlCommand("SELECT status FROM orleansmembershiptable WHERE deploymentid = $1 AND address = $2 AND port = $3 AND generation = $4", connection)
                {
                    Parameters = { new() { Value = _options.Id }, new() { Value = _silo!.Endpoint.Address.ToString() }, new() { Value = _silo.Endpoint.Port }, new() { Value = _silo.Generation } },
                };
                var status = await cmd.ExecuteScalarAsync(CancellationToken.None).ConfigureAwait(false);
                if (status is int s && (SiloStatus)s == SiloStatus.Dead)
                {
                    // The others have cleaned up after this node; going on would be a second home for its accounts and rooms.
                    _log.Fatal("This node was declared dead while it was paused: stopping now, without routing anything more");
                    Logs.Flush(TimeSpan.FromSeconds(2));
                    Environment.Exit(75);
                }

                _log.Info("Still a member ({Status}): routing goes on", status is int st ? ((SiloStatus)st).ToString() : "not in the table yet");
                break;
            }
            catch (NpgsqlException ex)
            {
                _log.Warn("Cannot read the membership table ({Reason}): routing stays held", ex.Message);
                await Task.Delay(TimeSpan.FromSeconds(1)).ConfigureAwait(false);
            }
        }

        lock (_fenceGate)
        {
            Volatile.Write(ref _lastTick, Stopwatch.GetTimestamp());
            _fenced = false;
            _verifying = null;
        }
    }
}
