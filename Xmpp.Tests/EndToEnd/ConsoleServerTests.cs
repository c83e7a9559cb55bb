using System.Net;
using Xmpp.Server.Config;
using Xmpp.Server.Logging;
using Xmpp.Server.Modules.Console;
using static Xmpp.Tests.EndToEnd.ConsoleTests;

namespace Xmpp.Tests.EndToEnd;

/// <summary>
/// The console's Server page against the real server: announcements and the message of the day through XEP-0133's
/// own commands, the configuration check and the SIGHUP reload of the file on disk, the recent warnings; and the
/// client column of the session tables and the roster on the account page.
/// </summary>
public sealed class ConsoleServerTests
{
    private static readonly string[] NewActions = ["/admin/server/announce", "/admin/server/motd", "/admin/server/motd/delete", "/admin/server/check", "/admin/server/reload"];

    private static async Task<string> PageAsync(HttpClient http, string path, string cookie)
    {
        using var r = await GetAsync(http, path, cookie);
        Assert.That(r.StatusCode, Is.EqualTo(HttpStatusCode.OK), path);
        return await r.Content.ReadAsStringAsync();
    }

    /// <summary>Posts a form of the Server page; expects the redirect to the page with the outcome and returns that page.</summary>
    private static async Task<string> ActAsync(HttpClient http, string path, string cookie, string csrf, params (string Name, string Value)[] fields)
    {
        using var r = await PostAsync(http, path, cookie, [new("csrf", csrf), .. fields.Select(f => KeyValuePair.Create(f.Name, f.Value))]);
        Assert.That(r.StatusCode, Is.EqualTo(HttpStatusCode.SeeOther), await r.Content.ReadAsStringAsync());
        var location = r.Headers.Location!.OriginalString;
        Assert.That(location, Does.StartWith("/admin/server?").And.EndWith("done=outcome"));
        return await PageAsync(http, location, cookie);
    }

    private static async Task<RawXmppClient> OnlineAsync(TestServer server, string user, string password, string presence = "<presence/>")
    {
        var c = await RawXmppClient.ConnectAsync(server.C2sPort);
        await c.LoginAsync(user, password);
        await c.SendAsync(presence);
        return c;
    }

