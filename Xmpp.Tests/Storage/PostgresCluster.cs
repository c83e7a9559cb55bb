using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Npgsql;

namespace Xmpp.Tests.Storage;

/// <summary>
/// A throwaway PostgreSQL cluster for the tests: initdb in a temporary folder, started with pg_ctl on a
/// free loopback port (and its socket in that folder), stopped and deleted afterwards. Debian's
/// postgresql package provides the programs. As root (CI), the cluster runs as the postgres user, since
/// PostgreSQL refuses to run as root.
/// When PostgreSQL is not installed the tests are reported as ignored, with the reason, unless
/// XMPP_REQUIRE_POSTGRES=1 (set by .ci/run, which installs it): then they fail.
/// </summary>
public sealed class PostgresCluster : IAsyncDisposable
{
    private readonly string _dir;
    private readonly string _bin;
    private readonly string? _runAs;
    private int _databases;

    private PostgresCluster(string dir, string bin, string? runAs, int port)
    {
        _dir = dir;
        _bin = bin;
        _runAs = runAs;
        Port = port;
    }

    public int Port { get; }

    public static bool Required => Environment.GetEnvironmentVariable("XMPP_REQUIRE_POSTGRES") == "1";

    /// <summary>The folder with initdb and pg_ctl, or null.</summary>
    public static string? FindBin()
    {
        var candidates = new List<string>();
        if (Directory.Exists("/usr/lib/postgresql"))
        {
            candidates.AddRange(Directory.GetDirectories("/usr/lib/postgresql").OrderByDescending(d => d, StringComparer.Ordinal).Select(d => Path.Combine(d, "bin")));
        }

        candidates.AddRange((Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(':', StringSplitOptions.RemoveEmptyEntries));
        return candidates.FirstOrDefault(d => File.Exists(Path.Combine(d, "initdb")) && File.Exists(Path.Combine(d, "pg_ctl")));
    }

    public static async Task<PostgresCluster> StartAsync()
    {
        var bin = FindBin();
        if (bin is null)
        {
            const string why = "PostgreSQL is not installed (Debian: apt-get install postgresql)";
            if (Required)
            {
                Assert.Fail(why + ", and XMPP_REQUIRE_POSTGRES=1 requires these tests");
            }

            Assert.Ignore(why + "; .ci/run installs it and runs these tests");
        }

        var dir = Path.Combine(Path.GetTempPath(), "xmpp-pg-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(dir);
        string? runAs = null;
        if (Environment.UserName == "root")
        {
            runAs = "postgres";
            await RunAsync("chown", ["postgres", dir], null);
        }

        var port = FreePort();
        var cluster = new PostgresCluster(dir, bin!, runAs, port);
        await cluster.PgAsync("initdb", ["-D", Path.Combine(dir, "data"), "-U", "xmpp", "-A", "trust", "-E", "UTF8", "--no-sync", "--locale=C"]);
        await cluster.PgAsync("pg_ctl", ["-D", Path.Combine(dir, "data"), "-l", Path.Combine(dir, "log"), "-w", "-t", "30", "-o",
            $"-p {port} -k {dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200", "start"]);
        return cluster;
    }

    /// <summary>A new, empty database on the cluster; its connection string.</summary>
    public async Task<string> CreateDatabaseAsync()
    {
        var name = "t" + Interlocked.Increment(ref _databases).ToString(System.Globalization.CultureInfo.InvariantCulture) + "_" + Guid.NewGuid().ToString("N")[..8];
        await using (var admin = new NpgsqlConnection(ConnectionString("postgres")))
        {
            await admin.OpenAsync();
            await using var cmd = new NpgsqlCommand($"CREATE DATABASE {name}", admin);
            await cmd.ExecuteNonQueryAsync();
        }

        return ConnectionString(name);
    }

    private string ConnectionString(string database) =>
        new NpgsqlConnectionStringBuilder { Host = "127.0.0.1", Port = Port, Username = "xmpp", Database = database, Pooling = true }.ConnectionString;

    public async ValueTask DisposeAsync()
    {
        NpgsqlConnection.ClearAllPools();
        try
        {
            await PgAsync("pg_ctl", ["-D", Path.Combine(_dir, "data"), "-m", "fast", "-w", "stop"]);
        }
        finally
        {
            try
            {
                Directory.Delete(_dir, recursive: true);
            }
            catch (IOException)
            {
                // Best effort.
            }
        }
    }

    private Task PgAsync(string program, string[] args) =>
        _runAs is null
            ? RunAsync(Path.Combine(_bin, program), args, null)
            : RunAsync("runuser", ["-u", _runAs, "--", Path.Combine(_bin, program), .. args], null);

    private static async Task RunAsync(string program, string[] args, string? cwd)
    {
        var psi = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = cwd ?? Path.GetTempPath() };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        if (process.ExitCode != 0)
        {
            Assert.Fail($"{program} {string.Join(' ', args)} failed ({process.ExitCode}): {await stderr}{await stdout}");
        }
    }

    private static int FreePort()
    {
        using var socket = new TcpListener(IPAddress.Loopback, 0);
        socket.Start();
        return ((IPEndPoint)socket.LocalEndpoint).Port;
    }
}
