using Microsoft.Extensions.Logging;
using NLog;

namespace Xmpp.Server.Cluster.Orleans;

/// <summary>Orleans logs through Microsoft.Extensions.Logging; this sends it to the server's NLog, as "Orleans.CATEGORY".</summary>
internal sealed class OrleansLogging(LogFactory logs) : ILoggerProvider
{
    public Microsoft.Extensions.Logging.ILogger CreateLogger(string categoryName) => new Bridge(logs.GetLogger("Orleans." + categoryName));

    public void Dispose()
    {
    }

    private sealed class Bridge(Logger log) : Microsoft.Extensions.Logging.ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(Microsoft.Extensions.Logging.LogLevel logLevel) => log.IsEnabled(Map(logLevel));

        public void Log<TState>(Microsoft.Extensions.Logging.LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            var level = Map(logLevel);
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