    [Test]
    public async Task Announcements_and_the_message_of_the_day_reach_clients_as_with_XEP_0133()
    {
        await using var server = await StartAsync(null, "carol@localhost:carol-pass", "dave@localhost:dave-pass");
        using var http = Http(server);
        var (cookie, csrf) = await SignInAsAdminAsync(http);
        await using var bob = await OnlineAsync(server, "bob", "bob-pass");
        await bob.DrainAsync();

        var page = await PageAsync(http, "/admin/server", cookie);
        Assert.That(page, Does.Contain("Send to everyone online").And.Contain("<h3>Message of the day of localhost</h3><p class=\"muted\">None.</p>"));

        page = await ActAsync(http, "/admin/server/announce", cookie, csrf, ("host", "localhost"), ("subject", "Maintenance"), ("announcement", "Down at <noon>\r\nfor an hour"));
        Assert.That(page, Does.Contain("The announcement: done.").And.Contain("Announcement sent to 1 session."));
        var headline = await bob.ReadUntilAsync(e => e.Name == "message");
        Assert.That(headline.GetAttribute("type"), Is.EqualTo("headline"));
        Assert.That(headline.GetAttribute("from"), Is.EqualTo("localhost"));
        Assert.That(headline.ChildText("subject", "jabber:client"), Is.EqualTo("Maintenance"));
        Assert.That(headline.ChildText("body", "jabber:client"), Is.EqualTo("Down at <noon>\nfor an hour"));
        Assert.That(server.Logs.Any(l => l.Contains("noon", StringComparison.Ordinal)), Is.False, "the text is not logged");

        // Set: those online get it now, each account once at its next login.
        page = await ActAsync(http, "/admin/server/motd", cookie, csrf, ("host", "localhost"), ("motd", "Welcome & <enjoy>\r\nthe server"));
        Assert.That(page, Does.Contain("The message of the day: done.").And.Contain("<blockquote>Welcome &amp; &lt;enjoy&gt;<br>the server</blockquote>"));
        var now = await bob.ReadUntilAsync(e => e.Name == "message");
        Assert.That(now.ChildText("body", "jabber:client"), Is.EqualTo("Welcome & <enjoy>\nthe server"));
        await using (var carol = await OnlineAsync(server, "carol", "carol-pass"))
        {
            var motd = await carol.ReadUntilAsync(e => e.Name == "message");
            Assert.That(motd.ChildText("subject", "jabber:client"), Is.EqualTo("Message of the day"));
            Assert.That(motd.ChildText("body", "jabber:client"), Is.EqualTo("Welcome & <enjoy>\nthe server"));
        }

        // Delete: nobody gets it any more.
        page = await ActAsync(http, "/admin/server/motd/delete", cookie, csrf, ("host", "localhost"));
        Assert.That(page, Does.Contain("Message of the day deleted.").And.Contain("<h3>Message of the day of localhost</h3><p class=\"muted\">None.</p>"));
        await using (var dave = await OnlineAsync(server, "dave", "dave-pass"))
        {
            Assert.That((await dave.DrainAsync()).Where(e => e.Name == "message"), Is.Empty);
        }

        // What the command refuses is shown as refused; a host the server does not serve is not asked for.
        page = await ActAsync(http, "/admin/server/announce", cookie, csrf, ("host", "localhost"), ("announcement", "  "));
        Assert.That(page, Does.Contain("class=\"error\"").And.Contain("The announcement is empty."));
        using (var r = await PostAsync(http, "/admin/server/announce", cookie, [new("csrf", csrf), new("host", "elsewhere.example"), new("announcement", "x")]))
        {
            Assert.That(r.StatusCode, Is.EqualTo(HttpStatusCode.BadRequest));
        }
    }

    [Test]
    public async Task Without_the_admin_module_the_page_says_so()
    {
        var modules = new Dictionary<string, IReadOnlyDictionary<string, string>>(ServerOptions.DefaultModules) { ["console"] = new Dictionary<string, string>() };
        modules.Remove("admin");
        await using var server = await StartAsync(o => o with { Modules = modules });
        using var http = Http(server);
        var (cookie, csrf) = await SignInAsAdminAsync(http);
        var page = await PageAsync(http, "/admin/server", cookie);
        Assert.That(page, Does.Contain("The admin module (XEP-0133) is not loaded").And.Not.Contain("/admin/server/announce").And.Contain("Check the configuration"));
        using var r = await PostAsync(http, "/admin/server/motd", cookie, [new("csrf", csrf), new("host", "localhost"), new("motd", "hello")]);
        Assert.That(r.StatusCode, Is.EqualTo(HttpStatusCode.Conflict));
    }

