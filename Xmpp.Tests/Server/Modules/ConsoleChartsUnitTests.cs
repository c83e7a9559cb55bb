using System.Globalization;
using System.Xml;
using Xmpp.Server.Modules.Console;

namespace Xmpp.Tests.Server.Modules;

/// <summary>The console's metrics sampler with a clock the test moves, and the SVG charts drawn from its points.</summary>
public sealed class ConsoleChartsUnitTests
{
    /// <summary>A clock that moves only when told to: timestamps and wall time together.</summary>
    private sealed class FakeClock : TimeProvider
    {
        private long _ticks;

        public DateTimeOffset Start { get; } = new(2026, 1, 1, 12, 0, 0, TimeSpan.Zero);

        public override long TimestampFrequency => TimeSpan.TicksPerSecond;

        public override long GetTimestamp() => _ticks;

        public override DateTimeOffset GetUtcNow() => Start + TimeSpan.FromTicks(_ticks);

        public void Advance(TimeSpan by) => _ticks += by.Ticks;
    }

    /// <summary>A reading the test changes between samples.</summary>
    private sealed class FakeServer
    {
        public MetricsReading Now { get; set; } = new(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 10 << 20, 50 << 20, TimeSpan.Zero, 2);
    }

    private static (FakeClock Clock, FakeServer Server, MetricsHistory History) Make()
    {
        var clock = new FakeClock();
        var server = new FakeServer();
        return (clock, server, new MetricsHistory(() => server.Now, clock));
    }

    [Test]
    public void Rates_come_from_the_counters_growth_over_the_time_between_samples()
    {
        var (clock, server, history) = Make();
        Assert.That(history.Sample(), Is.False, "the first reading is the baseline only");
        Assert.That(history.Snapshot(), Is.Empty);

        clock.Advance(TimeSpan.FromSeconds(10));
        server.Now = server.Now with { C2s = 3, S2sIn = 1, S2sOut = 2, Components = 1, Sessions = 2, Messages = 50, Presences = 20, Iqs = 5, AuthSucceeded = 2, AuthFailed = 1, Cpu = TimeSpan.FromSeconds(5) };
        Assert.That(history.Sample(), Is.True);
        var p = history.Snapshot().Single();
        Assert.That(p.Time, Is.EqualTo(clock.Start.AddSeconds(10)));
        Assert.That((p.C2s, p.S2sIn, p.S2sOut, p.Components, p.Sessions), Is.EqualTo((3, 1, 2, 1, 2)), "gauges as read");
        Assert.That(p.MessagesPerSecond, Is.EqualTo(5));
        Assert.That(p.PresencesPerSecond, Is.EqualTo(2));
        Assert.That(p.IqsPerSecond, Is.EqualTo(0.5));
        Assert.That(p.AuthSucceededPerMinute, Is.EqualTo(12), "2 in 10 s");
        Assert.That(p.AuthFailedPerMinute, Is.EqualTo(6));
        Assert.That(p.CpuPercent, Is.EqualTo(25), "5 s of CPU in 10 s on 2 cores");
        Assert.That((p.ManagedBytes, p.ResidentBytes), Is.EqualTo((10L << 20, 50L << 20)));

        // The next interval is longer and nothing happened: rates fall to 0, gauges stay.
        clock.Advance(TimeSpan.FromSeconds(20));
        history.Sample();
        var q = history.Snapshot()[^1];
        Assert.That((q.MessagesPerSecond, q.AuthSucceededPerMinute, q.CpuPercent, q.Sessions), Is.EqualTo((0.0, 0.0, 0.0, 2)));

        // No time passed: no point (no division by zero).
        Assert.That(history.Sample(), Is.False);
        Assert.That(history.Taken, Is.EqualTo(2));
    }

    [Test]
    public void Cpu_percent_stays_within_0_and_100()
    {
        Assert.That(MetricsHistory.CpuPercent(TimeSpan.FromSeconds(40), 10, 2), Is.EqualTo(100), "more than the cores can give (a clock step) is capped");
        Assert.That(MetricsHistory.CpuPercent(TimeSpan.FromSeconds(-1), 10, 2), Is.Zero);
        Assert.That(MetricsHistory.CpuPercent(TimeSpan.FromSeconds(10), 10, 1), Is.EqualTo(100));
        Assert.That(MetricsHistory.CpuPercent(TimeSpan.FromSeconds(1), 0, 4), Is.Zero);
        Assert.That(MetricsHistory.CpuPercent(TimeSpan.FromSeconds(1), 10, 0), Is.EqualTo(10), "no core count is one core");

        var (clock, server, history) = Make();
        history.Sample();
        for (var i = 1; i <= 50; i++)
        {
            clock.Advance(TimeSpan.FromSeconds(10));
            server.Now = server.Now with { Cpu = server.Now.Cpu + TimeSpan.FromSeconds(i % 7 * 5) };
            history.Sample();
        }

        Assert.That(history.Snapshot().Select(p => p.CpuPercent), Is.All.InRange(0.0, 100.0));
        Assert.That(history.Snapshot().Max(p => p.CpuPercent), Is.EqualTo(100));
    }

