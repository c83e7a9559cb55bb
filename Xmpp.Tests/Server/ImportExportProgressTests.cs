using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;
using Xmpp.Server.Accounts;
using Xmpp.Server.Cli;
using Xmpp.Server.Config;
using Xmpp.Server.Hosting;

namespace Xmpp.Tests.Server;

/// <summary>
/// import and export with a few thousand accounts: what they report as they go, the progress line on a
/// terminal (a pseudo-terminal from util-linux's script for the real program), and nothing of it when
/// standard error is redirected, the summary unchanged either way.
/// </summary>
public sealed class ImportExportProgressTests
{
    private const int Accounts = 3000;

    private string _dir = string.Empty;
    private string _config = string.Empty;

    [SetUp]
    public async Task SetUp()
    {
        _dir = Directory.CreateTempSubdirectory("xmpp-progress-").FullName;
        _config = Path.Combine(_dir, "server.config.xml");
        await File.WriteAllTextAsync(_config, "<xmppserver><host name='localhost'/><data-dir path='data'/></xmppserver>");
    }

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    [Test]
    public async Task Importing_a_folder_reports_the_files_scanned_then_the_accounts_and_bytes_read()
    {
        var folder = Path.Combine(_dir, "in");
        Directory.CreateDirectory(folder);

        // Prosody's layout (a file per user) next to ejabberd's (a main file including one file per host).
        await WriteDumpAsync(Path.Combine(folder, "a@localhost.xml"), 1, "a");
        await WriteDumpAsync(Path.Combine(folder, "b@localhost.xml"), 1, "b");
        await File.WriteAllTextAsync(Path.Combine(folder, "main.xml"), "<server-data xmlns='urn:xmpp:pie:0' xmlns:xi='http://www.w3.org/2001/XInclude'><xi:include href='main_localhost.xml'/></server-data>");
        await File.WriteAllTextAsync(Path.Combine(folder, "main_localhost.xml"), $"<host xmlns='urn:xmpp:pie:0' jid='localhost'>{Users(3, "c")}</host>");
        var size = Directory.GetFiles(folder).Sum(f => new FileInfo(f).Length);

        var options = new ServerOptions { DataDirectory = Path.Combine(_dir, "data"), Storage = new StorageOptions { File = Path.Combine(_dir, "data", "xmpp.db") } };
        var reports = new Reports();
        await using (var storage = XmppServer.CreateStorage(options))
        {
            await storage.MigrateAsync(CancellationToken.None);
            var summary = await new Xep0227Importer(options, storage) { Progress = reports }.ImportAsync(folder, CancellationToken.None);
            Assert.That((summary.Users, summary.Problems.Count), Is.EqualTo((5, 0)));
        }

        var all = reports.ToList();
        Assert.That(all.TakeWhile(r => r.Activity == "scanning the folder").Select(r => (r.Unit, r.Done, r.Total)), Is.EqualTo(new[] { ("files", 1L, (long?)4), ("files", 2, 4), ("files", 3, 4), ("files", 4, 4) }));
        var imported = all.Skip(4).ToList();
        Assert.That(imported.Select(r => (r.Activity, r.Unit, r.Done, r.Total)), Is.EqualTo(Enumerable.Range(1, 5).Select(i => ("importing", "accounts", (long)i, (long?)null))));
        Assert.That(imported.Select(r => r.BytesTotal), Is.All.EqualTo(size), "every file's size, the included one counted once");
        Assert.That(imported.Select(r => r.BytesDone), Is.Ordered.And.All.InRange(1L, size));
        Assert.That(imported[^1].BytesDone, Is.EqualTo(size));
    }

    [Test]
    public async Task Redirected_the_commands_write_no_progress_and_the_same_summary()
    {
        var dump = Path.Combine(_dir, "dump.xml");
        await WriteDumpAsync(dump, Accounts, "user");

        var (code, stdout, stderr) = await RunAsync(["import", dump, "--config", _config]);
        Assert.That((code, stderr), Is.EqualTo((CommandLine.Ok, string.Empty)));
        Assert.That(stdout, Is.EqualTo(ImportLine(Accounts, 0)));

        var export = Path.Combine(_dir, "export.xml");
        (code, stdout, stderr) = await RunAsync(["export", export, "--config", _config]);
        Assert.That((code, stderr), Is.EqualTo((CommandLine.Ok, string.Empty)));
        Assert.That(stdout, Is.EqualTo(ExportLine(export)));
    }

    [Test]
    public async Task On_a_terminal_stderr_has_the_progress_line_cleared_at_the_end_and_stdout_the_same_summary()
    {
        var dump = Path.Combine(_dir, "dump.xml");
        await WriteDumpAsync(dump, Accounts, "user");

        // A clock that moves 10 ms at every reading: a redraw every 25 accounts or so, however fast the machine.
        var (code, stdout, stderr) = await RunAsync(["import", dump, "--config", _config], new ManualClock { Tick = TimeSpan.FromMilliseconds(10) });
        Assert.That((code, stdout), Is.EqualTo((CommandLine.Ok, ImportLine(Accounts, 0))));
        Assert.That(stderr, Does.StartWith("\rimporting: ").And.Match(@"\rimporting: [0-9,]+ accounts \([0-9]+% of [0-9.]+ [kM]B\), [0-9,.]+/s, [0-9]+:[0-9]{2} left"));
        AssertCleared(stderr);

        var export = Path.Combine(_dir, "export.xml");
        (code, stdout, stderr) = await RunAsync(["export", export, "--config", _config], new ManualClock { Tick = TimeSpan.FromMilliseconds(10) });
        Assert.That((code, stdout), Is.EqualTo((CommandLine.Ok, ExportLine(export))));
        Assert.That(stderr, Does.Match(@"\rexporting: [0-9,]+ of 3,000 accounts, [0-9,.]+/s, [0-9]+:[0-9]{2} left"));
        AssertCleared(stderr);
    }

