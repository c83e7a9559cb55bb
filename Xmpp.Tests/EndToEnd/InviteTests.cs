using System.Net;
using System.Text.RegularExpressions;
using Xmpp.Core.Addressing;
using Xmpp.Core.Xml;
using Xmpp.Server.Cli;
using Xmpp.Server.Config;
using Xmpp.Server.Modules.Invites;
using Xmpp.Server.Storage;

namespace Xmpp.Tests.EndToEnd;

/// <summary>
/// Invitations: links made by xmppserver invite and by the XEP-0401 commands, XEP-0445 registration with the
/// token while in-band registration is off, reuse and expiry refused, the XEP-0379 subscriptions, and the
/// invitation page with its sign-up form, each against the real server.
/// </summary>
public sealed partial class InviteTests
{
    private const string Commands = "http://jabber.org/protocol/commands";
    private const string Register = "jabber:iq:register";
    private const string Stanzas = "urn:ietf:params:xml:ns:xmpp-stanzas";
    private const string Roster = "jabber:iq:roster";

    private static Task<TestServer> StartAsync(params string[] users)
    {
        var modules = new Dictionary<string, IReadOnlyDictionary<string, string>>(ServerOptions.DefaultModules)
        {
            ["invites"] = new Dictionary<string, string>(),
        };
        return TestServer.StartAsync(
            o => o with
            {
                Modules = modules,
                Admins = [Jid.Parse("romeo@localhost")],
                Listeners = [.. o.Listeners, new ListenerOptions(ListenerKind.Https, "127.0.0.1", 0)],

                // An exact list, as a site that lets one web client in has: the page's own form is not
                // a cross-origin caller and must still be accepted.
                Http = new HttpOptions { CorsOrigins = ["https://chat.example.org"] },
            },
            ["romeo@localhost:romeo-pass", .. users]);
    }

    private static HttpClient Http() => new(new HttpClientHandler { ServerCertificateCustomValidationCallback = (_, _, _, _) => true, AllowAutoRedirect = false });

    /// <summary>The configuration the invite command would read: the HTTPS listener on the port it got.</summary>
    private static ServerOptions CliOptions(TestServer server) => server.Server.Options with
    {
        Listeners = [new ListenerOptions(ListenerKind.Https, "127.0.0.1", server.Server.PortOf(ListenerKind.Https))],
    };

    /// <summary>A stream up to the point where a client may register: TLS, and the features after it.</summary>
    private static async Task<(RawXmppClient Client, Element Features)> UnauthenticatedAsync(TestServer server)
    {
        var c = await RawXmppClient.ConnectAsync(server.C2sPort);
        await c.OpenAsync();
        await c.StartTlsAsync();
        return (c, await c.OpenAsync());
    }

    private static Task<Element> PreAuthAsync(RawXmppClient c, string token) =>
        c.IqAsync($"<iq type='set' id='pa1' to='localhost'><preauth xmlns='urn:xmpp:pars:0' token='{token}'/></iq>");

    private static Task<Element> RegisterAsync(RawXmppClient c, string username, string password) =>
        c.IqAsync($"<iq type='set' id='reg1'><query xmlns='{Register}'><username>{username}</username><password>{password}</password></query></iq>");

    private static string? Condition(Element reply) =>
        reply.GetAttribute("type") == "error" ? reply.Child("error", "jabber:client")!.Elements().First(e => e.Namespace == Stanzas).Name : null;

    private static string Token(string uri) => TokenPattern().Match(uri).Groups[1].Value;

    [GeneratedRegex("preauth=([A-Za-z0-9_-]{22})")]
    private static partial Regex TokenPattern();

    /// <summary>Logs in, asks for the roster (so that pushes come) and sends initial presence.</summary>
    private static async Task<RawXmppClient> OnlineAsync(TestServer server, string user, string password)
    {
        var c = await RawXmppClient.ConnectAsync(server.C2sPort);
        await c.LoginAsync(user, password);
        await c.IqAsync($"<iq type='get' id='roster1'><query xmlns='{Roster}'/></iq>");
        await c.SendAsync("<presence/>");
        await c.DrainAsync();
        return c;
    }