    [Test]
    public void The_ring_keeps_the_last_360_points_oldest_first()
    {
        var (clock, server, history) = Make();
        history.Sample();
        for (var i = 1; i <= MetricsHistory.Capacity + 25; i++)
        {
            clock.Advance(TimeSpan.FromSeconds(10));
            server.Now = server.Now with { Sessions = i };
            history.Sample();
        }

        var points = history.Snapshot();
        Assert.That(points, Has.Length.EqualTo(MetricsHistory.Capacity));
        Assert.That(history.Taken, Is.EqualTo(MetricsHistory.Capacity + 25));
        Assert.That(points.Select(p => p.Sessions), Is.EqualTo(Enumerable.Range(26, MetricsHistory.Capacity)));
        Assert.That(points[^1].Time - points[0].Time, Is.EqualTo(TimeSpan.FromSeconds(10 * (MetricsHistory.Capacity - 1))));
        Assert.That(history.Span, Is.EqualTo(TimeSpan.FromHours(1)));
    }

    [Test]
    public async Task A_waiter_is_released_by_the_next_point_only()
    {
        var (clock, _, history) = Make();
        var baseline = history.NextSampleAsync(CancellationToken.None);
        history.Sample();
        Assert.That(baseline.IsCompleted, Is.False, "a baseline is no point");
        clock.Advance(TimeSpan.FromSeconds(1));
        history.Sample();
        await baseline.WaitAsync(TimeSpan.FromSeconds(10));

        var next = history.NextSampleAsync(CancellationToken.None);
        Assert.That(next.IsCompleted, Is.False);
        clock.Advance(TimeSpan.FromSeconds(1));
        history.Sample();
        await next.WaitAsync(TimeSpan.FromSeconds(10));
    }

    /// <summary>Parses a chart as XML; returns its root.</summary>
    private static XmlDocument Parse(string svg)
    {
        var doc = new XmlDocument();
        using var reader = XmlReader.Create(new StringReader(svg), new XmlReaderSettings { DtdProcessing = DtdProcessing.Prohibit });
        doc.Load(reader);
        return doc;
    }

    private static XmlNamespaceManager Ns(XmlDocument doc)
    {
        var ns = new XmlNamespaceManager(doc.NameTable);
        ns.AddNamespace("s", "http://www.w3.org/2000/svg");
        return ns;
    }

