using System.Globalization;
using System.Text;
using static Xmpp.Server.Modules.Console.ConsoleHtml;

namespace Xmpp.Server.Modules.Console;

/// <summary>
/// The dashboard's charts, drawn on the server as inline SVG from <see cref="MetricsHistory"/>: one small line
/// chart per group of series, with its title, the current values, the scale's bounds and the time span, and a
/// text summary for screen readers. No external assets; the colours are classes of the console's stylesheet.
/// </summary>
internal static class ConsoleCharts
{
    private const int Width = 320;
    private const int Left = 56;
    private const int Right = 312;
    private const int Top = 26;
    private const int Bottom = 112;
    private const int LegendTop = 138;
    private const int LegendRow = 14;
    private const double CharWidth = 5.6;

    /// <summary>A line of a chart: its name, the colour class (c0 to c3) and how it is read from a point.</summary>
    internal sealed record Series(string Name, string Colour, Func<MetricsPoint, double> Value);

    /// <summary>A chart: its title, the unit after its numbers, its lines, and a fixed top of the scale if any.</summary>
    internal sealed record Group(string Title, string Unit, Series[] Series, double? Ceiling = null);

    private const double MiB = 1024 * 1024;

    /// <summary>The charts, in the order shown.</summary>
    internal static readonly Group[] Groups =
    [
        new("Connections", string.Empty,
        [
            new("c2s", "c0", p => p.C2s),
            new("s2s in", "c1", p => p.S2sIn),
            new("s2s out", "c2", p => p.S2sOut),
            new("components", "c3", p => p.Components),
        ]),
        new("Sessions", string.Empty, [new("bound", "c0", p => p.Sessions)]),
        new("Stanzas routed per second", "/s",
        [
            new("message", "c0", p => p.MessagesPerSecond),
            new("presence", "c1", p => p.PresencesPerSecond),
            new("iq", "c2", p => p.IqsPerSecond),
        ]),
        new("Authentications per minute", "/min",
        [
            new("succeeded", "c0", p => p.AuthSucceededPerMinute),
            new("failed", "c3", p => p.AuthFailedPerMinute),
        ]),
        new("Memory", " MiB",
        [
            new("resident", "c0", p => p.ResidentBytes / MiB),
            new("managed", "c1", p => p.ManagedBytes / MiB),
        ]),
        new("CPU", " %", [new("process", "c0", p => p.CpuPercent)], Ceiling: 100),
    ];

    /// <summary>The charts' HTML (the content of the dashboard's charts section, and what /admin/charts answers).</summary>
    public static string Section(IReadOnlyList<MetricsPoint> points, DateTimeOffset now, TimeSpan span)
    {
        var sb = new StringBuilder(16 * 1024);
        foreach (var group in Groups)
        {
            sb.Append(Svg(group, points, now, span)).Append('\n');
        }

        return sb.ToString();
    }

    /// <summary>"hour", "10 min", "36 s": the span in a heading's words.</summary>
    public static string SpanText(TimeSpan span) =>
        span == TimeSpan.FromHours(1) ? "hour"
        : span.TotalHours >= 1 && span.TotalHours == Math.Floor(span.TotalHours) ? string.Create(CultureInfo.InvariantCulture, $"{span.TotalHours:0} h")
        : span.TotalMinutes >= 1 ? string.Create(CultureInfo.InvariantCulture, $"{span.TotalMinutes:0.#} min")
        : string.Create(CultureInfo.InvariantCulture, $"{span.TotalSeconds:0.#} s");

