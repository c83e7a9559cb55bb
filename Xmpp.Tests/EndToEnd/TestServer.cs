using NLog;
using NLog.Targets;
using Xmpp.Server.Accounts;
using Xmpp.Server.Config;
using Xmpp.Server.Hosting;

namespace Xmpp.Tests.EndToEnd;

/// <summary>
/// The real server on 127.0.0.1 ephemeral ports with a temporary data directory. Disposal fails the test
/// if the server logged anything at Error level (as MQTTnet's test environment does).
/// </summary>
public sealed class TestServer : IAsyncDisposable
{
    private readonly LogFactory _logs;
    private readonly LogLines _log;

    private TestServer(string dataDir, LogFactory logs, LogLines log, XmppServer server)
    {
        DataDir = dataDir;
        _logs = logs;
        _log = log;
        Server = server;
    }

    public string DataDir { get; }

    public XmppServer Server { get; }

    public int C2sPort => Server.PortOf(ListenerKind.C2s);

    public int DirectTlsPort => Server.PortOf(ListenerKind.C2sDirectTls);

    public static async Task<TestServer> StartAsync(Func<ServerOptions, ServerOptions>? configure = null, params string[] users)
    {
        var dataDir = Path.Combine(Path.GetTempPath(), "xmpp-test-" + Guid.NewGuid().ToString("N"));
        var options = new ServerOptions
        {
            DataDirectory = dataDir,
            Storage = new StorageOptions { File = Path.Combine(dataDir, "xmpp.db") },
            Listeners =
            [
                new ListenerOptions(ListenerKind.C2s, "127.0.0.1", 0),
                new ListenerOptions(ListenerKind.C2sDirectTls, "127.0.0.1", 0),
            ],
            Auth = new AuthOptions { FailureDelay = TimeSpan.Zero },
            Limits = new LimitOptions { CloseTimeout = TimeSpan.FromSeconds(2) },
            Logging = new LoggingOptions { Level = "Off" },
        };
        options = configure?.Invoke(options) ?? options;
        var log = new LogLines { Name = "memory", Layout = "${level}|${logger}: ${message} ${exception:format=tostring}" };
        var logs = Xmpp.Server.Logging.LogSetup.Create(options.Logging, [log]);
        var server = await XmppServer.CreateAsync(options, logs, CancellationToken.None);
        var accounts = new AccountService(options, server.Context.Storage);
        foreach (var u in users)
        {
            var parts = u.Split(':');
            Assert.That(await accounts.AddAsync(parts[0], parts[1], CancellationToken.None), Is.EqualTo(AccountResult.Ok));
        }

        server.Start();
        return new TestServer(dataDir, logs, log, server);
    }

    /// <summary>Creates an account while the server runs.</summary>
    public async Task AddUserAsync(string user, string password)
    {
        var accounts = new AccountService(Server.Options, Server.Context.Storage);
        Assert.That(await accounts.AddAsync(user, password, CancellationToken.None), Is.EqualTo(AccountResult.Ok));
    }

    /// <summary>Everything the server logged, as "Level|Logger: message".</summary>
    public IReadOnlyList<string> Logs => _log.Logs.ToList();

    /// <summary>Waits (at most 30 s) until the server has logged <paramref name="count"/> lines containing <paramref name="text"/>.</summary>
    public Task WaitForLogAsync(string text, int count = 1) =>
        _log.WaitForAsync(l => l.Contains(text, StringComparison.Ordinal), count, TimeSpan.FromSeconds(30));

    /// <summary>What the server logged at Error or Fatal level.</summary>
    public IEnumerable<string> ErrorLogs => _log.Logs.Where(l => l.StartsWith("Error|", StringComparison.Ordinal) || l.StartsWith("Fatal|", StringComparison.Ordinal)).ToList();

    public async ValueTask DisposeAsync()
    {
        await Server.DisposeAsync();
        Assert.That(ErrorLogs, Is.Empty, "the server logged errors");
        _logs.Dispose();
        _log.Dispose();
        try
        {
            Directory.Delete(DataDir, recursive: true);
        }
        catch (IOException)
        {
            // Best effort.
        }
    }
}

/// <summary>
/// The server's log lines in memory, safe to read while the server writes: NLog's MemoryTarget keeps a
/// list that a reader copying it while a connection logs can catch half-grown (seen once in CI).
/// </summary>
internal sealed class LogLines : TargetWithLayout
{
    private readonly System.Collections.Concurrent.ConcurrentQueue<string> _lines = new();

    /// <summary>Completed at the next line written (and replaced).</summary>
    private TaskCompletionSource _written = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public IEnumerable<string> Logs => _lines;

    /// <summary>Waits until <paramref name="count"/> lines match; a <see cref="TimeoutException"/> after <paramref name="timeout"/>.</summary>
    public async Task WaitForAsync(Func<string, bool> predicate, int count, TimeSpan timeout)
    {
        using var deadline = new CancellationTokenSource(timeout);
        while (true)
        {
            // Taken before counting: a line written after the count completes this one.
            var written = Volatile.Read(ref _written);
            if (_lines.Count(predicate) >= count)
            {
                return;
            }

            try
            {
                await written.Task.WaitAsync(deadline.Token);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"fewer than {count} matching log lines after {timeout}");
            }
        }
    }

    protected override void Write(LogEventInfo logEvent)
    {
        _lines.Enqueue(RenderLogEvent(Layout, logEvent));
        Interlocked.Exchange(ref _written, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
    }
}
