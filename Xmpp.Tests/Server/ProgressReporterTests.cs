using Xmpp.Server.Cli;

namespace Xmpp.Tests.Server;

/// <summary>
/// The progress line of long commands (import, export): on a terminal one line redrawn in place at most
/// four times a second, with the count, the rate and the time left, cleared at the end; not on a terminal,
/// nothing at all. Timed by a clock the test moves.
/// </summary>
public sealed class ProgressReporterTests
{
    private static readonly TimeSpan Ms100 = TimeSpan.FromMilliseconds(100);

    [Test]
    public void On_a_terminal_it_shows_the_count_of_the_total_the_rate_and_the_time_left()
    {
        var (output, clock, progress) = Terminal();
        progress.Report(new WorkProgress("exporting", "accounts", 5, 100_000));
        clock.Advance(TimeSpan.FromSeconds(10));
        progress.Report(new WorkProgress("exporting", "accounts", 12_345, 100_000));

        // (12,345 - 5) in 10 s: 1,234 a second; 87,655 left take 71.03 s, shown rounded up.
        Assert.That(output.ToString(), Is.EqualTo("\rexporting: 12,345 of 100,000 accounts, 1,234/s, 1:12 left"));
    }

    [Test]
    public void Without_a_total_the_time_left_comes_from_the_bytes_read()
    {
        var (output, clock, progress) = Terminal();
        progress.Report(new WorkProgress("importing", "accounts", 0, null, 0, 2_000_000));
        clock.Advance(TimeSpan.FromSeconds(10));
        progress.Report(new WorkProgress("importing", "accounts", 500, null, 500_000, 2_000_000));

        // A quarter read in 10 s: 30 s for the other three.
        Assert.That(output.ToString(), Is.EqualTo("\rimporting: 500 accounts (25% of 2 MB), 50/s, 0:30 left"));
    }

    [Test]
    public void Without_a_total_or_bytes_there_is_no_time_left_and_slow_rates_have_a_decimal()
    {
        var (output, clock, progress) = Terminal();
        progress.Report(new WorkProgress("working", "items", 0));
        clock.Advance(TimeSpan.FromSeconds(10));
        progress.Report(new WorkProgress("working", "items", 42));
        Assert.That(output.ToString(), Is.EqualTo("\rworking: 42 items, 4.2/s"));
    }

    [Test]
    public void Hours_are_shown_when_there_are_hours_left()
    {
        var (output, clock, progress) = Terminal();
        progress.Report(new WorkProgress("exporting", "accounts", 0, 1_000_000));
        clock.Advance(TimeSpan.FromSeconds(100));
        progress.Report(new WorkProgress("exporting", "accounts", 20_000, 1_000_000));

        // 200 a second, 980,000 left: 4,900 s.
        Assert.That(output.ToString(), Is.EqualTo("\rexporting: 20,000 of 1,000,000 accounts, 200/s, 1:21:40 left"));
    }

