using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using NLog;
using NLog.Layouts;
using Xmpp.Server.Hosting;
using Xmpp.Server.Logging;

namespace Xmpp.Tests.EndToEnd;

/// <summary>
/// Running under systemd (deploy/xmppserver.service, Type=notify): the sd_notify(3) messages the service
/// manager waits for, sent to a datagram socket the test binds where systemd would, and the journal's
/// priority prefixes on the output. The server runs as a process of its own, as systemd starts it, and
/// the test sends it the signals systemctl sends.
/// </summary>
[TestFixture]
[CancelAfter(120_000)]
public sealed class SystemdServiceTests
{
    [Test]
    public void Journal_lines_carry_their_syslog_priority_on_every_line_and_no_time_stamp()
    {
        var layout = new JournalLayout(Layout.FromString("${level:uppercase=true} ${message}${onexception:inner=${newline}${exception:format=message}}"));
        var error = LogEventInfo.Create(LogLevel.Error, "Server", new InvalidOperationException("first line\nsecond line"), null, "It broke");
        Assert.That(layout.Render(error), Is.EqualTo("<3>ERROR It broke\n<3>first line\n<3>second line"));
        Assert.That(layout.Render(LogEventInfo.Create(LogLevel.Info, "Server", "Ready")), Is.EqualTo("<6>INFO Ready"));
        Assert.That(layout.Render(LogEventInfo.Create(LogLevel.Warn, "Server", "Careful")), Is.EqualTo("<4>WARN Careful"));
        Assert.That(layout.Render(LogEventInfo.Create(LogLevel.Debug, "Server", "Detail")), Is.EqualTo("<7>DEBUG Detail"));
        Assert.That(layout.Render(LogEventInfo.Create(LogLevel.Fatal, "Server", "Gone")), Is.EqualTo("<2>FATAL Gone"));
    }

    [Test]
    public void The_journal_is_recognised_by_the_inode_of_standard_output()
    {
        Assert.That(JournalLayout.StandardOutputIsJournal("8:4711", "socket:[4711]"), Is.True);
        Assert.That(JournalLayout.StandardOutputIsJournal("8:4711", "socket:[47110]"), Is.False, "another stream");
        Assert.That(JournalLayout.StandardOutputIsJournal("8:4711", "/var/log/x.log"), Is.False, "redirected to a file");
        Assert.That(JournalLayout.StandardOutputIsJournal(null, "socket:[4711]"), Is.False);
        Assert.That(JournalLayout.StandardOutputIsJournal("garbage", "socket:[4711]"), Is.False);
        Assert.That(JournalLayout.StandardOutputIsJournal("8:4711", null), Is.False);
    }