    [Test]
    public async Task The_program_with_stderr_redirected_writes_no_progress()
    {
        var dump = Path.Combine(_dir, "dump.xml");
        await WriteDumpAsync(dump, Accounts, "user");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false, WorkingDirectory = _dir };
        foreach (var a in new[] { ProgramDll(), "import", dump, "--config", _config })
        {
            psi.ArgumentList.Add(a);
        }

        var (code, stdout, stderr) = await RunProcessAsync(psi);
        Assert.That((code, stderr), Is.EqualTo((CommandLine.Ok, string.Empty)));
        Assert.That(stdout, Is.EqualTo(ImportLine(Accounts, 0)));
    }

    [Test]
    public async Task The_program_on_a_pseudo_terminal_shows_the_progress_line()
    {
        var script = new[] { "/usr/bin/script", "/bin/script" }.FirstOrDefault(File.Exists);
        Assert.That(script, Is.Not.Null, "util-linux's script (Debian: bsdutils, an essential package) is needed to run the program on a pseudo-terminal");

        // More accounts than elsewhere: the import must last longer than the first redraw (250 ms) on a fast machine too.
        const int Many = 10_000;
        var dump = Path.Combine(_dir, "dump.xml");
        await WriteDumpAsync(dump, Many, "user");
        var command = string.Join(' ', new[] { "dotnet", ProgramDll(), "import", dump, "--config", _config }.Select(a => "'" + a.Replace("'", "'\\''", StringComparison.Ordinal) + "'"));
        var psi = new ProcessStartInfo(script!) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false, WorkingDirectory = _dir };
        foreach (var a in new[] { "-qec", command, "/dev/null" })
        {
            psi.ArgumentList.Add(a);
        }

        var (code, terminal, _) = await RunProcessAsync(psi);
        Assert.That(code, Is.EqualTo(CommandLine.Ok), terminal);
        Assert.That(terminal, Does.Match(@"\rimporting: [0-9,]+ accounts \([0-9]+% of [0-9.]+ MB\), [0-9,.]+/s, [0-9]+:[0-9]{2} left"));

        // The line blanked, back at its start, then the summary (the terminal turns \n into \r\n).
        Assert.That(terminal, Does.Match(@"\r +\r" + Regex.Escape(ImportLine(Many, 0).TrimEnd())));
    }

    private static void AssertCleared(string stderr)
    {
        var last = stderr.Split('\r', StringSplitOptions.RemoveEmptyEntries)[^2].TrimEnd();
        Assert.That(stderr, Does.EndWith("\r" + new string(' ', last.Length) + "\r"), "the last line blanked");
        Assert.That(stderr, Does.Not.Contain("\n"));
    }

    private static string ImportLine(int created, int updated) =>
        $"imported {created} new and {updated} existing accounts, 0 roster items, 0 vCards, 0 private XML documents, 0 offline messages, 0 PEP items, 0 archived messages" + Environment.NewLine;

    private static string ExportLine(string file) =>
        $"exported {Accounts} accounts, 0 roster items, 0 offline messages, 0 archived messages to {file}" + Environment.NewLine;

    private static string ProgramDll() => Path.Combine(TestContext.CurrentContext.TestDirectory, "xmppserver.dll");

    private static async Task<(int Code, string Out, string Error)> RunAsync(string[] args, TimeProvider? terminalClock = null)
    {
        using var input = new StringReader(string.Empty);
        await using var output = new StringWriter();
        await using var error = new StringWriter();
        var code = await CommandLine.RunAsync(args, input, output, error, stderrIsTerminal: terminalClock is not null, terminalClock);
        return (code, output.ToString(), error.ToString());
    }

    private static async Task<(int Code, string Out, string Error)> RunProcessAsync(ProcessStartInfo psi)
    {
        using var process = Process.Start(psi)!;
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        try
        {
            var stdout = process.StandardOutput.ReadToEndAsync(timeout.Token);
            var stderr = process.StandardError.ReadToEndAsync(timeout.Token);
            await process.WaitForExitAsync(timeout.Token);
            return (process.ExitCode, await stdout, await stderr);
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }
        }
    }

    /// <summary>A XEP-0227 file of <paramref name="count"/> accounts of localhost (SCRAM-SHA-256 keys: no PBKDF2 to run).</summary>
    private static Task WriteDumpAsync(string file, int count, string prefix) =>
        File.WriteAllTextAsync(file, $"<?xml version='1.0' encoding='UTF-8'?>\n<server-data xmlns='urn:xmpp:pie:0'><host jid='localhost'>\n{Users(count, prefix)}</host></server-data>\n");

    private static string Users(int count, string prefix)
    {
        var key = Convert.ToBase64String(new byte[32]);
        var salt = Convert.ToBase64String(Encoding.ASCII.GetBytes("0123456789abcdef"));
        var users = new StringBuilder();
        for (var i = 0; i < count; i++)
        {
            users.Append(
                $"<user name='{prefix}{i}'><scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='SCRAM-SHA-256'><iter-count>4096</iter-count>" +
                $"<salt>{salt}</salt><server-key>{key}</server-key><stored-key>{key}</stored-key></scram-credentials></user>\n");
        }

        return users.ToString();
    }

    /// <summary>The reports, in order (they come from the importing threads).</summary>
    private sealed class Reports : IProgress<WorkProgress>
    {
        private readonly List<WorkProgress> _reports = [];

        public void Report(WorkProgress value)
        {
            lock (_reports)
            {
                _reports.Add(value);
            }
        }

        public List<WorkProgress> ToList()
        {
            lock (_reports)
            {
                return [.. _reports];
            }
        }
    }
}
