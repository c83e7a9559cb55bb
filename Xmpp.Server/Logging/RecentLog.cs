using NLog;
using NLog.Targets;

namespace Xmpp.Server.Logging;

/// <summary>One line of <see cref="RecentLog"/>: when, how bad, which logger, and the rendered message.</summary>
public sealed record RecentLogEntry(DateTimeOffset Time, string Level, string Logger, string Message);

/// <summary>
/// The last lines at Warn and above, in memory (a bounded ring): what the console's Server page shows. Added to
/// every server's log configuration by <see cref="LogSetup.Create"/>, with a rule of its own that a reload's new log
/// level leaves alone; Debug and Info never reach it (message bodies are only ever logged at Debug and below, and
/// passwords never). Each line costs one rendered message; the ring holds at most <see cref="Capacity"/>.
/// </summary>
public sealed class RecentLog : Target
{
    public const string TargetName = "recent";

    /// <summary>Lines kept.</summary>
    public const int Capacity = 200;

    private readonly Lock _lock = new();
    private readonly RecentLogEntry[] _ring = new RecentLogEntry[Capacity];
    private int _next;
    private int _count;

    public RecentLog() => Name = TargetName;

    /// <summary>The ring of a server's log configuration, or null when it has none (a factory not made by <see cref="LogSetup"/>).</summary>
    public static RecentLog? Of(LogFactory logs) => logs.Configuration?.FindTargetByName<RecentLog>(TargetName);

    /// <summary>The lines kept, newest first.</summary>
    public IReadOnlyList<RecentLogEntry> Entries()
    {
        lock (_lock)
        {
            var entries = new RecentLogEntry[_count];
            for (var i = 0; i < _count; i++)
            {
                entries[i] = _ring[(_next - 1 - i + Capacity) % Capacity];
            }

            return entries;
        }
    }

    protected override void Write(LogEventInfo logEvent)
    {
        if (logEvent.Level < LogLevel.Warn)
        {
            return;
        }

        var message = logEvent.FormattedMessage;
        if (logEvent.Exception is { } ex)
        {
            // The exception's kind and message, not its stack.
            message += " (" + ex.GetType().Name + ": " + ex.Message + ")";
        }

        var entry = new RecentLogEntry(new DateTimeOffset(logEvent.TimeStamp.ToUniversalTime(), TimeSpan.Zero), logEvent.Level.Name, logEvent.LoggerName ?? string.Empty, message);
        lock (_lock)
        {
            _ring[_next] = entry;
            _next = (_next + 1) % Capacity;
            _count = Math.Min(_count + 1, Capacity);
        }
    }
}
