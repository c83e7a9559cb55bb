using System.Net;
using System.Net.Sockets;
using Xmpp.Server.Config;

namespace Xmpp.Tests.EndToEnd;

/// <summary>The metrics and health endpoint.</summary>
public sealed class MetricsTests
{
    [Test]
    public async Task Metrics_count_what_happened_and_health_answers()
    {
        var port = FreePort();
        var modules = new Dictionary<string, IReadOnlyDictionary<string, string>>(ServerOptions.DefaultModules)
        {
            ["metrics"] = new Dictionary<string, string> { ["port"] = port.ToString(System.Globalization.CultureInfo.InvariantCulture) },
        };
        await using var server = await TestServer.StartAsync(o => o with { Modules = modules }, "alice@localhost:wonderland");
        await using var alice = await RawXmppClient.ConnectAsync(server.C2sPort);
        await alice.LoginAsync("alice", "wonderland");
        await alice.SendAsync("<presence/>");
        await alice.SendAsync("<message to='alice@localhost/test' type='chat'><body>self</body></message>");
        await alice.SendAsync("<iq type='get' id='x' to='localhost'><unknown xmlns='urn:example:nothing'/></iq>");
        await alice.DrainAsync();
        await using (var rude = await RawXmppClient.ConnectAsync(server.C2sPort))
        {
            await rude.OpenAsync();
            await rude.SendAsync("<message>before TLS</message>");
            Assert.That(await rude.ReadStreamErrorAsync(), Is.Not.Null);
        }

        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/"), Timeout = TimeSpan.FromSeconds(10) };
        string text = "";
        for (var i = 0; i < 50 && text.Length == 0; i++)
        {
            try
            {
                text = await http.GetStringAsync("metrics");
            }
            catch (HttpRequestException)
            {
                await Task.Delay(100);
            }
        }

        var samples = text.Split('\n').Where(l => l.Length > 0 && l[0] != '#').ToDictionary(l => l[..l.LastIndexOf(' ')], l => double.Parse(l[(l.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture));
        Assert.That(samples["xmpp_sessions"], Is.EqualTo(1));
        Assert.That(samples["xmpp_authentications_total{outcome=\"success\"}"], Is.GreaterThanOrEqualTo(1));
        Assert.That(samples["xmpp_stanzas_routed_total{kind=\"message\"}"], Is.GreaterThanOrEqualTo(1));
        Assert.That(samples["xmpp_routing_duration_seconds_count"], Is.GreaterThanOrEqualTo(3));
        Assert.That(samples["xmpp_routing_duration_seconds_bucket{le=\"+Inf\"}"], Is.EqualTo(samples["xmpp_routing_duration_seconds_count"]));
        Assert.That(samples["process_resident_memory_bytes"], Is.GreaterThan(0));
        Assert.That(text, Does.Contain("# TYPE xmpp_routing_duration_seconds histogram"));
        Assert.That(samples["xmpp_stanza_errors_total{condition=\"service-unavailable\"}"], Is.GreaterThanOrEqualTo(1));
        Assert.That(samples.Keys.Where(k => k.StartsWith("xmpp_stream_errors_total{stream=\"c2s\"", StringComparison.Ordinal)).Sum(k => samples[k]), Is.GreaterThanOrEqualTo(1));
        Assert.That(samples["xmpp_storage_write_duration_seconds_count"], Is.GreaterThanOrEqualTo(1), "at least the login's last-activity or roster writes");
        Assert.That(samples["xmpp_s2s_connections{direction=\"out\",state=\"ready\"}"], Is.Zero);
        Assert.That(samples["xmpp_components"], Is.Zero);
        Assert.That(samples["xmpp_connections{kind=\"c2s\"}"], Is.InRange(1, 2), "alice, and perhaps the rude client while its close drains");
        Assert.That(samples["xmpp_stanzas_total{direction=\"in\",kind=\"message\"}"], Is.GreaterThanOrEqualTo(1));
        Assert.That(samples["xmpp_stanzas_total{direction=\"out\",kind=\"iq\"}"], Is.GreaterThanOrEqualTo(2), "the bind result and the error");

        Assert.That(await http.GetStringAsync("health"), Is.EqualTo("ok\n"));
        var missing = await http.GetAsync("nothing");
        Assert.That(missing.StatusCode, Is.EqualTo(HttpStatusCode.NotFound));
    }

    private static int FreePort()
    {
        using var socket = new TcpListener(IPAddress.Loopback, 0);
        socket.Start();
        var port = ((IPEndPoint)socket.LocalEndpoint).Port;
        socket.Stop();
        return port;
    }
}
