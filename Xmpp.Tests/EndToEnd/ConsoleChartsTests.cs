using System.Globalization;
using System.Net;
using System.Text.RegularExpressions;
using System.Xml;
using Xmpp.Server.Modules.Console;

namespace Xmpp.Tests.EndToEnd;

/// <summary>
/// The dashboard's charts against the real server: the sampler's points after XMPP traffic, the /admin/charts
/// fragment and /admin/console.js behind the session, the policy that lets only the console's own script run,
/// and the history kept across a configuration reload.
/// </summary>
public sealed partial class ConsoleTests
{
    private static readonly TimeSpan SampleWait = TimeSpan.FromSeconds(30);

    private static MetricsHistory HistoryOf(TestServer server) =>
        server.Server.Modules.Loaded.OfType<ConsoleModule>().Single().History;

    [GeneratedRegex("<svg .*?</svg>", RegexOptions.Singleline)]
    private static partial Regex SvgElement();

    /// <summary>The fragment's charts, each parsed as XML: by title, the root element.</summary>
    private static Dictionary<string, XmlElement> ParseCharts(string html)
    {
        var charts = new Dictionary<string, XmlElement>(StringComparer.Ordinal);
        foreach (Match m in SvgElement().Matches(html))
        {
            var doc = new XmlDocument();
            using var reader = XmlReader.Create(new StringReader(m.Value), new XmlReaderSettings { DtdProcessing = DtdProcessing.Prohibit });
            doc.Load(reader);
            var ns = new XmlNamespaceManager(doc.NameTable);
            ns.AddNamespace("s", "http://www.w3.org/2000/svg");
            charts.Add(doc.DocumentElement!.SelectSingleNode("s:text[@class='title']", ns)!.InnerText, doc.DocumentElement);
        }

        return charts;
    }