    private static async Task<Dictionary<string, string>> RosterAsync(RawXmppClient c)
    {
        var roster = await c.IqAsync($"<iq type='get' id='rq{Guid.NewGuid():N}'><query xmlns='{Roster}'/></iq>");
        return roster.Child("query", Roster)!.Elements().ToDictionary(i => i.GetAttribute("jid")!, i => i.GetAttribute("subscription")!);
    }

    private static async Task<Element> RunCommandAsync(RawXmppClient c, string node, string? form = null)
    {
        var first = await c.IqAsync($"<iq type='set' id='c1' to='localhost'><command xmlns='{Commands}' node='{node}' action='execute'/></iq>");
        var cmd = first.Child("command", Commands);
        Assert.That(cmd, Is.Not.Null, first.ToString());
        if (cmd!.GetAttribute("status") == "completed")
        {
            return cmd;
        }

        var done = await c.IqAsync($"<iq type='set' id='c2' to='localhost'><command xmlns='{Commands}' node='{node}' sessionid='{cmd.GetAttribute("sessionid")}' action='complete'>{form}</command></iq>");
        Assert.That(done.Child("command", Commands)?.GetAttribute("status"), Is.EqualTo("completed"), done.ToString());
        return done.Child("command", Commands)!;
    }

    private static string Field(Element command, string var) =>
        command.Child("x", "jabber:x:data")!.Elements().First(f => f.GetAttribute("var") == var).ChildText("value", "jabber:x:data")!;

    [Test]
    public async Task A_link_from_the_command_line_registers_once_with_in_band_registration_off()
    {
        await using var server = await StartAsync();
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        Assert.That(await ServerCommands.InviteAsync(CliOptions(server), null, null, 1, null, stdout, stderr), Is.EqualTo(CommandLine.Ok), stderr.ToString());
        var lines = stdout.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var port = server.Server.PortOf(ListenerKind.Https);
        Assert.That(lines[0], Does.Match($"^page: https://localhost:{port}/invite/[A-Za-z0-9_-]{{22}}$"));
        Assert.That(lines[1], Does.Match("^uri: xmpp:localhost\\?register;preauth=[A-Za-z0-9_-]{22}$"));
        var token = Token(lines[1]);
        Assert.That(lines[0], Does.EndWith("/invite/" + token));

        var (c, features) = await UnauthenticatedAsync(server);
        await using (c)
        {
            Assert.That(features.Child("register", "urn:xmpp:ibr-token:0"), Is.Not.Null, features.ToString());
            Assert.That(features.Child("register", "http://jabber.org/features/iq-register"), Is.Not.Null);

            // Without a token, registration is closed.
            Assert.That(Condition(await RegisterAsync(c, "eve", "pw")), Is.EqualTo("not-allowed"));
            Assert.That(Condition(await PreAuthAsync(c, "AAAAAAAAAAAAAAAAAAAAAA")), Is.EqualTo("item-not-found"));
            Assert.That((await PreAuthAsync(c, token)).GetAttribute("type"), Is.EqualTo("result"));
            var form = await c.IqAsync($"<iq type='get' id='f'><query xmlns='{Register}'/></iq>");
            Assert.That(form.Child("query", Register)!.Child("password", Register), Is.Not.Null);
            Assert.That((await RegisterAsync(c, "juliet", "balcony")).GetAttribute("type"), Is.EqualTo("result"));
        }

        await using (var juliet = await RawXmppClient.ConnectAsync(server.C2sPort))
        {
            await juliet.LoginAsync("juliet", "balcony");
        }

        // Used up: refused at the preauth step (XEP-0445: item-not-found), and no account without it.
        var (again, _) = await UnauthenticatedAsync(server);
        await using (again)
        {
            Assert.That(Condition(await PreAuthAsync(again, token)), Is.EqualTo("item-not-found"));
            Assert.That(Condition(await RegisterAsync(again, "tybalt", "pw")), Is.EqualTo("not-allowed"));
        }

        Assert.That(await server.Server.Context.Storage.Users.ExistsAsync("localhost", "tybalt", CancellationToken.None), Is.False);
        Assert.That(server.Logs.Where(l => l.Contains(token, StringComparison.Ordinal) && !l.StartsWith("Debug|", StringComparison.Ordinal) && !l.StartsWith("Trace|", StringComparison.Ordinal)), Is.Empty, "the token is a credential");
    }

