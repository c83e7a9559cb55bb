using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using Xmpp.Core.Stanzas;

namespace Xmpp.Server.Hosting;

/// <summary>
/// The server's own counters, and gauges read when scraped, rendered in the Prometheus text format
/// (version 0.0.4). Counters are lock-free; nothing here allocates on the stanza path.
/// </summary>
public sealed class ServerMetrics
{
    private static readonly string[] Kinds = ["message", "presence", "iq"];

    private readonly long[] _stanzas = new long[Kinds.Length + 1];
    private readonly long[] _stanzasIn = new long[Kinds.Length];
    private readonly long[] _stanzasOut = new long[Kinds.Length];
    private readonly Histogram _routing = new([0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1]);
    private readonly Histogram _clusterForwards = new([0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1]);
    private readonly Histogram _storageWrites = new([0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5]);
    private readonly List<(string Name, string Help, Func<IEnumerable<(string Labels, double Value)>> Read)> _gauges = [];
    private readonly ConcurrentDictionary<(string Stream, StreamErrorCondition Condition), long> _streamErrors = new();
    private readonly ConcurrentDictionary<StanzaErrorCondition, long> _stanzaErrors = new();
    private long _authSuccess;
    private long _authFailure;

    /// <summary>A stanza went through the router, taking <paramref name="ticks"/> Stopwatch ticks.</summary>
    public void Routed(string kind, long ticks)
    {
        var i = Array.IndexOf(Kinds, kind);
        Interlocked.Increment(ref _stanzas[i < 0 ? Kinds.Length : i]);
        _routing.Observe(ticks);
    }

    /// <summary>A stanza arrived on a stream (client, server or component).</summary>
    public void StanzaIn(string kind)
    {
        var i = Array.IndexOf(Kinds, kind);
        if (i >= 0)
        {
            Interlocked.Increment(ref _stanzasIn[i]);
        }
    }

    /// <summary>A stanza was written to a stream (anything else written, acks or stream errors, is not counted).</summary>
    public void StanzaOut(string kind)
    {
        var i = Array.IndexOf(Kinds, kind);
        if (i >= 0)
        {
            Interlocked.Increment(ref _stanzasOut[i]);
        }
    }

    /// <summary>A storage write (queued, run and committed) took <paramref name="ticks"/> Stopwatch ticks.</summary>
    public void StorageWrite(long ticks) => _storageWrites.Observe(ticks);

    /// <summary>Cluster mode: a stanza was handed to its recipient's home on another node, which took that long to route it.</summary>
    public void ClusterForwarded(long ticks)
    {
        _clustered = true;
        _clusterForwards.Observe(ticks);
    }

    private bool _clustered;

    public void Authenticated() => Interlocked.Increment(ref _authSuccess);

    /// <summary>Authentications that succeeded so far (read directly by the console's charts).</summary>
    internal long AuthenticationsSucceeded => Interlocked.Read(ref _authSuccess);

    /// <summary>Authentications that failed so far.</summary>
    internal long AuthenticationsFailed => Interlocked.Read(ref _authFailure);

    /// <summary>Stanzas of one kind ("message", "presence", "iq"; anything else is "other") routed so far.</summary>
    internal long RoutedSoFar(string kind)
    {
        var i = Array.IndexOf(Kinds, kind);
        return Interlocked.Read(ref _stanzas[i < 0 ? Kinds.Length : i]);
    }

    public void AuthenticationFailed() => Interlocked.Increment(ref _authFailure);

    /// <summary>The server ended a stream ("c2s", "s2s" or "component") with a stream error.</summary>
    public void StreamError(string stream, StreamErrorCondition condition) =>
        _streamErrors.AddOrUpdate((stream, condition), 1, static (_, n) => n + 1);

    /// <summary>The server answered a stanza with an error (a bounce, or a refused request).</summary>
    public void StanzaError(StanzaErrorCondition condition) =>
        _stanzaErrors.AddOrUpdate(condition, 1, static (_, n) => n + 1);

    /// <summary>
    /// Adds a gauge read at each scrape (connections, sessions ...), with optional labels per value. A gauge
    /// of the same name is replaced: a module generation that a reload builds registers its gauges again.
    /// </summary>
    public void Gauge(string name, string help, Func<IEnumerable<(string Labels, double Value)>> read)
    {
        lock (_gauges)
        {
            _gauges.RemoveAll(g => g.Name == name);
            _gauges.Add((name, help, read));
        }
    }