    [Test]
    public void Each_chart_is_well_formed_svg_with_a_line_per_series_and_its_labels()
    {
        var (clock, server, history) = Make();
        history.Sample();
        for (var i = 1; i <= 30; i++)
        {
            clock.Advance(TimeSpan.FromSeconds(10));
            server.Now = server.Now with { C2s = i, Sessions = 1000 + i, Messages = server.Now.Messages + (i * 10), Cpu = server.Now.Cpu + TimeSpan.FromSeconds(1), ResidentBytes = 200L << 20 };
            history.Sample();
        }

        var points = history.Snapshot();
        foreach (var group in ConsoleCharts.Groups)
        {
            var svg = ConsoleCharts.Svg(group, points, clock.GetUtcNow(), history.Span);
            var doc = Parse(svg);
            var ns = Ns(doc);
            var root = doc.DocumentElement!;
            Assert.That(root.LocalName, Is.EqualTo("svg"));
            Assert.That(root.GetAttribute("role"), Is.EqualTo("img"));
            Assert.That(root.GetAttribute("aria-label"), Does.StartWith(group.Title + " over the last 60 min: "));
            Assert.That(root.SelectSingleNode("s:title", ns)?.InnerText, Is.EqualTo(root.GetAttribute("aria-label")));
            Assert.That(root.SelectNodes("s:polyline", ns)!.Count, Is.EqualTo(group.Series.Length), group.Title);
            foreach (XmlElement line in root.SelectNodes("s:polyline", ns)!)
            {
                var coordinates = line.GetAttribute("points").Split(' ');
                Assert.That(coordinates, Has.Length.EqualTo(30));
                Assert.That(coordinates.Select(c => double.Parse(c.Split(',')[0], CultureInfo.InvariantCulture)), Is.Ordered.And.All.InRange(0.0, 320.0));
            }

            var texts = root.SelectNodes("s:text", ns)!.Cast<XmlElement>().Select(t => t.InnerText).ToList();
            Assert.That(texts, Does.Contain(group.Title).And.Contain("0").And.Contain("-60 min").And.Contain("now"), group.Title);
            foreach (var series in group.Series)
            {
                Assert.That(texts, Has.Some.StartsWith(series.Name + " "), "the legend names " + series.Name);
            }

            Assert.That(svg, Does.Not.Contain("style="), "no inline style (the policy forbids it)");
        }

        // The labels say the numbers, in invariant form whatever the thread's culture.
        var culture = CultureInfo.CurrentCulture;
        try
        {
            CultureInfo.CurrentCulture = CultureInfo.GetCultureInfo("de-DE");
            var sessions = Parse(ConsoleCharts.Svg(ConsoleCharts.Groups.Single(g => g.Title == "Sessions"), points, clock.GetUtcNow(), history.Span));
            var texts = sessions.DocumentElement!.SelectNodes("s:text", Ns(sessions))!.Cast<XmlElement>().Select(t => t.InnerText).ToList();
            Assert.That(texts, Does.Contain("1,030").And.Contain("2,000").And.Contain("bound 1,030"), "the current value, the scale's top");
            var stanzas = Parse(ConsoleCharts.Svg(ConsoleCharts.Groups.Single(g => g.Title.StartsWith("Stanzas", StringComparison.Ordinal)), points, clock.GetUtcNow(), history.Span));
            Assert.That(stanzas.DocumentElement!.GetAttribute("aria-label"), Does.Contain("message now 30/s, highest 30/s").And.Contain("iq now 0/s"));
            var cpu = Parse(ConsoleCharts.Svg(ConsoleCharts.Groups.Single(g => g.Title == "CPU"), points, clock.GetUtcNow(), history.Span));
            Assert.That(cpu.DocumentElement!.GetAttribute("aria-label"), Does.Contain("process now 5 %"), "1 s of CPU in 10 s on 2 cores");
            var memory = Parse(ConsoleCharts.Svg(ConsoleCharts.Groups.Single(g => g.Title == "Memory"), points, clock.GetUtcNow(), history.Span));
            Assert.That(memory.DocumentElement!.GetAttribute("aria-label"), Does.Contain("resident now 200 MiB").And.Contain("managed now 10 MiB"));
        }
        finally
        {
            CultureInfo.CurrentCulture = culture;
        }
    }

    [Test]
    public void An_empty_history_draws_empty_charts_that_say_collecting()
    {
        var section = ConsoleCharts.Section([], DateTimeOffset.UtcNow, TimeSpan.FromHours(1));
        var doc = Parse("<div>" + section + "</div>");
        var ns = Ns(doc);
        var charts = doc.DocumentElement!.SelectNodes("s:svg", ns)!.Cast<XmlElement>().ToList();
        Assert.That(charts, Has.Count.EqualTo(ConsoleCharts.Groups.Length));
        foreach (var chart in charts)
        {
            Assert.That(chart.SelectNodes("s:polyline", ns)!.Count, Is.Zero);
            Assert.That(chart.SelectNodes("s:text", ns)!.Cast<XmlElement>().Select(t => t.InnerText), Does.Contain("collecting…"));
            Assert.That(chart.GetAttribute("aria-label"), Does.EndWith(": collecting, no sample yet."));
        }
    }

    [Test]
    public void Points_older_than_the_span_are_left_out_and_the_scale_is_rounded_up()
    {
        var now = new DateTimeOffset(2026, 1, 1, 12, 0, 0, TimeSpan.Zero);
        MetricsPoint P(int minutesAgo, int sessions) => new(now.AddMinutes(-minutesAgo), 0, 0, 0, 0, sessions, 0, 0, 0, 0, 0, 0, 0, 0);
        var group = ConsoleCharts.Groups.Single(g => g.Title == "Sessions");
        var doc = Parse(ConsoleCharts.Svg(group, [P(90, 900), P(30, 3), P(0, 4)], now, TimeSpan.FromHours(1)));
        var ns = Ns(doc);
        Assert.That(doc.DocumentElement!.SelectSingleNode("s:polyline", ns)!.Attributes!["points"]!.Value.Split(' '), Has.Length.EqualTo(2));
        Assert.That(doc.DocumentElement.SelectSingleNode("s:text[@class='max']", ns)!.InnerText, Is.EqualTo("5"));
        Assert.That(ConsoleCharts.NiceCeiling(0), Is.EqualTo(1));
        Assert.That(ConsoleCharts.NiceCeiling(1.5), Is.EqualTo(2));
        Assert.That(ConsoleCharts.NiceCeiling(230), Is.EqualTo(500));
        Assert.That(ConsoleCharts.NiceCeiling(1000), Is.EqualTo(1000));
        Assert.That(ConsoleCharts.SpanText(TimeSpan.FromHours(1)), Is.EqualTo("hour"));
        Assert.That(ConsoleCharts.SpanText(TimeSpan.FromSeconds(36)), Is.EqualTo("36 s"));
    }
}
