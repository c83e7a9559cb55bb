using System.Collections.Concurrent;
using System.Net;

namespace Xmpp.Server.Net;

/// <summary>
/// Slows down repeated SASL failures from one address. The first <see cref="FreeFailures"/> within the
/// window are answered at once (a client trying its mechanisms in turn with a mistyped password: libpurple
/// makes six attempts); each further one waits twice as long as the previous, up to a maximum.
/// </summary>
public sealed class AuthFailureTracker(TimeSpan baseDelay, TimeSpan maxDelay, TimeProvider time)
{
    public const int FreeFailures = 3;
    private static readonly TimeSpan Window = TimeSpan.FromMinutes(10);
    private readonly ConcurrentDictionary<IPAddress, (int Count, DateTimeOffset Last)> _failures = new();

    /// <summary>Records a failure and returns how long to wait before answering it.</summary>
    public TimeSpan RecordFailure(IPAddress address)
    {
        var now = time.GetUtcNow();
        var entry = _failures.AddOrUpdate(address, _ => (1, now), (_, e) => (now - e.Last > Window ? 1 : e.Count + 1, now));
        if (_failures.Count > 100_000)
        {
            Prune(now);
        }

        if (entry.Count <= FreeFailures || baseDelay <= TimeSpan.Zero)
        {
            return TimeSpan.Zero;
        }

        var factor = Math.Pow(2, Math.Min(entry.Count - FreeFailures - 1, 20));
        var delay = TimeSpan.FromTicks((long)Math.Min(baseDelay.Ticks * factor, maxDelay.Ticks));
        return delay;
    }

    public void RecordSuccess(IPAddress address) => _failures.TryRemove(address, out _);

    private void Prune(DateTimeOffset now)
    {
        foreach (var (key, value) in _failures)
        {
            if (now - value.Last > Window)
            {
                _failures.TryRemove(key, out _);
            }
        }
    }
}
