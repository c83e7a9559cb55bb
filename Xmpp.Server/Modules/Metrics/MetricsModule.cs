using System.Globalization;
using System.Net;
using System.Text;
using Xmpp.Server.Hosting;

namespace Xmpp.Server.Modules.Metrics;

/// <summary>
/// An HTTP endpoint for monitoring, off unless listed in &lt;modules&gt;, on a loopback address by default:
/// GET /metrics in the Prometheus text format (connections, sessions, stanzas routed by kind, routing
/// latency, authentications, stream errors, memory, CPU and GC), GET /health for load balancers. Plain
/// HTTP on a Kestrel listener of its own (<see cref="PlainHttpHost"/>), which a reload's new module
/// generation opens again; the counters belong to the server and go on.
/// </summary>
[Specification("Prometheus text format", "0.0.4", Note = "GET /metrics and GET /health on address:port (loopback by default): connections, sessions, resumable sessions, stanzas routed by kind, a routing-latency histogram, authentications by outcome, stream errors, resident memory, CPU, GC heap and collections. Checked with promtool.")]
public sealed class MetricsModule : IXmppModule
{
    private const string PlainText = "text/plain; charset=utf-8";

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
            try
            {
                await PlainHttpHost.ServeAsync(
                    new IPEndPoint(ip, port),
                    http => AnswerAsync(context, http),
                    listening => context.Log.Info("Metrics on {Address}/metrics", listening),
                    stopping).ConfigureAwait(false);
            }
            catch (IOException ex)
            {
                context.Log.Error("Metrics endpoint cannot listen on {Address}:{Port}: {Reason}", ip, port, ex.Message);
            }
        });
    }

    private static async Task AnswerAsync(IModuleContext context, IHttpExchange http)
    {
        var (status, type, body) = http.Method == "GET" ? http.Path switch
        {
            "/metrics" => (200, "text/plain; version=0.0.4; charset=utf-8", context.Metrics.Render()),
            "/health" => (200, PlainText, "ok\n"),
            _ => (404, PlainText, "not found\n"),
        } : (405, PlainText, "GET only\n");
        var bytes = Encoding.UTF8.GetBytes(body);
        http.StatusCode = status;
        if (status == 405)
        {
            http.SetHeader("Allow", "GET");
        }

        http.SetHeader("Content-Type", type);
        http.SetHeader("Content-Length", bytes.Length.ToString(CultureInfo.InvariantCulture));
        await http.ResponseBody.WriteAsync(bytes, http.Aborted).ConfigureAwait(false);
    }
}
