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
    private readonly MemoryTarget _errors = new("errors") { Layout = "${logger}: ${message} ${exception:format=tostring}" };
    private readonly LogFactory _logs;

    private TestServer(string dataDir, LogFactory logs, XmppServer server)
    {
        DataDir = dataDir;
        _logs = logs;
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
        var errors = new MemoryTarget("errors") { Layout = "${logger}: ${message} ${exception:format=tostring}" };
        var logs = Xmpp.Server.Logging.LogSetup.Create(options.Logging, [errors]);
        var server = await XmppServer.CreateAsync(options, logs, CancellationToken.None);
        var accounts = new AccountService(options, server.Context.Storage.Users);
        foreach (var u in users)
        {
            var parts = u.Split(':');
            Assert.That(await accounts.AddAsync(parts[0], parts[1], CancellationToken.None), Is.EqualTo(AccountResult.Ok));
        }

        server.Start();
        var ts = new TestServer(dataDir, logs, server);
        ts._errorsTarget = errors;
        return ts;
    }

    private MemoryTarget? _errorsTarget;

    public IEnumerable<string> ErrorLogs => (_errorsTarget?.Logs ?? []).Where(l => l.Contains("Error", StringComparison.Ordinal) || l.Contains("Exception", StringComparison.Ordinal));

    public async ValueTask DisposeAsync()
    {
        await Server.DisposeAsync();
        _logs.Dispose();
        _errors.Dispose();
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
