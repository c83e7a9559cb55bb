using System.Diagnostics;

namespace Xmpp.Server.Net;

/// <summary>
/// A token bucket (rate per second, capacity <c>burst</c>) for one connection's reader; starts full. Not
/// thread-safe: only the connection's read loop takes from it.
/// </summary>
public sealed class TokenBucket(double rate, int burst)
{
    private double _tokens = burst;

    /// <summary>Tokens per second.</summary>
    public double Rate => rate;
    private long _last = Stopwatch.GetTimestamp();

    /// <summary>
    /// Takes one token at <paramref name="now"/> (a <see cref="Stopwatch"/> timestamp) and says how long to wait
    /// before using it: zero while the bucket holds one, else the time until it will (the token is taken on
    /// credit, so waiting that long and coming back keeps the pace at the rate).
    /// </summary>
    public TimeSpan Take(long now)
    {
        var elapsed = Stopwatch.GetElapsedTime(_last, now).TotalSeconds;
        _last = now;
        if (elapsed > 0)
        {
            _tokens = Math.Min(burst, _tokens + (elapsed * rate));
        }

        _tokens--;
        return _tokens >= 0 ? TimeSpan.Zero : TimeSpan.FromSeconds(-_tokens / rate);
    }

    public TimeSpan Take() => Take(Stopwatch.GetTimestamp());
}