    public void Gauge(string name, string help, Func<double> read) => Gauge(name, help, () => [(string.Empty, read())]);

    public string Render()
    {
        var sb = new StringBuilder(4096);
        var stanzas = sb.Header("xmpp_stanzas_routed_total", "Stanzas that went through the router, by kind.", "counter");
        for (var i = 0; i <= Kinds.Length; i++)
        {
            stanzas.Sample("xmpp_stanzas_routed_total", $"{{kind=\"{(i < Kinds.Length ? Kinds[i] : "other")}\"}}", Interlocked.Read(ref _stanzas[i]));
        }

        var flow = sb.Header("xmpp_stanzas_total", "Stanzas read from and written to streams (client, server, component), by direction and kind.", "counter");
        for (var i = 0; i < Kinds.Length; i++)
        {
            flow.Sample("xmpp_stanzas_total", $"{{direction=\"in\",kind=\"{Kinds[i]}\"}}", Interlocked.Read(ref _stanzasIn[i]));
            flow.Sample("xmpp_stanzas_total", $"{{direction=\"out\",kind=\"{Kinds[i]}\"}}", Interlocked.Read(ref _stanzasOut[i]));
        }

        _routing.Render(sb, "xmpp_routing_duration_seconds", "Time from a stanza's arrival at the router to its hand-over (queued for a session, stored, or passed to federation).");
        _storageWrites.Render(sb, "xmpp_storage_write_duration_seconds", "Time of a storage write, from the request to its commit (queueing included).");
        if (_clustered)
        {
            _clusterForwards.Render(sb, "xmpp_cluster_forward_duration_seconds", "Cluster mode: time of a stanza handed to its recipient's home node, until that node routed it.");
        }

        sb.Header("xmpp_authentications_total", "SASL authentications of clients, by outcome.", "counter")
          .Sample("xmpp_authentications_total", "{outcome=\"success\"}", Interlocked.Read(ref _authSuccess))
          .Sample("xmpp_authentications_total", "{outcome=\"failure\"}", Interlocked.Read(ref _authFailure));
        var streamErrors = sb.Header("xmpp_stream_errors_total", "Streams the server ended with a stream error, by stream and condition.", "counter");
        foreach (var ((stream, condition), n) in _streamErrors.OrderBy(e => e.Key.Stream, StringComparer.Ordinal).ThenBy(e => e.Key.Condition))
        {
            streamErrors.Sample("xmpp_stream_errors_total", $"{{stream=\"{stream}\",condition=\"{ErrorNames.ToElementName(condition)}\"}}", n);
        }

        var stanzaErrors = sb.Header("xmpp_stanza_errors_total", "Stanza errors the server sent (bounces and refused requests), by condition.", "counter");
        foreach (var (condition, n) in _stanzaErrors.OrderBy(e => e.Key))
        {
            stanzaErrors.Sample("xmpp_stanza_errors_total", $"{{condition=\"{ErrorNames.ToElementName(condition)}\"}}", n);
        }

        List<(string Name, string Help, Func<IEnumerable<(string Labels, double Value)>> Read)> gauges;
        lock (_gauges)
        {
            gauges = [.. _gauges];
        }

        foreach (var (name, help, read) in gauges)
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

/// <summary>A cumulative histogram of durations, lock-free.</summary>
internal sealed class Histogram(double[] bounds)
{
    private readonly long[] _counts = new long[bounds.Length + 1];
    private long _ticks;

    public void Observe(long ticks)
    {
        Interlocked.Add(ref _ticks, ticks);
        var seconds = (double)ticks / Stopwatch.Frequency;
        var b = 0;
        while (b < bounds.Length && seconds > bounds[b])
        {
            b++;
        }

        Interlocked.Increment(ref _counts[b]);
    }

    public void Render(StringBuilder sb, string name, string help)
    {
        sb.Header(name, help, "histogram");
        long cumulative = 0;
        for (var b = 0; b <= bounds.Length; b++)
        {
            cumulative += Interlocked.Read(ref _counts[b]);
            var le = b < bounds.Length ? bounds[b].ToString("R", CultureInfo.InvariantCulture) : "+Inf";
            sb.Sample(name + "_bucket", $"{{le=\"{le}\"}}", cumulative);
        }

        sb.Sample(name + "_sum", string.Empty, (double)Interlocked.Read(ref _ticks) / Stopwatch.Frequency);
        sb.Sample(name + "_count", string.Empty, cumulative);
    }
}