    [Test]
    public async Task The_command_line_refuses_without_the_module_and_for_unknown_accounts()
    {
        await using var server = await StartAsync();
        var stderr = new StringWriter();
        var off = CliOptions(server) with { Modules = ServerOptions.DefaultModules };
        Assert.That(await ServerCommands.InviteAsync(off, null, null, 1, null, TextWriter.Null, stderr), Is.EqualTo(CommandLine.Failed));
        Assert.That(stderr.ToString(), Does.Contain("<invites/>"));
        Assert.That(await ServerCommands.InviteAsync(CliOptions(server), null, "nobody@localhost", 1, null, TextWriter.Null, TextWriter.Null), Is.EqualTo(CommandLine.Failed));
        Assert.That(await ServerCommands.InviteAsync(CliOptions(server), "elsewhere.example", null, 1, null, TextWriter.Null, TextWriter.Null), Is.EqualTo(CommandLine.Failed));

        var stdout = new StringWriter();
        Assert.That(await ServerCommands.InviteAsync(CliOptions(server), null, "romeo@localhost", 2, 3, stdout, stderr), Is.EqualTo(CommandLine.Ok));
        Assert.That(stdout.ToString(), Does.Match("uri: xmpp:romeo@localhost\\?roster;preauth=[A-Za-z0-9_-]{22};ibr=y"));
        var invite = await server.Server.Context.Storage.Invites.GetAsync(Token(stdout.ToString()), CancellationToken.None);
        Assert.That(invite!.UsesLeft, Is.EqualTo(2));
        Assert.That(invite.Expires - invite.Created, Is.EqualTo(TimeSpan.FromDays(3)));
    }

    [Test]
    public async Task An_expired_invitation_is_refused()
    {
        await using var server = await StartAsync();
        var now = DateTimeOffset.UtcNow;
        var token = Invitations.NewToken();
        await server.Server.Context.Storage.Invites.CreateAsync(new Invite(token, InviteKind.Register, "localhost", null, null, false, false, 1, now.AddSeconds(-1), now.AddDays(-7)), CancellationToken.None);
        var (c, _) = await UnauthenticatedAsync(server);
        await using (c)
        {
            Assert.That(Condition(await PreAuthAsync(c, token)), Is.EqualTo("item-not-found"));
            Assert.That(Condition(await RegisterAsync(c, "late", "pw")), Is.EqualTo("not-allowed"));
        }

        using var http = Http();
        var page = await http.GetAsync(new Uri($"https://localhost:{server.Server.PortOf(ListenerKind.Https)}/invite/{token}"));
        Assert.That(page.StatusCode, Is.EqualTo(HttpStatusCode.Gone));
        Assert.That(await page.Content.ReadAsStringAsync(), Does.Contain("expired"));
    }

