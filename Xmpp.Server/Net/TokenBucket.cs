using System.Diagnostics;

namespace Xmpp.Server.Net;

/// <summary>
/// A token bucket (rate per second, capacity <c>burst</c>) for one connection's reader; starts full. Not
/// thread-safe: only the connection's read loop takes from it.
/// </summary>
public sealed class TokenBucket(double rate, int burst)
{
    private double _tokens = burst;
    private long _last = Stopwatch.GetTimestamp();

    /// <summary>Takes one token at <paramref name="now"/> (a <see cref="Stopwatch"/> timestamp); false when the bucket is empty.</summary>
    public bool TryTake(long now)
    {
        var elapsed = Stopwatch.GetElapsedTime(_last, now).TotalSeconds;
        _last = now;
        if (elapsed > 0)
        {
            _tokens = Math.Min(burst, _tokens + (elapsed * rate));
        }

        if (_tokens < 1)
        {
            return false;
        }

        _tokens--;
        return true;
    }

    public bool TryTake() => TryTake(Stopwatch.GetTimestamp());
}
