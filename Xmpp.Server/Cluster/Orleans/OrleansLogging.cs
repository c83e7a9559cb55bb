using Microsoft.Extensions.Logging;
using NLog;

namespace Xmpp.Server.Cluster.Orleans;

/// <summary>
/// Orleans logs through Microsoft.Extensions.Logging; this sends it to the server's NLog, as "Orleans.CATEGORY".
/// While this node is leaving (a drain, a shutdown), its errors are warnings: messages to nodes that are leaving
/// too (the whole cluster stopping) fail then, and nothing is wrong.
/// </summary>
internal sealed class OrleansLogging(LogFactory logs, Func<bool> leaving) : ILoggerProvider
{
    public Microsoft.Extensions.Logging.ILogger CreateLogger(string categoryName) => new Bridge(logs.GetLogger("Orleans." + categoryName), leaving);

    public void Dispose()
    {
    }

    private sealed class Bridge(Logger log, Func<bool> leaving) : Microsoft.Extensions.Logging.ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(Microsoft.Extensions.Logging.LogLevel logLevel) => log.IsEnabled(Map(logLevel));

        public void Log<TState>(Microsoft.Extensions.Logging.LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            var level = Map(logLevel);
            if (level == NLog.LogLevel.Error && leaving())
            {
                level = NLog.LogLevel.Warn;
            }

            if (log.IsEnabled(level))
            {
                log.Log(LogEventInfo.Create(level, log.Name, exception, System.Globalization.CultureInfo.InvariantCulture, formatter(state, exception)));
            }
        }

        private static NLog.LogLevel Map(Microsoft.Extensions.Logging.LogLevel level) => level switch
        {
            Microsoft.Extensions.Logging.LogLevel.Trace => NLog.LogLevel.Trace,
            Microsoft.Extensions.Logging.LogLevel.Debug => NLog.LogLevel.Debug,
            Microsoft.Extensions.Logging.LogLevel.Information => NLog.LogLevel.Info,
            Microsoft.Extensions.Logging.LogLevel.Warning => NLog.LogLevel.Warn,
            Microsoft.Extensions.Logging.LogLevel.Error => NLog.LogLevel.Error,
            Microsoft.Extensions.Logging.LogLevel.Critical => NLog.LogLevel.Fatal,
            _ => NLog.LogLevel.Off,
        };
    }
}
