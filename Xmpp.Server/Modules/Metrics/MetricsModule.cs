using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Xmpp.Server.Modules.Metrics;

/// <summary>
/// An HTTP endpoint for monitoring, off unless listed in &lt;modules&gt;, on a loopback address by default:
/// GET /metrics in the Prometheus text format (connections, sessions, stanzas routed by kind, routing
/// latency, authentications, stream errors, memory, CPU and GC), GET /health for load balancers. A tiny
/// HTTP/1.1 responder of its own (one request per connection), so the server needs no web framework for it.
/// </summary>
[Specification("Prometheus text format", "0.0.4", Note = "GET /metrics and GET /health on address:port (loopback by default): connections, sessions, resumable sessions, stanzas routed by kind, a routing-latency histogram, authentications by outcome, stream errors, resident memory, CPU, GC heap and collections. Checked with promtool.")]
public sealed class MetricsModule : IXmppModule
{
    public string Name => "metrics";

    public void Register(IModuleContext context)
    {
        var address = context.Option("address") ?? "127.0.0.1";
        if (!IPAddress.TryParse(address, out var ip))
        {
            throw new Config.ConfigException($"module metrics: address must be an IP address, not '{address}'");
        }

        var port = context.Number("port", 5280, 0, 65535);
        context.RunInBackground(async stopping =>
        {
            // Bound when the server starts listening (not by "xmppserver check", which also loads modules).
            var listener = new TcpListener(ip, port);
            try
            {
                listener.Start(64);
            }
            catch (SocketException ex)
            {
                context.Log.Error("Metrics endpoint cannot listen on {Address}:{Port}: {Reason}", ip, port, ex.Message);
                return;
            }

            context.Log.Info("Metrics on http://{Endpoint}/metrics", listener.LocalEndpoint);
            using var registration = stopping.Register(listener.Stop);
            while (!stopping.IsCancellationRequested)
            {
                TcpClient client;
                try
                {
                    client = await listener.AcceptTcpClientAsync(stopping).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException or SocketException)
                {
                    break;
                }

                _ = AnswerAsync(context, client, stopping);
            }
        });
    }

    private static async Task AnswerAsync(IModuleContext context, TcpClient client, CancellationToken stopping)
    {
        using (client)
        {
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stopping);
                timeout.CancelAfter(TimeSpan.FromSeconds(10));
                var stream = client.GetStream();
                var request = await ReadHeadAsync(stream, timeout.Token).ConfigureAwait(false);
                var line = request.Split("\r\n", 2)[0].Split(' ');
                var (status, type, body) = line is ["GET", var path, ..] ? path.Split('?')[0] switch
                {
                    "/metrics" => ("200 OK", "text/plain; version=0.0.4; charset=utf-8", context.Metrics.Render()),
                    "/health" => ("200 OK", "text/plain; charset=utf-8", "ok\n"),
                    _ => ("404 Not Found", "text/plain; charset=utf-8", "not found\n"),
                } : ("405 Method Not Allowed", "text/plain; charset=utf-8", "GET only\n");
                var bytes = Encoding.UTF8.GetBytes(body);
                var head = $"HTTP/1.1 {status}\r\nContent-Type: {type}\r\nContent-Length: {bytes.Length}\r\nConnection: close\r\n\r\n";
                await stream.WriteAsync(Encoding.ASCII.GetBytes(head), timeout.Token).ConfigureAwait(false);
                await stream.WriteAsync(bytes, timeout.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException or InvalidDataException)
            {
                context.Log.Debug("Metrics request failed: {Reason}", ex.Message);
            }
        }
    }

    /// <summary>The request line and headers, at most 8 KiB.</summary>
    private static async Task<string> ReadHeadAsync(NetworkStream stream, CancellationToken ct)
    {
        var buffer = new byte[8192];
        var read = 0;
        while (read < buffer.Length)
        {
            var n = await stream.ReadAsync(buffer.AsMemory(read), ct).ConfigureAwait(false);
            if (n == 0)
            {
                break;
            }

            read += n;
            if (buffer.AsSpan(0, read).IndexOf("\r\n\r\n"u8) >= 0)
            {
                return Encoding.ASCII.GetString(buffer, 0, read);
            }
        }

        throw new InvalidDataException("incomplete request head");
    }
}
