using System.Net;
using Xmpp.Server.Accounts;
using Xmpp.Server.Config;
using Xmpp.Server.Hosting;
using Xmpp.Server.Storage;
using Xmpp.Tests.EndToEnd;
using Xmpp.Tests.Storage;

namespace Xmpp.Tests.Cluster;

/// <summary>
/// A cluster for a test: a throwaway PostgreSQL database and real xmppserver processes, node N on 127.0.0.N
/// (Linux routes all of 127/8 to the loopback interface), each with its own client port and silo port.
/// </summary>
internal sealed class ClusterNodes : IAsyncDisposable
{
    private readonly PostgresCluster _postgres;
    private readonly List<ServerProcess?> _processes = [];

    private ClusterNodes(PostgresCluster postgres, string connection, string dir)
    {
        _postgres = postgres;
        Connection = connection;
        Directory = dir;
    }

    public string Connection { get; }

    public string Directory { get; }

    /// <summary>Per node (0-based): its address, client port and silo port.</summary>
    public List<(IPAddress Address, int ClientPort, int SiloPort)> Nodes { get; } = [];

    public static Task<ClusterNodes> CreateAsync(int count, params string[] users) => CreateAsync(count, users, []);

    /// <summary>As <see cref="CreateAsync(int, string[])"/>, with each pair of <paramref name="contacts"/> subscribed to each other's presence.</summary>
    public static async Task<ClusterNodes> CreateAsync(int count, string[] users, (string A, string B)[] contacts)
    {
        var postgres = await PostgresCluster.StartAsync();
        var connection = await postgres.CreateDatabaseAsync();
        var dir = Path.Combine(Path.GetTempPath(), "xmpp-cluster-" + Guid.NewGuid().ToString("N")[..12]);
        System.IO.Directory.CreateDirectory(dir);
        var nodes = new ClusterNodes(postgres, connection, dir);
        var options = new ServerOptions { DataDirectory = dir, Storage = new StorageOptions { Provider = "postgresql", ConnectionString = connection } };
        await using (var storage = XmppServer.CreateStorage(options))
        {
            await storage.MigrateAsync(CancellationToken.None);
            var accounts = new AccountService(options, storage);
            foreach (var u in users)
            {
                Assert.That(await accounts.AddAsync(u + "@localhost", "pw-" + u, CancellationToken.None), Is.EqualTo(AccountResult.Ok));
            }

            foreach (var (a, b) in contacts)
            {
                await storage.Roster.SaveAsync("localhost", a, new RosterItem(b + "@localhost", null, Subscription.Both, false, false, false, []), 1, CancellationToken.None);
                await storage.Roster.SaveAsync("localhost", b, new RosterItem(a + "@localhost", null, Subscription.Both, false, false, false, []), 1, CancellationToken.None);
            }
        }

        var ports = Ports.Free(2 * count);
        for (var i = 0; i < count; i++)
        {
            nodes.Nodes.Add((IPAddress.Parse($"127.0.0.{i + 1}"), ports[2 * i], ports[(2 * i) + 1]));
            nodes._processes.Add(null);
            nodes._starts.Add(0);
        }

        return nodes;
    }

    /// <summary>More configuration for every node started from now on (inside &lt;xmppserver&gt;).</summary>
    public string ExtraConfig { get; set; } = string.Empty;

    /// <summary>More configuration for one node (given its index, address and a free port), after <see cref="ExtraConfig"/>.</summary>
    public Func<int, IPAddress, string>? NodeConfig { get; set; }

    /// <summary>The log of node <paramref name="node"/>'s current (or last) process; a restarted node logs to n1-2.log, n1-3.log...</summary>
    public string Log(int node) => Path.Combine(Directory, _starts[node] > 1 ? $"n{node + 1}-{_starts[node]}.log" : $"n{node + 1}.log");

    private readonly List<int> _starts = [];

