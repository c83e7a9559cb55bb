using System.Net;
using Xmpp.Server.Config;

namespace Xmpp.Tests.EndToEnd;

/// <summary>The metrics and health endpoint.</summary>
public sealed class MetricsTests
{
    [Test]
    public async Task Metrics_count_what_happened_and_health_answers()
    {
        var port = Ports.Free();
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

    [Test]
    public async Task A_reload_serves_the_endpoint_from_the_new_module_generation_with_the_counters_kept()
    {
        var port = Ports.Free();
        var modules = new Dictionary<string, IReadOnlyDictionary<string, string>>(ServerOptions.DefaultModules)
        {
            ["metrics"] = new Dictionary<string, string> { ["port"] = port.ToString(System.Globalization.CultureInfo.InvariantCulture) },
        };
        await using var server = await TestServer.StartAsync(o => o with { Modules = modules, Logging = o.Logging with { Level = "Info" } }, "alice@localhost:wonderland");
        var listening = $"Metrics on http://127.0.0.1:{port}/metrics";
        await server.WaitForLogAsync(listening);
        await using var alice = await RawXmppClient.ConnectAsync(server.C2sPort);
        await alice.LoginAsync("alice", "wonderland");
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/"), Timeout = TimeSpan.FromSeconds(10) };
        var before = RoutedIqs(await http.GetStringAsync("metrics"));

        var first = server.Server.Modules;
        var withoutVersion = modules.Where(m => m.Key != "version").ToDictionary();
        var result = await server.Server.ReloadAsync(server.Server.Options with { Modules = withoutVersion }, CancellationToken.None);
        Assert.That(result.Applied, Is.True, string.Join("; ", result.Messages));
        Assert.That(server.Server.Modules, Is.Not.SameAs(first));
        await server.WaitForLogAsync(listening, count: 2);

        await alice.SendAsync("<iq type='get' id='p' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
        await alice.ReadUntilAsync(e => e.Name == "iq" && e.GetAttribute("id") == "p");
        var after = RoutedIqs(await http.GetStringAsync("metrics"));
        Assert.That(after, Is.GreaterThan(before), "the server's counters went on across the reload");
        Assert.That(await http.GetStringAsync("health"), Is.EqualTo("ok\n"));
        using var post = await http.PostAsync("metrics", new StringContent(string.Empty));
        Assert.That(post.StatusCode, Is.EqualTo(HttpStatusCode.MethodNotAllowed));
        Assert.That(await post.Content.ReadAsStringAsync(), Is.EqualTo("GET only\n"));
    }

    private static double RoutedIqs(string text) =>
        double.Parse(text.Split('\n').Single(l => l.StartsWith("xmpp_stanzas_routed_total{kind=\"iq\"} ", StringComparison.Ordinal)).Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);
}
