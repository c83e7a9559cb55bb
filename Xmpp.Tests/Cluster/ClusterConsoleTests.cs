using System.Net;
using Xmpp.Tests.EndToEnd;

namespace Xmpp.Tests.Cluster;

/// <summary>
/// The web console of a cluster node (README, "Running a cluster"): the dashboard lists every member with its
/// sessions, the sessions page lists the other nodes' sessions, and ending one of them ends it on its node.
/// </summary>
[TestFixture]
[NonParallelizable]
[ClusterLogs]
[CancelAfter(120_000)]
public sealed class ClusterConsoleTests
{
    [Test]
    public async Task A_nodes_console_shows_every_member_and_ends_a_session_bound_on_another_node()
    {
        await using var cluster = await ClusterNodes.CreateAsync(2, "boss", "alice", "bob");
        var https = Ports.Free(2);
        cluster.ExtraConfig = "<admin jid='boss@localhost'/>";
        cluster.NodeConfig = (node, address) => $"""
            <listen type="https" address="{address}" port="{https[node]}"/>
            <modules><disco/><adhoc/><admin/><console/></modules>
            """;
        await cluster.StartAsync(0);
        await cluster.StartAsync(1);
        await using var alice = await cluster.LoginAsync(0, "alice", "desk");
        await using var bob = await cluster.LoginAsync(1, "bob", "phone");

        using var http = new HttpClient(new HttpClientHandler { ServerCertificateCustomValidationCallback = (_, _, _, _) => true, AllowAutoRedirect = false, UseCookies = false })
        {
            BaseAddress = new Uri($"https://{cluster.Nodes[0].Address}:{https[0]}"),
            Timeout = TimeSpan.FromSeconds(30),
        };
        using var signedIn = await ConsoleTests.SignInAsync(http, "boss@localhost", "pw-boss");
        Assert.That(signedIn.StatusCode, Is.EqualTo(HttpStatusCode.SeeOther), await signedIn.Content.ReadAsStringAsync());
        var cookie = ConsoleTests.CookieOf(signedIn)!;
        var csrf = await ConsoleTests.CsrfAsync(http, cookie);

        // The ledger is written in batches: the dashboard shows bob's session on n2 once it is there.
        var n2 = new System.Text.RegularExpressions.Regex("<td>n2</td><td>S127\\.0\\.0\\.2:[^<]*</td><td>Active</td><td class=\"num\">1</td>");
        var started = System.Diagnostics.Stopwatch.StartNew();
        string dashboard;
        do
        {
            dashboard = await (await ConsoleTests.GetAsync(http, "/admin/", cookie)).Content.ReadAsStringAsync();
        }
        while (!n2.IsMatch(dashboard) && started.Elapsed < TimeSpan.FromSeconds(10));
        Assert.That(dashboard, Does.Contain("This console runs on node <strong>n1</strong>"));
        Assert.That(dashboard, Does.Match("<td>n1 <span class=\"muted\">\\(this node\\)</span></td><td>S127\\.0\\.0\\.1:[^<]*</td><td>Active</td><td class=\"num\">1</td>"));
        Assert.That(n2.IsMatch(dashboard), dashboard);

        var sessions = await (await ConsoleTests.GetAsync(http, "/admin/sessions", cookie)).Content.ReadAsStringAsync();
        Assert.That(sessions, Does.Contain("alice@localhost/desk"), "this node's session");
        Assert.That(sessions, Does.Contain("<h2>On the other nodes</h2>").And.Contain("bob@localhost/phone</a></td><td>n2</td>"));

        using (var r = await ConsoleTests.PostAsync(http, "/admin/sessions/end", cookie, [new("csrf", csrf), new("jid", "bob@localhost/phone"), new("back", "sessions")]))
        {
            Assert.That(r.Headers.Location?.OriginalString, Is.EqualTo("/admin/sessions?done=ended"));
        }

        Assert.That(await bob.ReadStreamErrorAsync(), Is.EqualTo("policy-violation"), "bob's session on n2 was ended");
    }
}