    /// <summary>Starts node <paramref name="node"/> (0-based) and waits until it accepts clients.</summary>
    public async Task StartAsync(int node)
    {
        _processes[node]?.Dispose();
        _starts[node]++;
        var (address, clientPort, siloPort) = Nodes[node];
        var data = Path.Combine(Directory, $"n{node + 1}");
        System.IO.Directory.CreateDirectory(data);
        var config = Path.Combine(data, "server.config.xml");
        await File.WriteAllTextAsync(config, $"""
            <xmppserver>
              <host name="localhost"/>
              <listen type="c2s" address="{address}" port="{clientPort}"/>
              <data-dir path="{data}"/>
              <storage type="postgresql" connection="{Connection}"/>
              <cluster id="test" node="n{node + 1}" address="{address}" port="{siloPort}" probe-timeout="1"/>
              <limits stanza-rate="0" connections-per-ip="0"/>
              <logging level="{Environment.GetEnvironmentVariable("XMPP_TEST_NODE_LEVEL") ?? "Info"}" format="text"/>
              {ExtraConfig}
              {NodeConfig?.Invoke(node, address)}
            </xmppserver>
            """);
        _processes[node] = await ServerProcess.StartAsync(config, clientPort, Log(node), address, TimeSpan.FromSeconds(90));
    }

    public ServerProcess Process(int node) => _processes[node]!;

    /// <summary>Waits (at most 10 s) until node <paramref name="node"/>'s log has a line containing <paramref name="text"/>.</summary>
    public async Task WaitForLogAsync(int node, string text)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (true)
        {
            using (var reader = new StreamReader(new FileStream(Log(node), FileMode.Open, FileAccess.Read, FileShare.ReadWrite)))
            {
                if ((await reader.ReadToEndAsync()).Contains(text, StringComparison.Ordinal))
                {
                    return;
                }
            }

            Assert.That(DateTime.UtcNow, Is.LessThan(deadline), $"node {node + 1} did not log '{text}'");
            await Task.Delay(50);
        }
    }

    /// <summary>Runs an xmppserver command (check, ...) with node <paramref name="node"/>'s configuration; its exit code and output.</summary>
    public async Task<(int ExitCode, string Output)> CommandAsync(int node, params string[] args)
    {
        var dll = Path.Combine(TestContext.CurrentContext.TestDirectory, "xmppserver.dll");
        var psi = new System.Diagnostics.ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { dll }.Concat(args).Concat(["--config", Path.Combine(Directory, $"n{node + 1}", "server.config.xml")]))
        {
            psi.ArgumentList.Add(a);
        }

        using var process = System.Diagnostics.Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        return (process.ExitCode, await stdout + await stderr);
    }

    /// <summary>A client connected to node <paramref name="node"/>, logged in as <paramref name="user"/> with its password, bound to <paramref name="resource"/>.</summary>
    public async Task<RawXmppClient> LoginAsync(int node, string user, string resource = "test")
    {
        var client = await RawXmppClient.ConnectAsync(Nodes[node].ClientPort, address: Nodes[node].Address.ToString());
        await client.LoginAsync(user, "pw-" + user, resource: resource);
        return client;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var p in _processes)
        {
            p?.Dispose();
        }

        // The nodes' logs go to the test's output when it failed. An exception propagating out of the test has not
        // failed it yet here: they are kept for ClusterLogsAttribute, which shows them once the test's outcome is
        // known. XMPP_TEST_NODE_LOGS=1 shows them always, =all shows them whole.
        if (TestContext.CurrentContext.Result.Outcome.Status == NUnit.Framework.Interfaces.TestStatus.Failed || Environment.GetEnvironmentVariable("XMPP_TEST_NODE_LOGS") is "1" or "all")
        {
            ClusterLogsAttribute.Write(Directory);
        }
        else
        {
            ClusterLogsAttribute.Keep(Directory);
        }

        await _postgres.DisposeAsync();
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
            // A log still open: left for the temp cleaner.
        }
    }
}