    [Test]
    public async Task The_dashboard_has_charts_and_only_its_own_script_refreshes_them()
    {
        await using var server = await StartAsync();
        using var http = Http(server);
        foreach (var path in new[] { "/admin/charts", "/admin/console.js" })
        {
            using var r = await GetAsync(http, path, null);
            Assert.That(r.StatusCode, Is.EqualTo(HttpStatusCode.SeeOther), path);
            Assert.That(r.Headers.Location?.OriginalString, Is.EqualTo("/admin/login"), path);
        }

        var (cookie, _) = await SignInAsAdminAsync(http);
        using var dashboard = await GetAsync(http, "/admin/", cookie);
        var csp = dashboard.Headers.GetValues("Content-Security-Policy").Single();
        Assert.That(csp, Is.EqualTo("default-src 'self'; script-src 'self'; object-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"), "only script-src changed");
        var page = await dashboard.Content.ReadAsStringAsync();
        Assert.That(page, Does.Contain("<section id=\"charts\" class=\"charts\" data-src=\"/admin/charts\""));
        Assert.That(Regex.Matches(page, "<script[^>]*>").Select(m => m.Value), Is.EqualTo(new[] { "<script src=\"/admin/console.js\" defer>" }), "one script, from a file");
        Assert.That(Regex.IsMatch(page, "<script[^>]*>[^<]"), Is.False, "nothing inline");
        Assert.That(page, Does.Not.Contain(" style="), "no inline style");
        Assert.That(Regex.IsMatch(page, " on[a-z]+="), Is.False, "no inline event handler");
        Assert.That(ParseCharts(page).Keys, Is.EquivalentTo(ConsoleCharts.Groups.Select(g => g.Title)), "the charts as of the page load");

        foreach (var path in new[] { "/admin/users", "/admin/sessions", "/admin/user?jid=bob%40localhost" })
        {
            Assert.That(await (await GetAsync(http, path, cookie)).Content.ReadAsStringAsync(), Does.Not.Contain("<script"), "only the dashboard has the script: " + path);
        }

        using var script = await GetAsync(http, "/admin/console.js", cookie);
        Assert.That(script.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(script.Content.Headers.ContentType?.MediaType, Is.EqualTo("text/javascript"));
        Assert.That(script.Headers.GetValues("X-Content-Type-Options").Single(), Is.EqualTo("nosniff"));
        Assert.That(await script.Content.ReadAsStringAsync(), Does.Contain("credentials: 'same-origin'").And.Contain("document.visibilityState").And.Contain("getElementById('charts')").And.Contain("innerHTML"));

        using var fragment = await GetAsync(http, "/admin/charts", cookie);
        Assert.That(fragment.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(fragment.Content.Headers.ContentType?.MediaType, Is.EqualTo("text/html"));
        Assert.That(fragment.Headers.CacheControl?.NoStore, Is.True);
        var charts = await fragment.Content.ReadAsStringAsync();
        Assert.That(charts, Does.StartWith("<svg ").And.Not.Contain("<html").And.Not.Contain("<script"), "just the charts");
        Assert.That(ParseCharts(charts), Has.Count.EqualTo(ConsoleCharts.Groups.Length));
    }

    [Test]
    public async Task After_a_login_and_messages_the_next_sample_shows_the_session_and_the_message_rate()
    {
        await using var server = await StartAsync();
        var history = HistoryOf(server);
        history.Interval = TimeSpan.FromMilliseconds(200);
        await history.NextSampleAsync(CancellationToken.None).WaitAsync(SampleWait);

        var before = history.Taken;
        await using var bob = await RawXmppClient.ConnectAsync(server.C2sPort);
        var jid = await bob.LoginAsync("bob", "bob-pass");
        const int Messages = 20;
        for (var i = 0; i < Messages; i++)
        {
            await bob.SendAsync($"<message to='{jid}' type='chat' id='m{i}'><body>{i}</body></message>");
        }

        for (var i = 0; i < Messages; i++)
        {
            await bob.ReadUntilAsync(e => e.Name == "message");
        }

        // Every message was routed before this call; the sample it waits for read the counters after it.
        await history.NextSampleAsync(CancellationToken.None).WaitAsync(SampleWait);
        var points = history.Snapshot();
        var since = points[^(int)Math.Min(points.Length, history.Taken - before)..];
        Assert.That(since[^1].Sessions, Is.EqualTo(1), "bob's session");
        Assert.That(since[^1].C2s, Is.GreaterThanOrEqualTo(1));
        Assert.That(since.Max(p => p.MessagesPerSecond), Is.GreaterThan(0), "the messages, as a rate");
        Assert.That(since.Max(p => p.AuthSucceededPerMinute), Is.GreaterThan(0), "bob's authentication");
        Assert.That(since[^1].ResidentBytes, Is.GreaterThan(since[^1].ManagedBytes / 2).And.GreaterThan(0));
        Assert.That(points.Select(p => p.CpuPercent), Is.All.InRange(0.0, 100.0));

        // The fragment the script fetches draws the same.
        using var http = Http(server);
        var (cookie, _) = await SignInAsAdminAsync(http);
        var charts = ParseCharts(await (await GetAsync(http, "/admin/charts", cookie)).Content.ReadAsStringAsync());
        Assert.That(charts["Sessions"].GetAttribute("aria-label"), Does.Contain("bound now 1,"));
        var stanzas = Regex.Match(charts["Stanzas routed per second"].GetAttribute("aria-label"), "message now [0-9.,]+/s, highest ([0-9.,]+)/s");
        Assert.That(stanzas.Success, charts["Stanzas routed per second"].GetAttribute("aria-label"));
        Assert.That(double.Parse(stanzas.Groups[1].Value, NumberStyles.Number, CultureInfo.InvariantCulture), Is.GreaterThan(0));
        Assert.That(charts["Sessions"].GetElementsByTagName("polyline"), Has.Count.EqualTo(1));
        Assert.That(charts["Connections"].GetElementsByTagName("polyline"), Has.Count.EqualTo(4));
    }

    [Test]
    public async Task The_history_goes_on_across_a_reload()
    {
        await using var server = await StartAsync();
        var history = HistoryOf(server);
        history.Interval = TimeSpan.FromMilliseconds(100);
        await history.NextSampleAsync(CancellationToken.None).WaitAsync(SampleWait);
        var taken = history.Taken;

        var result = await server.Server.ReloadAsync(server.Server.Options, CancellationToken.None);
        Assert.That(result.Applied, Is.True, string.Join("; ", result.Messages));
        Assert.That(HistoryOf(server), Is.SameAs(history), "the new module generation took the history over");
        Assert.That(history.Taken, Is.GreaterThanOrEqualTo(taken), "nothing lost");

        // The new generation's background work samples on, at the same interval.
        var afterReload = history.Taken;
        var next = history.NextSampleAsync(CancellationToken.None);
        await next.WaitAsync(SampleWait);
        Assert.That(history.Taken, Is.GreaterThan(afterReload));
        Assert.That(history.Interval, Is.EqualTo(TimeSpan.FromMilliseconds(100)));
        Assert.That(server.ErrorLogs, Is.Empty);
    }
}
