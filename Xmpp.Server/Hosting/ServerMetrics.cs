using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace Xmpp.Server.Hosting;

/// <summary>
/// The server's own counters, and gauges read when scraped, rendered in the Prometheus text format
/// (version 0.0.4). Counters are lock-free; nothing here allocates on the stanza path.
/// </summary>
public sealed class ServerMetrics
{
    /// <summary>Upper bounds of the routing-latency histogram, in seconds.</summary>
    private static readonly double[] Buckets = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1];
    private static readonly string[] Kinds = ["message", "presence", "iq"];

    private readonly long[] _stanzas = new long[Kinds.Length + 1];
    private readonly long[] _bucketCounts = new long[Buckets.Length + 1];
    private readonly List<(string Name, string Help, Func<IEnumerable<(string Labels, double Value)>> Read)> _gauges = [];
    private long _routingTicks;
    private long _authSuccess;
    private long _authFailure;
    private long _streamErrors;

    /// <summary>A stanza went through the router, taking <paramref name="ticks"/> Stopwatch ticks.</summary>
    public void Routed(string kind, long ticks)
    {
        var i = Array.IndexOf(Kinds, kind);
        Interlocked.Increment(ref _stanzas[i < 0 ? Kinds.Length : i]);
        Interlocked.Add(ref _routingTicks, ticks);
        var seconds = (double)ticks / Stopwatch.Frequency;
        var b = 0;
        while (b < Buckets.Length && seconds > Buckets[b])
        {
            b++;
        }

        Interlocked.Increment(ref _bucketCounts[b]);
    }

    public void Authenticated() => Interlocked.Increment(ref _authSuccess);

    public void AuthenticationFailed() => Interlocked.Increment(ref _authFailure);

    public void StreamError() => Interlocked.Increment(ref _streamErrors);

    /// <summary>Adds a gauge read at each scrape (connections, sessions ...), with optional labels per value.</summary>
    public void Gauge(string name, string help, Func<IEnumerable<(string Labels, double Value)>> read) => _gauges.Add((name, help, read));

    public void Gauge(string name, string help, Func<double> read) => Gauge(name, help, () => [(string.Empty, read())]);

    public string Render()
    {
        var sb = new StringBuilder(4096);
        var stanzas = sb.Header("xmpp_stanzas_routed_total", "Stanzas that went through the router, by kind.", "counter");
        for (var i = 0; i <= Kinds.Length; i++)
        {
            stanzas.Sample("xmpp_stanzas_routed_total", $"{{kind=\"{(i < Kinds.Length ? Kinds[i] : "other")}\"}}", Interlocked.Read(ref _stanzas[i]));
        }

        sb.Header("xmpp_routing_duration_seconds", "Time from a stanza's arrival at the router to its hand-over (queued for a session, stored, or passed to federation).", "histogram");
        long cumulative = 0;
        for (var b = 0; b <= Buckets.Length; b++)
        {
            cumulative += Interlocked.Read(ref _bucketCounts[b]);
            var le = b < Buckets.Length ? Buckets[b].ToString("R", CultureInfo.InvariantCulture) : "+Inf";
            sb.Sample("xmpp_routing_duration_seconds_bucket", $"{{le=\"{le}\"}}", cumulative);
        }

        sb.Sample("xmpp_routing_duration_seconds_sum", string.Empty, (double)Interlocked.Read(ref _routingTicks) / Stopwatch.Frequency);
        sb.Sample("xmpp_routing_duration_seconds_count", string.Empty, cumulative);

        sb.Header("xmpp_authentications_total", "SASL authentications of clients, by outcome.", "counter")
          .Sample("xmpp_authentications_total", "{outcome=\"success\"}", Interlocked.Read(ref _authSuccess))
          .Sample("xmpp_authentications_total", "{outcome=\"failure\"}", Interlocked.Read(ref _authFailure));
        sb.Header("xmpp_stream_errors_total", "Client streams ended by the server with a stream error.", "counter")
          .Sample("xmpp_stream_errors_total", string.Empty, Interlocked.Read(ref _streamErrors));

        foreach (var (name, help, read) in _gauges)
        {
            sb.Header(name, help, "gauge");
            foreach (var (labels, value) in read())
            {
                sb.Sample(name, labels, value);
            }
        }

        using var process = Process.GetCurrentProcess();
        sb.Header("process_resident_memory_bytes", "Resident memory size in bytes.", "gauge").Sample("process_resident_memory_bytes", string.Empty, process.WorkingSet64);
        sb.Header("process_cpu_seconds_total", "User and system CPU time spent in seconds.", "counter").Sample("process_cpu_seconds_total", string.Empty, process.TotalProcessorTime.TotalSeconds);
        sb.Header("process_start_time_seconds", "Start time of the process since the Unix epoch in seconds.", "gauge")
          .Sample("process_start_time_seconds", string.Empty, new DateTimeOffset(process.StartTime.ToUniversalTime()).ToUnixTimeSeconds());
        sb.Header("dotnet_gc_heap_bytes", "Bytes in the managed heap.", "gauge").Sample("dotnet_gc_heap_bytes", string.Empty, GC.GetTotalMemory(false));
        var gc = sb.Header("dotnet_gc_collections_total", "Garbage collections, by generation.", "counter");
        for (var g = 0; g <= GC.MaxGeneration; g++)
        {
            gc.Sample("dotnet_gc_collections_total", $"{{generation=\"{g}\"}}", GC.CollectionCount(g));
        }

        return sb.ToString();
    }
}

internal static class MetricsText
{
    public static StringBuilder Header(this StringBuilder sb, string name, string help, string type) =>
        sb.Append("# HELP ").Append(name).Append(' ').Append(help).Append('\n').Append("# TYPE ").Append(name).Append(' ').Append(type).Append('\n');

    public static StringBuilder Sample(this StringBuilder sb, string name, string labels, double value) =>
        sb.Append(name).Append(labels).Append(' ').Append(value.ToString("R", CultureInfo.InvariantCulture)).Append('\n');
}