    [Test]
    public async Task A_contact_invitation_from_the_command_makes_an_account_subscribed_both_ways_with_the_inviter()
    {
        await using var server = await StartAsync();
        await using var romeo = await OnlineAsync(server, "romeo", "romeo-pass");
        var items = await romeo.IqAsync($"<iq type='get' id='l' to='localhost'><query xmlns='http://jabber.org/protocol/disco#items' node='{Commands}'/></iq>");
        Assert.That(items.ToString(), Does.Contain("urn:xmpp:invite#invite").And.Contain("urn:xmpp:invite#create-account"));

        var result = await RunCommandAsync(romeo, "urn:xmpp:invite#invite");
        var uri = Field(result, "uri");
        var token = Token(uri);
        Assert.That(uri, Is.EqualTo($"xmpp:romeo@localhost?roster;preauth={token};ibr=y"), "an admin's contact invitation creates accounts");
        Assert.That(Field(result, "landing-url"), Is.EqualTo($"https://localhost:{server.Server.PortOf(ListenerKind.Https)}/invite/{token}"));
        Assert.That(DateTimeOffset.Parse(Field(result, "expire"), System.Globalization.CultureInfo.InvariantCulture), Is.EqualTo(DateTimeOffset.UtcNow.AddDays(7)).Within(TimeSpan.FromMinutes(1)));
        Assert.That(Field(result, "FORM_TYPE"), Is.EqualTo("urn:xmpp:invite#invitation"));

        var (c, _) = await UnauthenticatedAsync(server);
        await using (c)
        {
            Assert.That((await PreAuthAsync(c, token)).GetAttribute("type"), Is.EqualTo("result"));
            Assert.That((await RegisterAsync(c, "juliet", "balcony")).GetAttribute("type"), Is.EqualTo("result"));
        }

        // XEP-0401 §3.6: the inviter's roster gets the new contact at once, subscription both.
        var push = await romeo.ReadUntilAsync(e => e.Name == "iq" && e.GetAttribute("type") == "set" && e.Child("query", Roster) is not null);
        var item = push.Child("query", Roster)!.Child("item", Roster)!;
        Assert.That((item.GetAttribute("jid"), item.GetAttribute("subscription")), Is.EqualTo(("juliet@localhost", "both")));
        await romeo.SendAsync($"<iq type='result' id='{push.GetAttribute("id")}'/>");

        await using var juliet = await RawXmppClient.ConnectAsync(server.C2sPort);
        await juliet.LoginAsync("juliet", "balcony");
        Assert.That(await RosterAsync(juliet), Is.EqualTo(new Dictionary<string, string> { ["romeo@localhost"] = "both" }));
        Assert.That(await RosterAsync(romeo), Is.EqualTo(new Dictionary<string, string> { ["juliet@localhost"] = "both" }));

        // Presence flows both ways: her initial presence reaches him, and her probe brings his.
        await juliet.SendAsync("<presence><status>hello</status></presence>");
        var fromRomeo = await juliet.ReadUntilAsync(e => e.Name == "presence" && e.GetAttribute("from")?.StartsWith("romeo@localhost/", StringComparison.Ordinal) == true);
        Assert.That(fromRomeo.GetAttribute("type"), Is.Null);
        var fromJuliet = await romeo.ReadUntilAsync(e => e.Name == "presence" && e.GetAttribute("from")?.StartsWith("juliet@localhost/", StringComparison.Ordinal) == true);
        Assert.That(fromJuliet.ChildText("status", "jabber:client"), Is.EqualTo("hello"));
    }

    [Test]
    public async Task A_user_invitation_does_not_create_accounts_unless_allowed_and_create_account_reserves_the_username()
    {
        await using var server = await StartAsync("benvolio@localhost:ben-pass");
        await using var ben = await OnlineAsync(server, "benvolio", "ben-pass");
        var items = await ben.IqAsync($"<iq type='get' id='l' to='localhost'><query xmlns='http://jabber.org/protocol/disco#items' node='{Commands}'/></iq>");
        Assert.That(items.ToString(), Does.Contain("urn:xmpp:invite#invite").And.Not.Contain("urn:xmpp:invite#create-account"));
        var uri = Field(await RunCommandAsync(ben, "urn:xmpp:invite#invite"), "uri");
        Assert.That(uri, Does.StartWith("xmpp:benvolio@localhost?roster;preauth=").And.Not.Contain("ibr=y"));
        var (c, _) = await UnauthenticatedAsync(server);
        await using (c)
        {
            Assert.That(Condition(await PreAuthAsync(c, Token(uri))), Is.EqualTo("item-not-found"), "a contact invitation without ibr=y creates no account");
        }

        await using var romeo = await OnlineAsync(server, "romeo", "romeo-pass");
        var form = "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>urn:xmpp:invite#invitation</value></field>"
            + "<field var='username'><value>Nurse</value></field><field var='roster-subscription'><value>false</value></field></x>";
        var account = await RunCommandAsync(romeo, "urn:xmpp:invite#create-account", form);
        var accountUri = Field(account, "uri");
        Assert.That(accountUri, Does.Match("^xmpp:nurse@localhost\\?register;preauth=[A-Za-z0-9_-]{22}$"));
        var (n, _) = await UnauthenticatedAsync(server);
        await using (n)
        {
            Assert.That((await PreAuthAsync(n, Token(accountUri))).GetAttribute("type"), Is.EqualTo("result"));
            var registration = await n.IqAsync($"<iq type='get' id='f'><query xmlns='{Register}'/></iq>");
            Assert.That(registration.Child("query", Register)!.ChildText("username", Register), Is.EqualTo("nurse"), "the reserved name is filled in");
            Assert.That(Condition(await RegisterAsync(n, "peter", "pw")), Is.EqualTo("not-acceptable"));
            Assert.That((await RegisterAsync(n, "nurse", "pw")).GetAttribute("type"), Is.EqualTo("result"));
        }

        Assert.That(await RosterAsync(romeo), Is.Empty, "no subscription asked for");
    }

