using System.Net.Sockets;
using System.Text;

namespace Xmpp.Server.Hosting;

/// <summary>
/// The local control socket (DATA-DIR/control.sock, a Unix domain socket readable by the server's user
/// only) through which <c>xmppserver reload</c> asks the running server to reload and reads the outcome, and
/// <c>xmppserver drain</c> asks a cluster node to drain and stop.
/// One command per connection: a line in, the answer's lines out ("ok" or "refused" first).
/// </summary>
public static class ControlChannel
{
    public const string FileName = "control.sock";

    public static string PathFor(string dataDirectory) => Path.Combine(dataDirectory, FileName);

    internal static async Task RunAsync(XmppServer server, CancellationToken shutdown)
    {
        var log = server.Context.Logs.GetLogger("Control");
        var path = PathFor(server.Options.DataDirectory);
        if (!Socket.OSSupportsUnixDomainSockets || Encoding.UTF8.GetByteCount(path) > 100)
        {
            log.Info("No control socket ({Path}): reload with SIGHUP", path);
            return;
        }

        Socket listener;
        try
        {
            File.Delete(path);
            listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            listener.Bind(new UnixDomainSocketEndPoint(path));
            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            }

            listener.Listen(4);
        }
        catch (Exception ex) when (ex is SocketException or IOException or UnauthorizedAccessException)
        {
            log.Warn("No control socket at {Path} ({Reason}): reload with SIGHUP", path, ex.Message);
            return;
        }

        using (listener)
        {
            await Task.Yield();
            while (!shutdown.IsCancellationRequested)
            {
                Socket client;
                try
                {
                    client = await listener.AcceptAsync(shutdown).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
                catch (SocketException ex)
                {
                    log.Warn("Control socket accept failed: {Reason}", ex.Message);
                    continue;
                }

                await ServeAsync(server, client, log, shutdown).ConfigureAwait(false);
            }
        }

        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
            // Best effort.
        }
    }

    private static async Task ServeAsync(XmppServer server, Socket client, NLog.Logger log, CancellationToken shutdown)
    {
        using (client)
        {
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(shutdown);
                timeout.CancelAfter(TimeSpan.FromSeconds(30));
                await using var stream = new NetworkStream(client);
                using var reader = new StreamReader(stream, Encoding.UTF8);
                await using var writer = new StreamWriter(stream, new UTF8Encoding(false)) { NewLine = "\n" };
                var command = (await reader.ReadLineAsync(timeout.Token).ConfigureAwait(false))?.Trim();
                if (command == "drain")
                {
                    if (server.Context.Cluster is null)
                    {
                        await writer.WriteLineAsync("refused\nnot a cluster node: nothing to drain to (stop it with SIGTERM)").ConfigureAwait(false);
                        return;
                    }

                    log.Info("Drain requested on the control socket");
                    await writer.WriteLineAsync("ok\ndraining: resumable sessions and occupied rooms move to the other nodes, then this node stops").ConfigureAwait(false);
                    await writer.FlushAsync(timeout.Token).ConfigureAwait(false);
                    server.RequestStop();
                    return;
                }

                if (command != "reload")
                {
                    await writer.WriteLineAsync("refused\nunknown command (reload, drain)").ConfigureAwait(false);
                    return;
                }

                log.Info("Reload requested on the control socket");
                var result = await server.ReloadAsync(timeout.Token).ConfigureAwait(false);
                await writer.WriteLineAsync(result.Applied ? "ok" : "refused").ConfigureAwait(false);
                foreach (var line in result.Messages)
                {
                    await writer.WriteLineAsync(line).ConfigureAwait(false);
                }
            }
            catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException)
            {
                log.Info("Control connection ended: {Reason}", ex.Message);
            }
        }
    }

    /// <summary>The client side, for <c>xmppserver reload</c>: the server's answer lines, or null when no server listens there.</summary>
    public static async Task<IReadOnlyList<string>?> RequestAsync(string dataDirectory, string command, CancellationToken cancellationToken)
    {
        var path = PathFor(dataDirectory);
        if (!File.Exists(path))
        {
            return null;
        }

        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), cancellationToken).ConfigureAwait(false);
        }
        catch (SocketException)
        {
            return null;
        }

        await using var stream = new NetworkStream(socket);
        await using (var writer = new StreamWriter(stream, new UTF8Encoding(false), leaveOpen: true) { NewLine = "\n" })
        {
            await writer.WriteLineAsync(command).ConfigureAwait(false);
        }

        using var reader = new StreamReader(stream, Encoding.UTF8);
        var lines = new List<string>();
        while (await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false) is { } line)
        {
            lines.Add(line);
        }

        return lines;
    }
}