    [Test]
    public async Task Check_and_reload_read_the_file_on_disk_as_SIGHUP_does()
    {
        await using var server = await StartAsync(o => o with { SourceFile = Path.Combine(o.DataDirectory, "server.config.xml") });
        var file = server.Server.Options.SourceFile!;
        using var http = Http(server);
        var (cookie, csrf) = await SignInAsAdminAsync(http);
        using (var stranger = Http(server))
        using (await SignInAsync(stranger, Admin, "not the password"))
        {
            // A warning from before the reload.
        }

        // A file that does not load: the check shows the reload's reason, and nothing changes.
        await File.WriteAllTextAsync(file, "<xmppserver><host name='localhost'/><no-such-element/></xmppserver>");
        var reason = Assert.Throws<ConfigException>(() => ConfigLoader.Load(file))!.Message;
        var page = await ActAsync(http, "/admin/server/check", cookie, csrf);
        Assert.That(page, Does.Contain("A reload would refuse the configuration").And.Contain(WebUtility.HtmlEncode(reason)));
        page = await ActAsync(http, "/admin/server/reload", cookie, csrf);
        Assert.That(page, Does.Contain("The reload was refused; the running configuration stays.").And.Contain(WebUtility.HtmlEncode(reason)));
        Assert.That(server.Server.Options.Modules.ContainsKey("time"), Is.True);

        // A file that parses but whose modules do not load: the check builds them as the reload does.
        await File.WriteAllTextAsync(file, "<xmppserver><host name='localhost'/><modules><blocking max-itmes='5'/></modules></xmppserver>");
        page = await ActAsync(http, "/admin/server/check", cookie, csrf);
        Assert.That(page, Does.Contain("A reload would refuse the configuration").And.Contain(WebUtility.HtmlEncode("module blocking: unknown option 'max-itmes'")));
        await using (var bob = await OnlineAsync(server, "bob", "bob-pass"))
        {
            await bob.DrainAsync();
        }

        // A file without the time module: the check says it loads and changes nothing; the reload applies it.
        var modules = string.Concat(ServerOptions.DefaultModules.Keys.Where(m => m != "time").Append("console").Select(m => $"<{m}/>"));
        var dataDir = WebUtility.HtmlEncode(server.DataDir);
        await File.WriteAllTextAsync(file, $"""
            <xmppserver>
              <host name='localhost'/>
              <listen type='c2s' address='127.0.0.1' port='0'/>
              <listen type='c2s-tls' address='127.0.0.1' port='0'/>
              <listen type='https' address='127.0.0.1' port='0'/>
              <data-dir path='{dataDir}'/>
              <admin jid='{Admin}'/>
              <authentication failure-delay='0' ip-failures='0'/>
              <logging level='Off'/>
              <modules>{modules}</modules>
            </xmppserver>
            """);
        page = await ActAsync(http, "/admin/server/check", cookie, csrf);
        Assert.That(page, Does.Contain("The configuration loads; a reload would apply it.").And.Contain(WebUtility.HtmlEncode($"configuration {file} OK; modules: ")));
        Assert.That(server.Server.Options.Modules.ContainsKey("time"), Is.True, "a check applies nothing");
        var before = server.Server.Modules.Loaded.OfType<ConsoleModule>().Single();

        page = await ActAsync(http, "/admin/server/reload", cookie, csrf);
        Assert.That(page, Does.Contain("The configuration was reloaded.").And.Contain(WebUtility.HtmlEncode($"configuration {file} reloaded; modules: disco, ping, version, offline, last, private,")));
        Assert.That(server.Server.Options.Modules.ContainsKey("time"), Is.False);
        Assert.That(server.Server.Modules.Loaded.OfType<ConsoleModule>().Single(), Is.Not.SameAs(before), "a new generation of the console answered");
        Assert.That(server.Logs, Has.Some.Contains($"Console: {Admin} reloads the configuration from 127.0.0.1"));

        // Still signed in, with the same form token, and the warnings from before the reload are still there.
        page = await PageAsync(http, "/admin/server", cookie);
        Assert.That(page, Does.Contain($"Console: sign-in failed for {Admin} from 127.0.0.1"));
        using (var r = await PostAsync(http, "/admin/server/check", cookie, [new("csrf", csrf)]))
        {
            Assert.That(r.StatusCode, Is.EqualTo(HttpStatusCode.SeeOther));
        }

        await using var late = await RawXmppClient.ConnectAsync(server.C2sPort);
        await late.LoginAsync("bob", "bob-pass");
        var time = await late.IqAsync("<iq type='get' id='t' to='localhost'><time xmlns='urn:xmpp:time'/></iq>");
        Assert.That(time.ToString(), Does.Contain("service-unavailable"), "the time module is gone");
    }