    [Test]
    public async Task A_subscription_request_carrying_the_token_is_approved_for_the_inviter()
    {
        await using var server = await StartAsync("mercutio@localhost:merc-pass");
        await using var romeo = await OnlineAsync(server, "romeo", "romeo-pass");
        var token = Token(Field(await RunCommandAsync(romeo, "urn:xmpp:invite#invite"), "uri"));
        await using var mercutio = await OnlineAsync(server, "mercutio", "merc-pass");

        await mercutio.SendAsync($"<presence type='subscribe' to='romeo@localhost'><preauth xmlns='urn:xmpp:pars:0' token='{token}'/></presence>");
        // Approved for romeo, and romeo asks back (in whichever order they come).
        var seen = new List<string>();
        while (seen.Count < 2)
        {
            var p = await mercutio.ReadUntilAsync(e => e.Name == "presence" && e.GetAttribute("type") is "subscribed" or "subscribe");
            Assert.That(p.GetAttribute("from"), Is.EqualTo("romeo@localhost"));
            seen.Add(p.GetAttribute("type")!);
        }

        Assert.That(seen, Is.EquivalentTo(new[] { "subscribed", "subscribe" }));
        await mercutio.SendAsync("<presence type='subscribed' to='romeo@localhost'/>");
        await mercutio.DrainAsync();
        await romeo.DrainAsync();
        Assert.That(await RosterAsync(romeo), Is.EqualTo(new Dictionary<string, string> { ["mercutio@localhost"] = "both" }));
        Assert.That(await RosterAsync(mercutio), Is.EqualTo(new Dictionary<string, string> { ["romeo@localhost"] = "both" }));

        // Used: a second request with it is an ordinary request, left to romeo.
        await server.AddUserAsync("tybalt@localhost", "t-pass");
        await using var t = await OnlineAsync(server, "tybalt", "t-pass");
        await t.SendAsync($"<presence type='subscribe' to='romeo@localhost'><preauth xmlns='urn:xmpp:pars:0' token='{token}'/></presence>");
        var request = await romeo.ReadUntilAsync(e => e.Name == "presence" && e.GetAttribute("type") == "subscribe");
        Assert.That(request.GetAttribute("from"), Is.EqualTo("tybalt@localhost"));
        Assert.That((await t.DrainAsync()).Where(e => e.GetAttribute("type") == "subscribed"), Is.Empty);
    }

