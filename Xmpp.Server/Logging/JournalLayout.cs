using System.Text;
using NLog;
using NLog.Layouts;

namespace Xmpp.Server.Logging;

/// <summary>
/// Console lines for systemd's journal (the server's output is a journal stream when JOURNAL_STREAM is
/// set): each line starts with its syslog priority, "&lt;3&gt;" for an error and so on (sd-daemon(3)), so
/// that <c>journalctl -p warning</c> and the colours work, and carries no time stamp (the journal adds
/// its own). Every line of a multi-line entry (an exception's stack) gets the priority.
/// </summary>
public sealed class JournalLayout(Layout inner) : Layout
{
    public Layout Inner { get; } = inner;

    /// <summary>syslog(3) priorities: Fatal 2 (crit), Error 3 (err), Warn 4 (warning), Info 6 (info), Debug and Trace 7 (debug).</summary>
    public static char Priority(LogLevel level) =>
        level == LogLevel.Fatal ? '2' : level == LogLevel.Error ? '3' : level == LogLevel.Warn ? '4' : level == LogLevel.Info ? '6' : '7';

    /// <summary>
    /// True when standard output is the journal stream that JOURNAL_STREAM ("DEVICE:INODE") names. As
    /// systemd.exec(5) asks, the inode is compared, so that a program started from a service's shell
    /// with its output redirected elsewhere keeps ordinary lines. Linux's /proc/self/fd/1 names a socket
    /// or pipe as "socket:[INODE]".
    /// </summary>
    public static bool StandardOutputIsJournal(string? journalStream, string? stdoutLink)
    {
        if (string.IsNullOrEmpty(journalStream) || stdoutLink is null || journalStream.IndexOf(':', StringComparison.Ordinal) is var colon && colon < 0)
        {
            return false;
        }

        var open = stdoutLink.IndexOf('[', StringComparison.Ordinal);
        return open >= 0 && stdoutLink.EndsWith(']') && stdoutLink.AsSpan(open + 1, stdoutLink.Length - open - 2).SequenceEqual(journalStream.AsSpan(colon + 1));
    }

    /// <summary><see cref="StandardOutputIsJournal(string?, string?)"/> for this process.</summary>
    public static bool StandardOutputIsJournal()
    {
        var stream = Environment.GetEnvironmentVariable("JOURNAL_STREAM");
        if (string.IsNullOrEmpty(stream) || !OperatingSystem.IsLinux())
        {
            return false;
        }

        try
        {
            return StandardOutputIsJournal(stream, new FileInfo("/proc/self/fd/1").LinkTarget);
        }
        catch (IOException)
        {
            return false;
        }
        catch (UnauthorizedAccessException)
        {
            return false;
        }
    }

    protected override string GetFormattedMessage(LogEventInfo logEvent)
    {
        var sb = new StringBuilder();
        RenderFormattedMessage(logEvent, sb);
        return sb.ToString();
    }

    protected override void RenderFormattedMessage(LogEventInfo logEvent, StringBuilder target)
    {
        var prefix = "<" + Priority(logEvent.Level) + ">";
        var start = target.Length;
        target.Append(prefix);
        target.Append(Inner.Render(logEvent));
        for (var i = target.Length - 1; i > start; i--)
        {
            if (target[i] == '\n' && i + 1 < target.Length)
            {
                target.Insert(i + 1, prefix);
            }
        }
    }
}