    [Test]
    public async Task Warnings_the_server_logs_are_shown_newest_first_and_encoded()
    {
        await using var server = await StartAsync();
        using var http = Http(server);
        using (await SignInAsync(http, Admin, "wrong"))
        {
        }

        using (await PostAsync(http, "/admin/users/add", null, [new("csrf", "x")], origin: "https://evil.example/<b>"))
        {
        }

        var (cookie, _) = await SignInAsAdminAsync(http);
        var page = await PageAsync(http, "/admin/server", cookie);
        var failed = page.IndexOf($"Console: sign-in failed for {Admin} from 127.0.0.1", StringComparison.Ordinal);
        var refused = page.IndexOf("sent from another site (https://evil.example/&lt;b&gt;)", StringComparison.Ordinal);
        Assert.That(failed, Is.GreaterThan(0), page);
        Assert.That(refused, Is.GreaterThan(0).And.LessThan(failed), "newest first");
        Assert.That(page, Does.Not.Contain("evil.example/<b>").And.Not.Contain("signed in from"), "encoded; nothing below Warn");
        Assert.That(page, Does.Contain("<td>Warn</td><td>Module.console</td>"));
    }

    [Test]
    public void The_recent_log_keeps_the_last_warnings_only()
    {
        using var logs = LogSetup.Create(new LoggingOptions { Level = "Off" });
        var log = logs.GetLogger("Test");
        for (var i = 0; i < RecentLog.Capacity + 50; i++)
        {
            log.Info("info {N}", i);
            log.Warn("warning {N}", i);
            log.Debug("body {N}", i);
        }

        log.Error(new IOException("disk full"), "failed {What}", "write");
        var entries = RecentLog.Of(logs)!.Entries();
        Assert.That(entries, Has.Count.EqualTo(RecentLog.Capacity));
        Assert.That(entries[0].Message, Is.EqualTo("failed write (IOException: disk full)"));
        Assert.That(entries[0].Level, Is.EqualTo("Error"));
        Assert.That(entries[1].Message, Is.EqualTo($"warning {RecentLog.Capacity + 49}"));
        Assert.That(entries[^1].Message, Is.EqualTo("warning 51"));
        Assert.That(entries.All(e => e.Level is "Warn" or "Error" && e.Logger == "Test"));
    }

    [Test]
    public async Task Session_tables_show_the_client_from_its_caps()
    {
        await using var server = await StartAsync();
        using var http = Http(server);
        var (cookie, _) = await SignInAsAdminAsync(http);
        await using var gajim = await OnlineAsync(server, "bob", "bob-pass", "<presence><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://gajim.org' ver='QgayPKawpkPSDYmwT/WM94uAlu0='/></presence>");
        await gajim.DrainAsync();
        await using var other = await RawXmppClient.ConnectAsync(server.C2sPort);
        await other.LoginAsync("admin", "admin-pass");
        await other.SendAsync("<presence><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://www.example.net/&lt;client&gt;' ver='x'/></presence>");
        await other.DrainAsync();
        await using var bare = await RawXmppClient.ConnectAsync(server.C2sPort);
        await bare.LoginAsync("bob", "bob-pass", resource: "bare");

        var page = await PageAsync(http, "/admin/sessions", cookie);
        Assert.That(page, Does.Contain("<th>client</th>"));
        Assert.That(page, Does.Contain("bob@localhost/test</a></td><td>Gajim</td>"));
        Assert.That(page, Does.Contain("admin@localhost/test</a></td><td>example.net</td>"));
        Assert.That(page, Does.Contain("bob@localhost/bare</a></td><td>—</td>"));
        var user = await PageAsync(http, "/admin/user?jid=bob%40localhost", cookie);
        Assert.That(user, Does.Contain("<td>Gajim</td>"));
    }

