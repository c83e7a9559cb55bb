using System.Globalization;
using System.Text;

namespace Xmpp.Server.Cli;

/// <summary>
/// How far a long operation has got: <paramref name="Done"/> <paramref name="Unit"/> (of <paramref name="Total"/>
/// when known up front); when the total is not known, the bytes read of its input, of how many, give the
/// time left. A new <paramref name="Activity"/> or <paramref name="Unit"/> starts a new step, with its own
/// rate and time left.
/// </summary>
public readonly record struct WorkProgress(string Activity, string Unit, long Done, long? Total = null, long BytesDone = 0, long BytesTotal = 0);

/// <summary>
/// Shows a long command's progress on a terminal: one line on standard error, redrawn in place (carriage
/// return, the rest of the old line blanked with spaces) at most every <see cref="Interval"/>, and cleared by
/// <see cref="Finish"/>, so that what the command prints next starts on a clean line. Not on a terminal
/// (redirected to a file or a pipe) it writes nothing at all. A report costs a clock read
/// (<see cref="TimeProvider.GetTimestamp"/>) and an uncontended lock; reports may come from several threads.
/// </summary>
public sealed class ProgressReporter(TextWriter output, bool isTerminal, TimeProvider time) : IProgress<WorkProgress>
{
    /// <summary>The shortest time between two redraws; also how long a step runs before its first line shows.</summary>
    public static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(250);

    private readonly Lock _gate = new();
    private string? _activity;
    private string? _unit;
    private long _stepStart;
    private long _stepDone;
    private long _stepBytes;
    private long _lastDraw;
    private int _shown;

    public void Report(WorkProgress value)
    {
        if (!isTerminal)
        {
            return;
        }

        var now = time.GetTimestamp();
        lock (_gate)
        {
            if (!string.Equals(value.Activity, _activity, StringComparison.Ordinal) || !string.Equals(value.Unit, _unit, StringComparison.Ordinal))
            {
                // A new step: the rate counts from here, and a step that ends within the interval shows nothing.
                (_activity, _unit, _stepStart, _lastDraw, _stepDone, _stepBytes) = (value.Activity, value.Unit, now, now, value.Done, value.BytesDone);
                return;
            }

            if (time.GetElapsedTime(_lastDraw, now) < Interval)
            {
                return;
            }

            _lastDraw = now;
            Draw(Line(value, time.GetElapsedTime(_stepStart, now)));
        }
    }

    /// <summary>Clears the line, if one is shown; the next report starts a new step.</summary>
    public void Finish()
    {
        lock (_gate)
        {
            if (_shown > 0)
            {
                output.Write("\r" + new string(' ', _shown) + "\r");
                output.Flush();
                _shown = 0;
            }

            _activity = _unit = null;
        }
    }

    /// <summary>
    /// The line for a report, <paramref name="elapsed"/> into its step: "importing: 12,345 of 100,000 accounts,
    /// 1,234/s, 1:12 left", or with bytes instead of a total "importing: 12,345 accounts (42% of 1.2 GB),
    /// 1,234/s, 1:12 left". The rate and the time left are the averages of the step so far.
    /// </summary>
    private string Line(WorkProgress p, TimeSpan elapsed)
    {
        var line = new StringBuilder(80);
        line.Append(CultureInfo.InvariantCulture, $"{p.Activity}: {p.Done:N0}");
        if (p.Total is { } total)
        {
            line.Append(CultureInfo.InvariantCulture, $" of {total:N0}");
        }

        line.Append(' ').Append(p.Unit);
        if (p.Total is null && p.BytesTotal > 0)
        {
            var percent = Math.Clamp(p.BytesDone * 100 / p.BytesTotal, 0, 100);
            line.Append(CultureInfo.InvariantCulture, $" ({percent}% of {Size(p.BytesTotal)})");
        }

        var seconds = elapsed.TotalSeconds;
        var rate = seconds > 0 ? (p.Done - _stepDone) / seconds : 0;
        if (rate > 0)
        {
            // Whole numbers from 10 a second, a decimal below (PBKDF2 at a high iteration count).
            line.Append(CultureInfo.InvariantCulture, $", {rate.ToString(rate >= 10 ? "N0" : "0.#", CultureInfo.InvariantCulture)}/s");
        }

        TimeSpan? left = null;
        if (p.Total is { } items && rate > 0)
        {
            left = TimeSpan.FromSeconds(Math.Max(0, items - p.Done) / rate);
        }
        else if (p.Total is null && p.BytesTotal > 0 && p.BytesDone > _stepBytes && seconds > 0)
        {
            left = TimeSpan.FromSeconds(Math.Max(0, p.BytesTotal - p.BytesDone) / ((p.BytesDone - _stepBytes) / seconds));
        }

        if (left is { } l && l < TimeSpan.FromDays(100))
        {
            line.Append(", ").Append(Duration(l)).Append(" left");
        }

        return line.ToString();
    }

    private void Draw(string line)
    {
        // Spaces over what is left of a longer previous line, rather than an escape sequence: any terminal.
        output.Write("\r" + line + new string(' ', Math.Max(0, _shown - line.Length)));
        output.Flush();
        _shown = line.Length;
    }

    /// <summary>1:05, 12:34, 1:02:03 (rounded up to the second: never "0:00 left" while work is left).</summary>
    private static string Duration(TimeSpan t)
    {
        var s = (long)Math.Ceiling(t.TotalSeconds);
        return s >= 3600
            ? string.Create(CultureInfo.InvariantCulture, $"{s / 3600}:{s / 60 % 60:00}:{s % 60:00}")
            : string.Create(CultureInfo.InvariantCulture, $"{s / 60}:{s % 60:00}");
    }

    /// <summary>Bytes in decimal units: 900 B, 12 kB, 1.2 MB, 3.4 GB.</summary>
    private static string Size(long bytes) => bytes switch
    {
        < 1_000 => string.Create(CultureInfo.InvariantCulture, $"{bytes} B"),
        < 1_000_000 => string.Create(CultureInfo.InvariantCulture, $"{bytes / 1e3:0.#} kB"),
        < 1_000_000_000 => string.Create(CultureInfo.InvariantCulture, $"{bytes / 1e6:0.#} MB"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{bytes / 1e9:0.#} GB"),
    };
}
