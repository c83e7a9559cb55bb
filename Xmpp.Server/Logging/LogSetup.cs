using NLog;
using NLog.Config;
using NLog.Layouts;
using NLog.Targets;
using Xmpp.Server.Config;

namespace Xmpp.Server.Logging;

/// <summary>
/// Builds one NLog LogFactory per server instance (no global LogManager), so two servers can run in one
/// test process, each with its own targets. Structured: templates carry named holes, and the connection
/// scope (ConnectionId, Remote, Jid) is pushed with ScopeContext. Every factory also keeps its last lines at
/// Warn and above in memory (<see cref="RecentLog"/>).
/// </summary>
public static class LogSetup
{
    private const string TextLine = "${level:uppercase=true:padding=-5} ${logger:shortName=true} [c${scopeproperty:item=ConnectionId:whenEmpty=-} ${scopeproperty:item=Jid:whenEmpty=-}] ${message}${onexception:inner=${newline}${exception:format=tostring}}";

    /// <param name="journal">The console is a systemd journal stream (JOURNAL_STREAM is set): text lines
    /// carry their syslog priority and no time stamp (<see cref="JournalLayout"/>).</param>
    public static LogFactory Create(LoggingOptions options, IEnumerable<Target>? extraTargets = null, bool journal = false)
    {
        var factory = new LogFactory();
        var config = new LoggingConfiguration(factory);
        var level = LogLevel.FromString(options.Level);
        Layout layout = options.Format == "json"
            ? new JsonLayout
            {
                Attributes =
                {
                    new JsonAttribute("time", "${date:universalTime=true:format=o}"),
                    new JsonAttribute("level", "${level}"),
                    new JsonAttribute("logger", "${logger:shortName=true}"),
                    new JsonAttribute("message", "${message}"),
                    new JsonAttribute("exception", "${exception:format=tostring}"),
                },
                IncludeEventProperties = true,
                IncludeScopeProperties = true,
            }
            : Layout.FromString("${date:format=yyyy-MM-dd HH\\:mm\\:ss.fff} " + TextLine);

        // The journal stamps each line itself; the file keeps the time stamps.
        var consoleLayout = journal && options.Format != "json" ? new JournalLayout(Layout.FromString(TextLine)) : layout;
        var console = new ConsoleTarget("console") { Layout = consoleLayout, StdErr = false, AutoFlush = true };
        config.AddRule(level, LogLevel.Fatal, console);
        if (!string.IsNullOrEmpty(options.File))
        {
            var file = new FileTarget("file") { FileName = options.File, Layout = layout, KeepFileOpen = true };
            config.AddRule(level, LogLevel.Fatal, file);
        }

        // The last warnings and errors in memory for the console, whatever the level of the output above.
        config.AddRule(LogLevel.Warn, LogLevel.Fatal, new RecentLog());
        foreach (var t in extraTargets ?? [])
        {
            config.AddRule(LogLevel.Trace, LogLevel.Fatal, t);
        }

        factory.Configuration = config;
        return factory;
    }

    /// <summary>Changes the level of the console and file output (a reload); other targets keep theirs.</summary>
    public static void SetLevel(LogFactory factory, string level)
    {
        var min = LogLevel.FromString(level);
        foreach (var rule in factory.Configuration?.LoggingRules ?? [])
        {
            if (rule.Targets.Any(t => t.Name is "console" or "file"))
            {
                rule.SetLoggingLevels(min, LogLevel.Fatal);
            }
        }

        factory.ReconfigExistingLoggers();
    }
}
