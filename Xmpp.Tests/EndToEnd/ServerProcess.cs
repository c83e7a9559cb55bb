using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Xmpp.Tests.EndToEnd;

/// <summary>The server as a child process (xmppserver.dll next to the tests), its output in a log file.</summary>
internal sealed class ServerProcess : IDisposable
{
    private readonly Process _process;

    private ServerProcess(Process process) => _process = process;

    /// <summary>The process id (for /proc).</summary>
    public int Id => _process.Id;

    /// <param name="address">Where the server's client listener is (cluster tests run nodes on 127.0.0.2, 127.0.0.3).</param>
    public static async Task<ServerProcess> StartAsync(string config, int port, string log, IPAddress? address = null, TimeSpan? startTimeout = null)
    {
        var dll = Path.Combine(TestContext.CurrentContext.TestDirectory, "xmppserver.dll");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { dll, "run", "--config", config })
        {
            psi.ArgumentList.Add(a);
        }

        var process = Process.Start(psi)!;
        var writer = new StreamWriter(log) { AutoFlush = true };
        var gate = new object();
        var closed = false;
        void Write(string? line)
        {
            lock (gate)
            {
                // Output events can still arrive after Exited: they are dropped, never written to a closed file.
                if (line is not null && !closed)
                {
                    writer.WriteLine(line);
                }
            }
        }

        process.OutputDataReceived += (_, e) => Write(e.Data);
        process.ErrorDataReceived += (_, e) => Write(e.Data);
        process.Exited += (_, _) =>
        {
            lock (gate)
            {
                closed = true;
                writer.Dispose();
            }
        };
        process.EnableRaisingEvents = true;
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var deadline = DateTime.UtcNow + (startTimeout ?? TimeSpan.FromSeconds(30));
        while (true)
        {
            try
            {
                using var probe = new TcpClient();
                await probe.ConnectAsync(address ?? IPAddress.Loopback, port);
                return new ServerProcess(process);
            }
            catch (SocketException) when (DateTime.UtcNow < deadline && !process.HasExited)
            {
                await Task.Delay(100);
            }
        }
    }

    /// <summary>Whether the process has ended (by itself or killed).</summary>
    public bool HasExited => _process.HasExited;

    /// <summary>Sends a signal (STOP, CONT, TERM...) with kill(1).</summary>
    public Task SignalAsync(string signal) => SignalAsync(_process.Id, signal);

    /// <summary>Sends a signal to any process with kill(1).</summary>
    public static async Task SignalAsync(int pid, string signal)
    {
        using var kill = Process.Start("kill", ["-" + signal, pid.ToString(System.Globalization.CultureInfo.InvariantCulture)])!;
        await kill.WaitForExitAsync();
        Assert.That(kill.ExitCode, Is.Zero, "kill -" + signal);
    }

    /// <summary>Waits for the process to end by itself; false when it is still running after <paramref name="timeout"/>.</summary>
    public async Task<bool> WaitForExitAsync(TimeSpan timeout)
    {
        try
        {
            await _process.WaitForExitAsync().WaitAsync(timeout);
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
    }

    /// <summary>SIGKILL: no shutdown code runs.</summary>
    public void Kill9()
    {
        _process.Kill(entireProcessTree: false);
        Assert.That(_process.WaitForExit(10_000), Is.True);
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
            _process.WaitForExit(10_000);
        }

        _process.Dispose();
    }
}