    [Test]
    public async Task The_notifier_sends_datagrams_to_a_path_and_to_the_abstract_namespace()
    {
        var log = new LogFactory().GetLogger("test");
        var dir = Directory.CreateTempSubdirectory("xmpp-notify-").FullName;
        try
        {
            var path = Path.Combine(dir, "notify");
            using var atPath = Bind(path);
            var abstractName = "xmpp-notify-test-" + Guid.NewGuid().ToString("N");
            using var atAbstract = Bind("\0" + abstractName);
            using (var n = new SystemdNotifier(path, log))
            {
                Assert.That(n.Enabled, Is.True);
                await n.ReadyAsync("serving\nlocalhost", CancellationToken.None);
                Assert.That(await ReceiveAsync(atPath), Is.EqualTo("READY=1\nSTATUS=serving localhost"));
            }

            using (var n = new SystemdNotifier("@" + abstractName, log))
            {
                await n.StoppingAsync(CancellationToken.None);
                Assert.That(await ReceiveAsync(atAbstract), Does.StartWith("STOPPING=1\n"));
            }

            using var off = new SystemdNotifier(null, log);
            Assert.That(off.Enabled, Is.False);
            await off.ReadyAsync("nothing listens", CancellationToken.None);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Test]
    public async Task Under_systemd_the_server_says_ready_reloading_and_stopping_and_logs_with_priorities()
    {
        Assume.That(OperatingSystem.IsLinux(), "systemd's notification socket and signals");
        var dir = Directory.CreateTempSubdirectory("xmpp-systemd-").FullName;
        try
        {
            var c2s = Ports.Free();
            var config = Path.Combine(dir, "server.config.xml");
            await File.WriteAllTextAsync(config, $"""
                <xmppserver>
                  <host name="localhost"/>
                  <listen type="c2s" address="127.0.0.1" port="{c2s}"/>
                  <data-dir path="data"/>
                  <modules><disco/><ping/><version/></modules>
                </xmppserver>
                """);
            var notifyPath = Path.Combine(dir, "notify");
            using var notify = Bind(notifyPath);

            // As systemd does, JOURNAL_STREAM names the stream that is the server's standard output (here a
            // pipe to the test, where systemd's is a socket to journald): the shell puts its inode there.
            var psi = new ProcessStartInfo("sh") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var a in new[] { "-c", "JOURNAL_STREAM=0:$(stat -L -c %i /proc/$$/fd/1) exec dotnet \"$0\" run --config \"$1\"", Path.Combine(TestContext.CurrentContext.TestDirectory, "xmppserver.dll"), config })
            {
                psi.ArgumentList.Add(a);
            }

            psi.Environment["NOTIFY_SOCKET"] = notifyPath;
            using var process = Process.Start(psi)!;
            var output = new StringBuilder();
            process.OutputDataReceived += (_, e) =>
            {
                lock (output)
                {
                    output.AppendLine(e.Data);
                }
            };
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            try
            {
                // READY=1 comes once every listener is open: a client can connect at once.
                var ready = await ReceiveAsync(notify);
                Assert.That(ready, Does.StartWith("READY=1\nSTATUS=serving localhost; listening on "));
                Assert.That(ready, Does.Contain($"127.0.0.1:{c2s}"));
                await (await RawXmppClient.ConnectAsync(c2s)).DisposeAsync();

                // systemctl reload: ExecReload sends SIGHUP; the configuration now has no version module.
                await File.WriteAllTextAsync(config, (await File.ReadAllTextAsync(config)).Replace("<version/>", string.Empty, StringComparison.Ordinal));
                await ServerProcess.SignalAsync(process.Id, "HUP");
                var reloading = await ReceiveAsync(notify);
                Assert.That(reloading, Does.StartWith("RELOADING=1\nMONOTONIC_USEC="));
                var usec = long.Parse(reloading.Split('\n')[1]["MONOTONIC_USEC=".Length..], System.Globalization.CultureInfo.InvariantCulture);
                Assert.That(usec, Is.EqualTo(Stopwatch.GetTimestamp() / (Stopwatch.Frequency / 1_000_000)).Within(60_000_000), "CLOCK_MONOTONIC in microseconds");
                Assert.That(await ReceiveAsync(notify), Does.StartWith("READY=1\nSTATUS=configuration reloaded; serving localhost"));

                // systemctl stop: SIGTERM.
                await ServerProcess.SignalAsync(process.Id, "TERM");
                Assert.That(await ReceiveAsync(notify), Does.StartWith("STOPPING=1"));
                await process.WaitForExitAsync();
                Assert.That(process.ExitCode, Is.EqualTo(0));
            }
            finally
            {
                if (!process.HasExited)
                {
                    process.Kill();
                    await process.WaitForExitAsync();
                }
            }

            string[] lines;
            lock (output)
            {
                lines = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            }

            // Every line is one journal entry with its priority; no time stamp of our own.
            Assert.That(lines, Has.Some.StartsWith("<6>INFO  Server [c- -] Ready."));
            Assert.That(lines, Has.Some.StartsWith("<6>INFO  Server [c- -] SIGHUP: reloading the configuration"));
            Assert.That(lines, Has.All.Match(@"^<[2-7]>"));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static Socket Bind(string address)
    {
        var s = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        s.Bind(new UnixDomainSocketEndPoint(address));
        return s;
    }

    private static async Task<string> ReceiveAsync(Socket socket)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var buffer = new byte[4096];
        var n = await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token);
        return Encoding.UTF8.GetString(buffer, 0, n);
    }
}
