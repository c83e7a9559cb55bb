using System.Diagnostics;
using System.Globalization;
using System.Text;
using Xmpp.Tests.Server;

namespace Xmpp.Tests.EndToEnd.Acme;

/// <summary>
/// Let's Encrypt's ACME test server (Debian's pebble) on free loopback ports, with a generated config: its
/// HTTPS certificate from a test CA made here (the package ships none; that CA is what the server's
/// <c>ca-file</c> trusts), names resolved by <see cref="LoopbackDns"/>, and HTTP-01 validated on the port
/// the test gives. Installed with apt-get when missing and running as root (CI); otherwise the test fails,
/// saying how to install it (never skipped).
/// </summary>
internal sealed class Pebble : IAsyncDisposable
{
    public const string Binary = "/usr/bin/pebble";

    private readonly Process _process;
    private readonly string _dir;
    private readonly StringBuilder _output;

    private Pebble(Process process, string dir, StringBuilder output, int port)
    {
        _process = process;
        _dir = dir;
        _output = output;
        DirectoryUrl = new Uri($"https://localhost:{port.ToString(CultureInfo.InvariantCulture)}/dir");
    }

    public Uri DirectoryUrl { get; }

    /// <summary>The test CA of pebble's own HTTPS certificate (PEM).</summary>
    public string CaFile => Path.Combine(_dir, "ca.pem");

    /// <summary>What pebble printed so far (for failure messages).</summary>
    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    /// <param name="httpPort">where pebble connects for HTTP-01 validation.</param>
    /// <param name="dnsPort">the UDP port of the DNS server it asks (on 127.0.0.1).</param>
    /// <param name="nonceReject">the percentage of good nonces pebble rejects as bad (PEBBLE_WFE_NONCEREJECT).</param>
    /// <param name="validity">the lifetime of the certificates it issues (its default: 5 years).</param>
    public static async Task<Pebble> StartAsync(int httpPort, int dnsPort, int nonceReject = 0, TimeSpan? validity = null)
    {
        await EnsureInstalledAsync();
        var dir = Path.Combine(Path.GetTempPath(), "xmpp-pebble-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(dir);
        var ca = new TestCa("Pebble HTTPS test CA");
        var (cert, key) = ca.Issue("localhost", dnsNames: ["localhost"]);
        await File.WriteAllTextAsync(Path.Combine(dir, "ca.pem"), ca.CertificatePem);
        await File.WriteAllTextAsync(Path.Combine(dir, "cert.pem"), cert);
        await File.WriteAllTextAsync(Path.Combine(dir, "key.pem"), key);
        var port = Ports.Free();
        var management = Ports.Free();
        var ci = CultureInfo.InvariantCulture;
        var config = string.Create(ci, $$"""
            {
              "pebble": {
                "listenAddress": "127.0.0.1:{{port}}",
                "managementListenAddress": "127.0.0.1:{{management}}",
                "certificate": "{{Path.Combine(dir, "cert.pem")}}",
                "privateKey": "{{Path.Combine(dir, "key.pem")}}",
                "httpPort": {{httpPort}},
                "tlsPort": {{Ports.Free()}},
                "ocspResponderURL": "",
                "externalAccountBindingRequired": false{{(validity is { } v ? $",\n    \"certificateValidityPeriod\": {(long)v.TotalSeconds}" : string.Empty)}}
              }
            }
            """);
        var configFile = Path.Combine(dir, "pebble-config.json");
        await File.WriteAllTextAsync(configFile, config);

        var psi = new ProcessStartInfo(Binary) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = dir };
        psi.ArgumentList.Add("-config");
        psi.ArgumentList.Add(configFile);
        psi.ArgumentList.Add("-dnsserver");
        psi.ArgumentList.Add("127.0.0.1:" + dnsPort.ToString(ci));
        psi.Environment["PEBBLE_VA_NOSLEEP"] = "1";
        psi.Environment["PEBBLE_WFE_NONCEREJECT"] = nonceReject.ToString(ci);
        var output = new StringBuilder();
        var listening = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var process = new Process { StartInfo = psi };
        DataReceivedEventHandler collect = (_, e) =>
        {
            if (e.Data is null)
            {
                return;
            }

            lock (output)
            {
                output.AppendLine(e.Data);
            }

            // "Listening on: 127.0.0.1:PORT" once the ACME endpoint accepts.
            if (e.Data.Contains("Listening on", StringComparison.Ordinal))
            {
                listening.TrySetResult();
            }
        };
        process.OutputDataReceived += collect;
        process.ErrorDataReceived += collect;
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var pebble = new Pebble(process, dir, output, port);
        var exited = process.WaitForExitAsync();
        var first = await Task.WhenAny(listening.Task, exited, Task.Delay(TimeSpan.FromSeconds(30)));
        if (first != listening.Task)
        {
            var text = pebble.Output;
            await pebble.DisposeAsync();
            Assert.Fail($"pebble did not start ({(first == exited ? "it exited" : "no 'Listening on' within 30 s")}):\n{text}");
        }

        return pebble;
    }

    /// <summary>apt-get install pebble when it is missing and this is root (CI on a clean Debian); else fail, saying how.</summary>
    private static async Task EnsureInstalledAsync()
    {
        if (File.Exists(Binary))
        {
            return;
        }

        if (Environment.UserName != "root")
        {
            Assert.Fail("pebble (the ACME test server) is not installed and this is not root to install it: apt-get install pebble");
        }

        await RunAsync("apt-get", ["update", "-qq"]);
        await RunAsync("apt-get", ["install", "-y", "-qq", "pebble"]);
        Assert.That(File.Exists(Binary), Is.True, "apt-get install pebble did not provide " + Binary);
    }

    private static async Task RunAsync(string program, string[] args)
    {
        var psi = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.Environment["DEBIAN_FRONTEND"] = "noninteractive";
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(5));
        if (process.ExitCode != 0)
        {
            Assert.Fail($"{program} {string.Join(' ', args)} failed ({process.ExitCode}): {await stderr}{await stdout}");
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
            await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
        }

        _process.Dispose();
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
