using Xmpp.Server.Hosting;

namespace Xmpp.Server.Modules.Console;

/// <summary>
/// What the server counts at one moment, read straight from its objects (not from the Prometheus text): open
/// connections by kind, bound sessions, the routing and authentication counters since start, memory, and the
/// process's CPU time.
/// </summary>
internal readonly record struct MetricsReading(
    int C2s,
    int S2sIn,
    int S2sOut,
    int Components,
    int Sessions,
    long Messages,
    long Presences,
    long Iqs,
    long AuthSucceeded,
    long AuthFailed,
    long ManagedBytes,
    long ResidentBytes,
    TimeSpan Cpu,
    int Cores)
{
    /// <summary>The running server's numbers now.</summary>
    public static MetricsReading Of(ServerContext server)
    {
        // Client connections include WebSocket and BOSH ones (ConnectionManager counts them as c2s).
        int c2s = 0, s2sIn = 0, s2sOut = 0, components = 0;
        foreach (var (labels, value) in server.Connections.CountByKind())
        {
            switch (labels)
            {
                case "{kind=\"c2s\"}":
                    c2s = (int)value;
                    break;
                case "{kind=\"s2s_in\"}":
                    s2sIn = (int)value;
                    break;
                case "{kind=\"s2s_out\"}":
                    s2sOut = (int)value;
                    break;
                case "{kind=\"component\"}":
                    components = (int)value;
                    break;
            }
        }

        var metrics = server.Metrics;
        return new MetricsReading(
            c2s,
            s2sIn,
            s2sOut,
            components,
            server.Sessions.Count,
            metrics.RoutedSoFar("message"),
            metrics.RoutedSoFar("presence"),
            metrics.RoutedSoFar("iq"),
            metrics.AuthenticationsSucceeded,
            metrics.AuthenticationsFailed,
            GC.GetTotalMemory(false),
            Environment.WorkingSet,
            Environment.CpuUsage.TotalTime,
            Environment.ProcessorCount);
    }
}

/// <summary>One sample of the history: gauges as read, counters as rates over the time since the sample before.</summary>
internal readonly record struct MetricsPoint(
    DateTimeOffset Time,
    int C2s,
    int S2sIn,
    int S2sOut,
    int Components,
    int Sessions,
    double MessagesPerSecond,
    double PresencesPerSecond,
    double IqsPerSecond,
    double AuthSucceededPerMinute,
    double AuthFailedPerMinute,
    long ManagedBytes,
    long ResidentBytes,
    double CpuPercent);

/// <summary>
/// The console's charts' data: a sample of the server's numbers every <see cref="Interval"/> (10 s), the last
/// <see cref="Capacity"/> of them (an hour) in a ring of structs that is allocated once. The console module
/// starts <see cref="RunAsync"/> in the background; a reload's new module generation takes the same history
/// over (<see cref="ConsoleModule.TakeOver"/>) and runs it on, so the charts keep their hour.
/// </summary>
internal sealed class MetricsHistory
{
    /// <summary>Points kept: an hour at the default interval.</summary>
    public const int Capacity = 360;

    public static readonly TimeSpan DefaultInterval = TimeSpan.FromSeconds(10);

    private readonly Func<MetricsReading> _read;
    private readonly TimeProvider _time;
    private readonly Lock _lock = new();
    private readonly MetricsPoint[] _ring = new MetricsPoint[Capacity];
    private int _next;
    private int _count;
    private long _taken;
    private bool _hasBaseline;
    private MetricsReading _last;
    private long _lastStamp;
    private TimeSpan _interval = DefaultInterval;
    private PeriodicTimer? _timer;
    private TaskCompletionSource? _waiter;

    public MetricsHistory(Func<MetricsReading> read, TimeProvider time)
    {
        _read = read;
        _time = time;
    }

    /// <summary>
    /// The time between samples. Setting it while <see cref="RunAsync"/> runs restarts the wait with the new
    /// period (tests sample every few milliseconds).
    /// </summary>
    public TimeSpan Interval
    {
        get
        {
            lock (_lock)
            {
                return _interval;
            }
        }

        set
        {
            ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(value, TimeSpan.Zero);
            lock (_lock)
            {
                _interval = value;
                _timer?.Period = value;
            }
        }
    }