    /// <summary>One chart, as a standalone SVG element.</summary>
    internal static string Svg(Group group, IReadOnlyList<MetricsPoint> points, DateTimeOffset now, TimeSpan span)
    {
        var start = now - span;
        var shown = points.Where(p => p.Time >= start && p.Time <= now).ToList();
        var empty = shown.Count == 0;
        var top = empty ? 1 : NiceCeiling(group.Series.Max(s => shown.Max(s.Value)));
        if (group.Ceiling is { } ceiling)
        {
            top = Math.Min(top, ceiling);
        }

        // The legend: one item per line of the chart, with its current value, wrapped to the chart's width.
        var legend = new StringBuilder();
        double x = 8;
        var row = 0;
        foreach (var series in group.Series)
        {
            var label = series.Name + " " + (empty ? "-" : Format(series.Value(shown[^1]), group.Unit));
            var width = 12 + (label.Length * CharWidth) + 12;
            if (x > 8 && x + width > Width - 4)
            {
                (x, row) = (8, row + 1);
            }

            var y = LegendTop + (row * LegendRow);
            legend.Append(CultureInfo.InvariantCulture, $"<rect class=\"{series.Colour}\" x=\"{F(x)}\" y=\"{y - 8}\" width=\"8\" height=\"8\" rx=\"1\"/>");
            legend.Append(CultureInfo.InvariantCulture, $"<text x=\"{F(x + 12)}\" y=\"{y}\">{H(label)}</text>");
            x += width;
        }

        var height = LegendTop + (row * LegendRow) + 8;
        var summary = Summary(group, shown, span);
        var sb = new StringBuilder(2048);
        sb.Append(CultureInfo.InvariantCulture, $"<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" viewBox=\"0 0 {Width} {height}\" width=\"{Width}\" height=\"{height}\" role=\"img\" aria-label=\"{H(summary)}\">");
        sb.Append(CultureInfo.InvariantCulture, $"<title>{H(summary)}</title>");
        sb.Append(CultureInfo.InvariantCulture, $"<text class=\"title\" x=\"8\" y=\"16\">{H(group.Title)}</text>");
        if (group.Series.Length == 1 && !empty)
        {
            sb.Append(CultureInfo.InvariantCulture, $"<text class=\"now\" x=\"{Right}\" y=\"16\" text-anchor=\"end\">{H(Format(group.Series[0].Value(shown[^1]), group.Unit))}</text>");
        }

        // The scale: its top (once there is something to scale) and 0, and the time span along the bottom.
        sb.Append(CultureInfo.InvariantCulture, $"<line class=\"grid\" x1=\"{Left}\" y1=\"{Top}\" x2=\"{Right}\" y2=\"{Top}\"/>");
        sb.Append(CultureInfo.InvariantCulture, $"<line class=\"axis\" x1=\"{Left}\" y1=\"{Bottom}\" x2=\"{Right}\" y2=\"{Bottom}\"/>");
        if (!empty)
        {
            sb.Append(CultureInfo.InvariantCulture, $"<text class=\"max\" x=\"{Left - 4}\" y=\"{Top + 4}\" text-anchor=\"end\">{H(Format(top, group.Unit))}</text>");
        }

        sb.Append(CultureInfo.InvariantCulture, $"<text class=\"min\" x=\"{Left - 4}\" y=\"{Bottom}\" text-anchor=\"end\">0</text>");
        sb.Append(CultureInfo.InvariantCulture, $"<text class=\"from\" x=\"{Left}\" y=\"{Bottom + 12}\">-{H(Ago(span))}</text>");
        sb.Append(CultureInfo.InvariantCulture, $"<text class=\"to\" x=\"{Right}\" y=\"{Bottom + 12}\" text-anchor=\"end\">now</text>");

        if (empty)
        {
            sb.Append(CultureInfo.InvariantCulture, $"<text class=\"collecting\" x=\"{(Left + Right) / 2}\" y=\"{(Top + Bottom) / 2}\" text-anchor=\"middle\">collecting…</text>");
        }
        else
        {
            double X(MetricsPoint p) => Left + ((p.Time - start) / span * (Right - Left));
            double Y(double v) => Bottom - (Math.Clamp(v / top, 0, 1) * (Bottom - Top));
            if (group.Series.Length == 1)
            {
                var area = new StringBuilder();
                area.Append(CultureInfo.InvariantCulture, $"{F(X(shown[0]))},{Bottom}");
                foreach (var p in shown)
                {
                    area.Append(CultureInfo.InvariantCulture, $" {F(X(p))},{F(Y(group.Series[0].Value(p)))}");
                }

                area.Append(CultureInfo.InvariantCulture, $" {F(X(shown[^1]))},{Bottom}");
                sb.Append(CultureInfo.InvariantCulture, $"<polygon class=\"area {group.Series[0].Colour}\" points=\"{area}\"/>");
            }

            foreach (var series in group.Series)
            {
                sb.Append(CultureInfo.InvariantCulture, $"<polyline class=\"{series.Colour}\" points=\"");
                foreach (var (p, i) in shown.Select((p, i) => (p, i)))
                {
                    sb.Append(CultureInfo.InvariantCulture, $"{(i > 0 ? " " : string.Empty)}{F(X(p))},{F(Y(series.Value(p)))}");
                }

                sb.Append("\"/>");
            }
        }

        sb.Append(legend).Append("</svg>");
        return sb.ToString();
    }