    [Test]
    public async Task The_page_shows_the_invitation_and_its_form_creates_the_account()
    {
        await using var server = await StartAsync();
        var stdout = new StringWriter();
        Assert.That(await ServerCommands.InviteAsync(CliOptions(server), null, "romeo@localhost", 1, null, stdout, TextWriter.Null), Is.EqualTo(CommandLine.Ok));
        var url = new Uri(Regex.Match(stdout.ToString(), "page: (\\S+)").Groups[1].Value);
        var token = Token(stdout.ToString());
        using var http = Http();

        var get = await http.GetAsync(url);
        Assert.That(get.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(get.Content.Headers.ContentType!.MediaType, Is.EqualTo("text/html"));
        Assert.That(get.Headers.GetValues("Referrer-Policy").Single(), Is.EqualTo("no-referrer"));
        var html = await get.Content.ReadAsStringAsync();
        Assert.That(html, Does.Contain("name=\"viewport\"").And.Contain("romeo@localhost").And.Contain($"href=\"xmpp:romeo@localhost?roster;preauth={token};ibr=y\"")
            .And.Contain("<svg").And.Contain("Conversations").And.Contain("Monal").And.Contain("Gajim").And.Contain("Dino").And.Not.Contain("<script"));

        async Task<HttpResponseMessage> PostAsync(string? nonce, string username, string password, string password2, string? origin = null)
        {
            var fields = new Dictionary<string, string>
            {
                ["issued"] = Regex.Match(html, "name=\"issued\" value=\"(\\d+)\"").Groups[1].Value,
                ["nonce"] = nonce ?? Regex.Match(html, "name=\"nonce\" value=\"([0-9a-f]+)\"").Groups[1].Value,
                ["username"] = username,
                ["password"] = password,
                ["password2"] = password2,
            };
            using var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = new FormUrlEncodedContent(fields) };
            request.Headers.Add("Origin", origin ?? $"https://{url.Authority}");
            return await http.SendAsync(request);
        }

        Assert.That((await PostAsync(null, "rosaline", "a", "b")).StatusCode, Is.EqualTo(HttpStatusCode.BadRequest), "passwords differ");
        Assert.That((await PostAsync(new string('0', 64), "rosaline", "a", "a")).StatusCode, Is.EqualTo(HttpStatusCode.BadRequest), "not this page's nonce");
        Assert.That((await PostAsync(null, "rosaline", "a", "a", origin: "https://evil.example")).StatusCode, Is.EqualTo(HttpStatusCode.Forbidden));
        Assert.That((await PostAsync(null, "romeo", "a", "a")).StatusCode, Is.EqualTo(HttpStatusCode.Conflict));
        Assert.That(await server.Server.Context.Storage.Users.ExistsAsync("localhost", "rosaline", CancellationToken.None), Is.False);

        await using var romeo = await OnlineAsync(server, "romeo", "romeo-pass");
        var done = await PostAsync(null, "rosaline", "fair one", "fair one");
        Assert.That(done.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(await done.Content.ReadAsStringAsync(), Does.Contain("rosaline@localhost"));
        var push = await romeo.ReadUntilAsync(e => e.Name == "iq" && e.GetAttribute("type") == "set" && e.Child("query", Roster) is not null);
        Assert.That(push.Child("query", Roster)!.Child("item", Roster)!.GetAttribute("subscription"), Is.EqualTo("both"));
        await using (var rosaline = await RawXmppClient.ConnectAsync(server.C2sPort))
        {
            await rosaline.LoginAsync("rosaline", "fair one");
            Assert.That(await RosterAsync(rosaline), Is.EqualTo(new Dictionary<string, string> { ["romeo@localhost"] = "both" }));
        }

        var used = await http.GetAsync(url);
        Assert.That(used.StatusCode, Is.EqualTo(HttpStatusCode.Gone));
        Assert.That(await used.Content.ReadAsStringAsync(), Does.Contain("used already"));
        Assert.That((await PostAsync(null, "other", "a", "a")).StatusCode, Is.EqualTo(HttpStatusCode.Gone));
        Assert.That((await http.GetAsync(new Uri(url, "/invite/AAAAAAAAAAAAAAAAAAAAAA"))).StatusCode, Is.EqualTo(HttpStatusCode.NotFound));
        Assert.That((await http.GetAsync(new Uri(url, "/invite/../../etc/passwd"))).StatusCode, Is.EqualTo(HttpStatusCode.NotFound));
    }
}