    [Test]
    public void Caps_nodes_name_well_known_clients()
    {
        Assert.That(ClientNames.FromNode("http://conversations.im"), Is.EqualTo("Conversations"));
        Assert.That(ClientNames.FromNode("https://dino.im"), Is.EqualTo("Dino"));
        Assert.That(ClientNames.FromNode("http://www.profanity.im"), Is.EqualTo("Profanity"));
        Assert.That(ClientNames.FromNode("http://slixmpp.com/ver/1.8.5"), Is.EqualTo("slixmpp"));
        Assert.That(ClientNames.FromNode("https://unknown.example/app"), Is.EqualTo("unknown.example"));
        Assert.That(ClientNames.FromNode("my-bot"), Is.EqualTo("my-bot"));
        Assert.That(ClientNames.FromNode(new string('x', 100)), Has.Length.EqualTo(65));
        Assert.That(ClientNames.FromPresence(null), Is.Null);
    }

    [Test]
    public async Task The_account_page_shows_the_roster()
    {
        await using var server = await StartAsync(null, "carol@localhost:carol-pass");
        await using var bob = await RawXmppClient.ConnectAsync(server.C2sPort);
        await bob.LoginAsync("bob", "bob-pass");
        var set = await bob.IqAsync("<iq type='set' id='r1'><query xmlns='jabber:iq:roster'><item jid='carol@localhost' name='Carol &lt;C&gt;'><group>Friends</group><group>Work</group></item></query></iq>");
        Assert.That(set.GetAttribute("type"), Is.EqualTo("result"));
        await bob.SendAsync("<presence type='subscribe' to='carol@localhost'/>");
        await bob.DrainAsync();

        using var http = Http(server);
        var (cookie, _) = await SignInAsAdminAsync(http);
        var page = await PageAsync(http, "/admin/user?jid=bob%40localhost", cookie);
        Assert.That(page, Does.Contain("<h2>Roster</h2><p>1 contact.</p>"));
        Assert.That(page, Does.Contain("<tr><td>carol@localhost</td><td>Carol &lt;C&gt;</td><td>none</td><td>subscribe</td><td>Friends, Work</td></tr>"));

        // Carol is offline: her roster is read from storage; bob's request waits there, not in her roster.
        page = await PageAsync(http, "/admin/user?jid=carol%40localhost", cookie);
        Assert.That(page, Does.Contain("<h2>Roster</h2><p>0 contacts; 1 subscription request not yet answered.</p>"));
    }

    [Test]
    public async Task Every_new_form_needs_the_session_form_token()
    {
        await using var server = await StartAsync(o => o with { SourceFile = Path.Combine(o.DataDirectory, "server.config.xml") });
        await File.WriteAllTextAsync(server.Server.Options.SourceFile!, "<xmppserver><host name='localhost'/></xmppserver>");
        using var http = Http(server);
        var (cookie, csrf) = await SignInAsAdminAsync(http);
        KeyValuePair<string, string>[] fields = [new("host", "localhost"), new("announcement", "hi"), new("motd", "hi")];
        foreach (var path in NewActions)
        {
            using (var r = await PostAsync(http, path, cookie, fields))
            {
                Assert.That(r.StatusCode, Is.EqualTo(HttpStatusCode.Forbidden), path + " without a token");
            }

            using (var r = await PostAsync(http, path, cookie, [.. fields, new("csrf", csrf[..^1] + (csrf[^1] == 'A' ? 'B' : 'A'))]))
            {
                Assert.That(r.StatusCode, Is.EqualTo(HttpStatusCode.Forbidden), path + " with a wrong token");
            }
        }

        var page = await PageAsync(http, "/admin/server", cookie);
        Assert.That(page, Does.Contain("<h3>Message of the day of localhost</h3><p class=\"muted\">None.</p>"), "no message of the day was set");
        Assert.That(server.Logs.Any(l => l.Contains("Reload:", StringComparison.Ordinal) || l.Contains("reloads the configuration", StringComparison.Ordinal)), Is.False, "nothing was reloaded");
    }
}
