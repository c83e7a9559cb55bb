namespace Xmpp.Bench;

/// <summary>Latencies in microseconds with percentiles (log-linear buckets, HdrHistogram-style: 2 significant digits).</summary>
internal sealed class Histogram
{
    private const int SubBuckets = 128;
    private readonly long[] _counts = new long[64 * SubBuckets];
    private long _total;
    private long _max;

    public long Count => Interlocked.Read(ref _total);

    public void Record(long micros)
    {
        micros = Math.Max(0, micros);
        Interlocked.Increment(ref _counts[Index(micros)]);
        Interlocked.Increment(ref _total);
        long max;
        while (micros > (max = Interlocked.Read(ref _max)) && Interlocked.CompareExchange(ref _max, micros, max) != max)
        {
        }
    }

    public double Percentile(double p)
    {
        var total = Count;
        if (total == 0)
        {
            return 0;
        }

        var rank = (long)Math.Ceiling(p / 100.0 * total);
        long seen = 0;
        for (var i = 0; i < _counts.Length; i++)
        {
            seen += _counts[i];
            if (seen >= rank)
            {
                return Math.Min(Value(i), _max);
            }
        }

        return _max;
    }

    private static int Index(long v)
    {
        if (v < SubBuckets)
        {
            return (int)v;
        }

        var exponent = 63 - (int)long.LeadingZeroCount(v) - 6; // v >> exponent is in [64, 128)
        return ((exponent + 1) * SubBuckets) + (int)((v >> exponent) - 64) - 64;
    }

    private static long Value(int index)
    {
        if (index < SubBuckets)
        {
            return index;
        }

        var exponent = ((index + 64) / SubBuckets) - 1;
        var mantissa = ((index + 64) % SubBuckets) + 64;
        return ((long)mantissa << exponent) + (1L << exponent) - 1;
    }
}