    [Test]
    public void Redraws_at_most_every_250_ms_and_blanks_what_is_left_of_a_longer_line()
    {
        var (output, clock, progress) = Terminal();
        progress.Report(new WorkProgress("exporting", "accounts", 0, 10_000));

        // 3 s of reports every millisecond: 3,000 reports, a redraw every 250 ms at most.
        for (var ms = 1; ms <= 3000; ms++)
        {
            clock.Advance(TimeSpan.FromMilliseconds(1));
            progress.Report(new WorkProgress("exporting", "accounts", ms, 10_000));
        }

        var lines = output.ToString().Split('\r', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(lines, Has.Length.EqualTo(12), "one line per 250 ms");
        Assert.That(lines[0], Is.EqualTo("exporting: 250 of 10,000 accounts, 1,000/s, 0:10 left"));
        Assert.That(lines[^1], Is.EqualTo("exporting: 3,000 of 10,000 accounts, 1,000/s, 0:07 left"));

        // A shorter line than the one shown: spaces over the rest of it.
        output.GetStringBuilder().Clear();
        progress.Report(new WorkProgress("exporting", "x", 0));
        clock.Advance(TimeSpan.FromSeconds(1));
        progress.Report(new WorkProgress("exporting", "x", 1));
        const string Short = "exporting: 1 x, 1/s";
        Assert.That(output.ToString(), Is.EqualTo("\r" + Short + new string(' ', lines[^1].Length - Short.Length)));
    }

    [Test]
    public void Finish_clears_the_line_so_the_summary_starts_on_a_clean_one()
    {
        var (output, clock, progress) = Terminal();
        progress.Report(new WorkProgress("importing", "accounts", 0));
        clock.Advance(TimeSpan.FromSeconds(1));
        progress.Report(new WorkProgress("importing", "accounts", 10));
        const string Line = "importing: 10 accounts, 10/s";
        Assert.That(output.ToString(), Is.EqualTo("\r" + Line));

        progress.Finish();
        progress.Finish();
        Assert.That(output.ToString(), Is.EqualTo("\r" + Line + "\r" + new string(' ', Line.Length) + "\r"), "blanked once, the cursor back at the start");
    }

    [Test]
    public void A_step_done_within_the_interval_shows_nothing()
    {
        var (output, clock, progress) = Terminal();
        for (var i = 1; i <= 1000; i++)
        {
            progress.Report(new WorkProgress("importing", "accounts", i));
        }

        clock.Advance(TimeSpan.FromMilliseconds(249));
        progress.Report(new WorkProgress("importing", "accounts", 1001));
        progress.Finish();
        Assert.That(output.ToString(), Is.Empty);
    }

    [Test]
    public void A_new_step_has_its_own_rate_and_time_left()
    {
        var (output, clock, progress) = Terminal();
        progress.Report(new WorkProgress("scanning the folder", "files", 1, 1_000));
        clock.Advance(TimeSpan.FromSeconds(1));
        progress.Report(new WorkProgress("scanning the folder", "files", 1_000, 1_000));
        output.GetStringBuilder().Clear();

        // The import starts at 1 s: its rate counts from there, not from the scan's start.
        progress.Report(new WorkProgress("importing", "accounts", 1, null, 100, 1_000_000));
        clock.Advance(TimeSpan.FromSeconds(2));
        progress.Report(new WorkProgress("importing", "accounts", 201, null, 200_100, 1_000_000));
        Assert.That(output.ToString().TrimEnd(), Is.EqualTo("\rimporting: 201 accounts (20% of 1 MB), 100/s, 0:08 left"));
    }

    [Test]
    public void Not_on_a_terminal_it_writes_nothing_at_all()
    {
        var output = new StringWriter();
        var clock = new ManualClock();
        var progress = new ProgressReporter(output, isTerminal: false, clock);
        for (var i = 0; i < 100; i++)
        {
            clock.Advance(Ms100);
            progress.Report(new WorkProgress("importing", "accounts", i, 100, i, 100));
        }

        progress.Finish();
        Assert.That(output.ToString(), Is.Empty);
    }

    private static (StringWriter Output, ManualClock Clock, ProgressReporter Progress) Terminal()
    {
        var output = new StringWriter();
        var clock = new ManualClock();
        return (output, clock, new ProgressReporter(output, isTerminal: true, clock));
    }
}

/// <summary>A clock for tests: it moves when told to, or by <see cref="Tick"/> at every reading.</summary>
internal sealed class ManualClock : TimeProvider
{
    private long _ticks = TimeSpan.TicksPerDay;

    /// <summary>How far the clock moves at every reading (nothing by default).</summary>
    public TimeSpan Tick { get; init; }

    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    public override long GetTimestamp() => Interlocked.Add(ref _ticks, Tick.Ticks);

    public void Advance(TimeSpan by) => Interlocked.Add(ref _ticks, by.Ticks);
}