    /// <summary>The time the full ring covers.</summary>
    public TimeSpan Span => Interval * Capacity;

    /// <summary>The history's clock.</summary>
    public DateTimeOffset Now => _time.GetUtcNow();

    /// <summary>Points recorded since the history was made (more than <see cref="Capacity"/> once the ring wrapped).</summary>
    public long Taken
    {
        get
        {
            lock (_lock)
            {
                return _taken;
            }
        }
    }

    /// <summary>Samples every <see cref="Interval"/> until <paramref name="stopping"/>; a first reading is the baseline of the rates.</summary>
    public async Task RunAsync(CancellationToken stopping)
    {
        PeriodicTimer timer;
        lock (_lock)
        {
            timer = new PeriodicTimer(_interval, _time);
            _timer = timer;
        }

        try
        {
            if (!HasBaseline)
            {
                Sample();
            }

            while (await timer.WaitForNextTickAsync(stopping).ConfigureAwait(false))
            {
                Sample();
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
        }
        finally
        {
            lock (_lock)
            {
                if (_timer == timer)
                {
                    _timer = null;
                }
            }

            timer.Dispose();
        }
    }

    private bool HasBaseline
    {
        get
        {
            lock (_lock)
            {
                return _hasBaseline;
            }
        }
    }

    /// <summary>
    /// Reads the server's numbers and records a point (rates from the counters' growth since the last reading),
    /// or only the baseline when there was no reading before. Returns whether a point was recorded.
    /// </summary>
    public bool Sample()
    {
        TaskCompletionSource? waiter;
        lock (_lock)
        {
            var reading = _read();
            var stamp = _time.GetTimestamp();
            if (!_hasBaseline)
            {
                (_last, _lastStamp, _hasBaseline) = (reading, stamp, true);
                return false;
            }

            var seconds = _time.GetElapsedTime(_lastStamp, stamp).TotalSeconds;
            if (seconds <= 0)
            {
                return false;
            }

            var last = _last;
            _ring[_next] = new MetricsPoint(
                _time.GetUtcNow(),
                reading.C2s,
                reading.S2sIn,
                reading.S2sOut,
                reading.Components,
                reading.Sessions,
                Rate(reading.Messages, last.Messages, seconds),
                Rate(reading.Presences, last.Presences, seconds),
                Rate(reading.Iqs, last.Iqs, seconds),
                Rate(reading.AuthSucceeded, last.AuthSucceeded, seconds) * 60,
                Rate(reading.AuthFailed, last.AuthFailed, seconds) * 60,
                reading.ManagedBytes,
                reading.ResidentBytes,
                CpuPercent(reading.Cpu - last.Cpu, seconds, reading.Cores));
            _next = (_next + 1) % Capacity;
            _count = Math.Min(_count + 1, Capacity);
            _taken++;
            (_last, _lastStamp) = (reading, stamp);
            waiter = _waiter;
            _waiter = null;
        }

        waiter?.TrySetResult();
        return true;
    }

    /// <summary>The points, oldest first (a copy).</summary>
    public MetricsPoint[] Snapshot()
    {
        lock (_lock)
        {
            var points = new MetricsPoint[_count];
            var first = (_next - _count + Capacity) % Capacity;
            for (var i = 0; i < _count; i++)
            {
                points[i] = _ring[(first + i) % Capacity];
            }

            return points;
        }
    }

    /// <summary>Completes when the next point is recorded: one whose numbers were read after this call.</summary>
    public Task NextSampleAsync(CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            _waiter ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            return _waiter.Task.WaitAsync(cancellationToken);
        }
    }

    /// <summary>Growth per second of a counter; a counter that went back (it cannot, but) counts as none.</summary>
    internal static double Rate(long now, long before, double seconds) => now > before ? (now - before) / seconds : 0;

    /// <summary>The share of the machine's cores the process used, from 0 to 100.</summary>
    internal static double CpuPercent(TimeSpan used, double seconds, int cores) =>
        seconds <= 0 ? 0 : Math.Clamp(used.TotalSeconds / (seconds * Math.Max(1, cores)) * 100, 0, 100);
}
