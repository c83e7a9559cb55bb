using Xmpp.Server.Accounts;
using Xmpp.Server.Config;
using Xmpp.Server.Hosting;

namespace Xmpp.Tests.EndToEnd;

/// <summary>
/// A server without an HTTPS listener and without the metrics module never loads ASP.NET Core (its
/// assemblies cost memory and start-up time that such a server has no use for). The server runs as a
/// process of its own (the tests' process has loaded ASP.NET Core long since), and Linux's
/// /proc/PID/maps lists the assembly files it mapped. The same for Orleans and Npgsql in a single-node
/// server on SQLite.
/// </summary>
[TestFixture]
[CancelAfter(120_000)]
public sealed class AspNetCoreLoadingTests
{
    [Test]
    public async Task A_server_with_neither_https_nor_metrics_never_loads_asp_net_core()
    {
        Assume.That(OperatingSystem.IsLinux(), "reads /proc/PID/maps");
        var mapped = await MappedAfterALoginAsync(metrics: false);
        Assert.That(mapped, Has.Some.Contains("xmppserver.dll"), "the check sees the assemblies the process mapped");
        Assert.That(mapped, Has.None.Contains("Microsoft.AspNetCore"));
    }

    [Test]
    public async Task The_metrics_module_loads_it_for_its_endpoint()
    {
        Assume.That(OperatingSystem.IsLinux(), "reads /proc/PID/maps");
        var mapped = await MappedAfterALoginAsync(metrics: true);
        Assert.That(mapped, Has.Some.Contains("Microsoft.AspNetCore.Server.Kestrel"));
    }

    [Test]
    public async Task A_single_node_server_on_sqlite_never_loads_orleans_or_npgsql()
    {
        // Cluster mode and PostgreSQL are configured or not: without them their libraries stay on disk
        // (README, "Running on a small machine").
        Assume.That(OperatingSystem.IsLinux(), "reads /proc/PID/maps");
        var mapped = await MappedAfterALoginAsync(metrics: true);
        Assert.That(mapped, Has.Some.Contains("Microsoft.Data.Sqlite"), "the check sees the assemblies the process mapped");
        Assert.That(mapped, Has.None.Contains("Orleans"));
        Assert.That(mapped, Has.None.Contains("Npgsql"));
    }

    /// <summary>Starts the server (with or without the metrics module), logs a client in, and lists the files the process has mapped.</summary>
    private static async Task<List<string>> MappedAfterALoginAsync(bool metrics)
    {
        var dir = Path.Combine(Path.GetTempPath(), "xmpp-aspnet-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            var c2s = Ports.Free();
            var metricsPort = Ports.Free();
            var config = Path.Combine(dir, "server.config.xml");
            await File.WriteAllTextAsync(config, $"""
                <xmppserver>
                  <host name="localhost"/>
                  <listen type="c2s" address="127.0.0.1" port="{c2s}"/>
                  <data-dir path="data"/>
                  <modules><disco/><ping/>{(metrics ? $"<metrics port=\"{metricsPort}\"/>" : string.Empty)}</modules>
                </xmppserver>
                """);
            var options = ConfigLoader.Load(config);
            await using (var storage = XmppServer.CreateStorage(options))
            {
                await storage.MigrateAsync(CancellationToken.None);
                Assert.That(await new AccountService(options, storage).AddAsync("alice@localhost", "wonderland", CancellationToken.None), Is.EqualTo(AccountResult.Ok));
            }

            // Ready when the last thing it opens answers: the metrics endpoint, or else the c2s listener.
            using var server = await ServerProcess.StartAsync(config, metrics ? metricsPort : c2s, Path.Combine(dir, "server.log"));
            await using (var alice = await RawXmppClient.ConnectAsync(c2s))
            {
                await alice.LoginAsync("alice", "wonderland");
                await alice.SendAsync("<iq type='get' id='p' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
                await alice.ReadUntilAsync(e => e.Name == "iq" && e.GetAttribute("id") == "p");
            }

            return [.. await File.ReadAllLinesAsync($"/proc/{server.Id}/maps")];
        }
        finally
        {
            try
            {
                Directory.Delete(dir, recursive: true);
            }
            catch (IOException)
            {
                // Best effort.
            }
        }
    }
}