    /// <summary>What the chart says, for screen readers and as its tooltip.</summary>
    private static string Summary(Group group, List<MetricsPoint> shown, TimeSpan span)
    {
        if (shown.Count == 0)
        {
            return $"{group.Title}: collecting, no sample yet.";
        }

        var sb = new StringBuilder().Append(CultureInfo.InvariantCulture, $"{group.Title} over the last {Ago(span)}: ");
        sb.AppendJoin("; ", group.Series.Select(s => $"{s.Name} now {Format(s.Value(shown[^1]), group.Unit)}, highest {Format(shown.Max(s.Value), group.Unit)}"));
        return sb.Append('.').ToString();
    }

    /// <summary>A value with its unit: whole numbers grouped, small ones with up to two decimals, all invariant.</summary>
    internal static string Format(double value, string unit)
    {
        var text = value >= 100 || value == Math.Floor(value) ? value.ToString("#,0", CultureInfo.InvariantCulture)
            : value >= 10 ? value.ToString("0.#", CultureInfo.InvariantCulture)
            : value.ToString("0.##", CultureInfo.InvariantCulture);
        return text + unit;
    }

    /// <summary>The span along a chart's bottom: "60 min", "36 s".</summary>
    private static string Ago(TimeSpan span) =>
        span.TotalMinutes >= 1 ? string.Create(CultureInfo.InvariantCulture, $"{span.TotalMinutes:0.#} min") : string.Create(CultureInfo.InvariantCulture, $"{span.TotalSeconds:0.#} s");

    /// <summary>1, 2 or 5 times a power of ten, at least <paramref name="value"/> (and at least 1).</summary>
    internal static double NiceCeiling(double value)
    {
        if (double.IsNaN(value) || value <= 1)
        {
            return 1;
        }

        var power = Math.Pow(10, Math.Floor(Math.Log10(value)));
        foreach (var step in new[] { 1, 2, 5, 10 })
        {
            if (step * power >= value)
            {
                return step * power;
            }
        }

        return 10 * power;
    }

    private static string F(double v) => v.ToString("0.#", CultureInfo.InvariantCulture);

    /// <summary>
    /// The console's one script, served as /admin/console.js (the policy allows scripts from the console's own
    /// origin only, none inline): it replaces the dashboard's charts with /admin/charts every period while the tab
    /// is visible. The page works without it (the charts are then those of the page load).
    /// </summary>
    public const string Script = """
        'use strict';
        (function () {
          var section = document.getElementById('charts');
          if (!section || !window.fetch) {
            return;
          }

          var url = section.getAttribute('data-src');
          var period = Math.max(1000, Number(section.getAttribute('data-refresh')) || 10000);
          var timer = 0;
          var stopped = false;

          function schedule() {
            clearTimeout(timer);
            if (!stopped && document.visibilityState === 'visible') {
              timer = setTimeout(refresh, period);
            }
          }

          function refresh() {
            fetch(url, { credentials: 'same-origin', cache: 'no-store', redirect: 'manual', headers: { 'Accept': 'text/html' } })
              .then(function (response) {
                if (response.ok) {
                  return response.text().then(function (html) { section.innerHTML = html; });
                }

                // Signed out (a redirect to the sign-in page, or refused): stop; the next navigation signs in again.
                if (response.type === 'opaqueredirect' || response.status === 403) {
                  stopped = true;
                }

                return undefined;
              })
              .catch(function () { /* the server is away for a moment: try again next period */ })
              .then(schedule);
          }

          document.addEventListener('visibilitychange', function () {
            clearTimeout(timer);
            if (document.visibilityState === 'visible' && !stopped) {
              refresh();
            }
          });

          schedule();
        })();

        """;
}
