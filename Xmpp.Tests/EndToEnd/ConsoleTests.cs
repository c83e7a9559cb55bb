using System.Net;
using System.Text.RegularExpressions;
using Xmpp.Core.Addressing;
using Xmpp.Core.Sasl;
using Xmpp.Server.Config;
using Xmpp.Server.Modules.Console;

namespace Xmpp.Tests.EndToEnd;

/// <summary>
/// The web admin console (/admin/ on the HTTPS listener) against the real server: nothing without a session,
/// sign-in with an admin's XMPP password behind the SASL throttle, the cookie's attributes, the form token, and
/// account and session actions whose effect an XMPP client sees.
/// </summary>
public sealed partial class ConsoleTests
{
    internal const string Admin = "admin@localhost";
    private const string AdminPassword = "admin-pass";

    private static readonly string[] PagePaths = ["/admin/", "/admin/users", "/admin/users?q=b", "/admin/user?jid=bob%40localhost", "/admin/sessions", "/admin/server", "/admin/rooms", "/admin/rooms?q=r", "/admin/federation", "/admin/charts", "/admin/console.js", "/admin/no-such-page"];
    private static readonly string[] ActionPaths = ["/admin/logout", "/admin/users/add", "/admin/users/password", "/admin/users/delete", "/admin/sessions/end", "/admin/server/announce", "/admin/server/motd", "/admin/server/motd/delete", "/admin/server/check", "/admin/server/reload", "/admin/rooms/destroy", "/admin/federation/end", "/admin/no-such-action"];

    internal static Task<TestServer> StartAsync(Func<ServerOptions, ServerOptions>? more = null, params string[] users)
    {
        var modules = new Dictionary<string, IReadOnlyDictionary<string, string>>(ServerOptions.DefaultModules)
        {
            ["console"] = new Dictionary<string, string>(),
        };
        return TestServer.StartAsync(
            o =>
            {
                o = o with
                {
                    Modules = modules,
                    Admins = [Jid.Parse(Admin)],
                    Listeners = [.. o.Listeners, new ListenerOptions(ListenerKind.Https, "127.0.0.1", 0)],
                    // One address for every attempt here: keep the per-address block out of the tests that do not test it.
                    Auth = o.Auth with { FailuresPerIp = 0 },
                };
                return more?.Invoke(o) ?? o;
            },
            [Admin + ":" + AdminPassword, "bob@localhost:bob-pass", .. users]);
    }

    /// <summary>A client that keeps no cookies and follows no redirects: every test says what it sends.</summary>
    internal static HttpClient Http(TestServer server) =>
        new(new HttpClientHandler { ServerCertificateCustomValidationCallback = (_, _, _, _) => true, AllowAutoRedirect = false, UseCookies = false })
        {
            BaseAddress = new Uri($"https://localhost:{server.Server.PortOf(ListenerKind.Https)}"),
            Timeout = TimeSpan.FromSeconds(30),
        };

    [GeneratedRegex("name=\"issued\" value=\"(\\d+)\"><input type=\"hidden\" name=\"nonce\" value=\"([0-9a-f]+)\"")]
    private static partial Regex LoginNonce();

    [GeneratedRegex("name=\"csrf\" value=\"([^\"]+)\"")]
    private static partial Regex CsrfField();

    internal static async Task<HttpResponseMessage> PostAsync(HttpClient http, string path, string? cookie, IEnumerable<KeyValuePair<string, string>> fields, string? origin = null, string? fetchSite = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new FormUrlEncodedContent(fields) };
        if (cookie is not null)
        {
            request.Headers.Add("Cookie", ConsoleHtmlCookie + "=" + cookie);
        }

        if (origin is not null)
        {
            request.Headers.Add("Origin", origin);
        }

        if (fetchSite is not null)
        {
            request.Headers.Add("Sec-Fetch-Site", fetchSite);
        }

        return await http.SendAsync(request);
    }

    private const string ConsoleHtmlCookie = "__Secure-xmppconsole";

    internal static async Task<HttpResponseMessage> GetAsync(HttpClient http, string path, string? cookie)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        if (cookie is not null)
        {
            request.Headers.Add("Cookie", ConsoleHtmlCookie + "=" + cookie);
        }

        return await http.SendAsync(request);
    }

    /// <summary>Posts the sign-in form (with the nonce of a freshly served one); returns the answer.</summary>
    internal static async Task<HttpResponseMessage> SignInAsync(HttpClient http, string jid, string password)
    {
        var page = await http.GetStringAsync("/admin/login");
        var m = LoginNonce().Match(page);
        Assert.That(m.Success, page);
        return await PostAsync(http, "/admin/login", null, [new("issued", m.Groups[1].Value), new("nonce", m.Groups[2].Value), new("jid", jid), new("password", password)]);
    }

    /// <summary>Signs the admin in; returns the session cookie's value and the session's form token.</summary>
    internal static async Task<(string Cookie, string Csrf)> SignInAsAdminAsync(HttpClient http)
    {
        using var response = await SignInAsync(http, Admin, AdminPassword);
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.SeeOther), await response.Content.ReadAsStringAsync());
        var cookie = CookieOf(response);
        Assert.That(cookie, Is.Not.Null.And.Not.Empty);
        return (cookie!, await CsrfAsync(http, cookie!));
    }

    internal static string? CookieOf(HttpResponseMessage response) =>
        response.Headers.TryGetValues("Set-Cookie", out var values)
            ? values.Select(v => v.Split(';')[0]).Where(v => v.StartsWith(ConsoleHtmlCookie + "=", StringComparison.Ordinal)).Select(v => v[(ConsoleHtmlCookie.Length + 1)..]).FirstOrDefault()
            : null;

    internal static async Task<string> CsrfAsync(HttpClient http, string cookie)
    {
        using var page = await GetAsync(http, "/admin/", cookie);
        Assert.That(page.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        var m = CsrfField().Match(await page.Content.ReadAsStringAsync());
        Assert.That(m.Success);
        return WebUtility.HtmlDecode(m.Groups[1].Value);
    }

    /// <summary>SASL over STARTTLS from a raw client: "success" or "failure".</summary>
    private static async Task<string> XmppLoginAsync(TestServer server, string user, string password)
    {
        await using var c = await RawXmppClient.ConnectAsync(server.C2sPort);
        await c.OpenTlsAsync();
        return (await c.AuthenticateAsync("SCRAM-SHA-256", user, password)).Name;
    }

    [Test]
    public async Task Nothing_is_reachable_without_a_session()
    {
        await using var server = await StartAsync();
        using var http = Http(server);
        foreach (var cookie in new string?[] { null, "forged-session-id", new string('A', 43) })
        {
            foreach (var path in PagePaths)
            {
                using var r = await GetAsync(http, path, cookie);
                Assert.That(r.StatusCode, Is.EqualTo(HttpStatusCode.SeeOther), path);
                Assert.That(r.Headers.Location?.OriginalString, Is.EqualTo("/admin/login"), path);
            }

            foreach (var path in ActionPaths)
            {
                using var r = await PostAsync(http, path, cookie, [new("csrf", "x"), new("jid", "bob@localhost"), new("username", "mallory"), new("host", "localhost"), new("password", "p"), new("password2", "p"), new("confirm", "yes")]);
                Assert.That(r.StatusCode, Is.EqualTo(HttpStatusCode.Forbidden), path);
            }
        }

        Assert.That(await XmppLoginAsync(server, "bob", "bob-pass"), Is.EqualTo("success"), "bob's account and password are untouched");
        Assert.That(await server.Server.Context.Storage.Users.ExistsAsync("localhost", "mallory", CancellationToken.None), Is.False);

        // The sign-in page itself: the security headers, and no CORS for other origins' scripts.
        using var login = await GetAsync(http, "/admin/login", null);
        Assert.That(login.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(login.Headers.GetValues("Content-Security-Policy").Single(), Does.Contain("default-src 'self'").And.Contain("frame-ancestors 'none'").And.Contain("script-src 'self'"));
        Assert.That(login.Headers.GetValues("X-Frame-Options").Single(), Is.EqualTo("DENY"));
        Assert.That(login.Headers.GetValues("Referrer-Policy").Single(), Is.EqualTo("no-referrer"));
        Assert.That(login.Headers.CacheControl?.NoStore, Is.True);
        Assert.That(await login.Content.ReadAsStringAsync(), Does.Not.Contain("<script").And.Not.Contain("style="));
        using var css = await GetAsync(http, "/admin/console.css", null);
        Assert.That(css.Content.Headers.ContentType?.MediaType, Is.EqualTo("text/css"));
        using var preflight = new HttpRequestMessage(HttpMethod.Options, "/admin/users/add");
        preflight.Headers.Add("Origin", "https://evil.example");
        preflight.Headers.Add("Access-Control-Request-Method", "POST");
        using var answer = await http.SendAsync(preflight);
        Assert.That(answer.StatusCode, Is.EqualTo(HttpStatusCode.MethodNotAllowed));
        Assert.That(answer.Headers.Contains("Access-Control-Allow-Origin"), Is.False);
    }

    [Test]
    public async Task Sign_in_sets_a_strict_cookie_and_sign_out_ends_the_session()
    {
        await using var server = await StartAsync();
        using var http = Http(server);
        using var response = await SignInAsync(http, Admin, AdminPassword);
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.SeeOther));
        Assert.That(response.Headers.Location?.OriginalString, Is.EqualTo("/admin/"));
        var setCookie = response.Headers.GetValues("Set-Cookie").Single();
        var attributes = setCookie.Split(';').Skip(1).Select(a => a.Trim()).ToList();
        Assert.That(attributes, Does.Contain("HttpOnly").And.Contain("Secure").And.Contain("SameSite=Strict").And.Contain("Path=/admin/"));
        var cookie = CookieOf(response)!;
        Assert.That(Convert.FromBase64String(cookie.Replace('-', '+').Replace('_', '/') + "="), Has.Length.EqualTo(32), "a 256-bit id");
        Assert.That(server.Logs.Any(l => l.Contains(cookie, StringComparison.Ordinal)), Is.False, "the session id is never logged");

        foreach (var path in PagePaths)
        {
            using var page = await GetAsync(http, path, cookie);
            Assert.That(page.StatusCode, Is.EqualTo(path.EndsWith("no-such-page", StringComparison.Ordinal) ? HttpStatusCode.NotFound : HttpStatusCode.OK), path);
            Assert.That(page.Headers.CacheControl?.NoStore, Is.True, path);
        }

        var dashboard = await (await GetAsync(http, "/admin/", cookie)).Content.ReadAsStringAsync();
        Assert.That(dashboard, Does.Contain("Uptime").And.Contain("xmpp_stanzas_routed_total").And.Contain("localhost").And.Contain("self-signed"));
        var csrf = await CsrfAsync(http, cookie);

        using var signOut = await PostAsync(http, "/admin/logout", cookie, [new("csrf", csrf)]);
        Assert.That(signOut.StatusCode, Is.EqualTo(HttpStatusCode.SeeOther));
        Assert.That(signOut.Headers.GetValues("Set-Cookie").Single(), Does.Contain("Max-Age=0"));
        using var after = await GetAsync(http, "/admin/", cookie);
        Assert.That(after.StatusCode, Is.EqualTo(HttpStatusCode.SeeOther), "the old cookie no longer opens anything");
        using var action = await PostAsync(http, "/admin/users/add", cookie, [new("csrf", csrf), new("username", "mallory"), new("host", "localhost"), new("password", "p"), new("password2", "p")]);
        Assert.That(action.StatusCode, Is.EqualTo(HttpStatusCode.Forbidden));
    }

    [Test]
    public async Task Wrong_passwords_and_other_accounts_are_refused_and_throttled()
    {
        await using var server = await StartAsync(o => o with { Auth = o.Auth with { FailuresPerIp = 5, FailuresPerAccount = 0 } });
        using var http = Http(server);

        // A form without its nonce, or with a made-up one.
        using (var r = await PostAsync(http, "/admin/login", null, [new("jid", Admin), new("password", AdminPassword)]))
        {
            Assert.That(r.StatusCode, Is.EqualTo(HttpStatusCode.BadRequest));
            Assert.That(CookieOf(r), Is.Null);
        }

        using (var r = await PostAsync(http, "/admin/login", null, [new("issued", "1"), new("nonce", "00"), new("jid", Admin), new("password", AdminPassword)]))
        {
            Assert.That(r.StatusCode, Is.EqualTo(HttpStatusCode.BadRequest));
        }

        // The right password of an account that is not an admin, a wrong password, an unknown account, another
        // host: the same refusal, no cookie. Each counts against the address.
        foreach (var (jid, password) in new[] { ("bob@localhost", "bob-pass"), (Admin, "wrong"), ("nobody@localhost", "x"), ("admin@elsewhere.example", AdminPassword) })
        {
            using var r = await SignInAsync(http, jid, password);
            Assert.That(r.StatusCode, Is.EqualTo(HttpStatusCode.Forbidden), jid);
            Assert.That(CookieOf(r), Is.Null, jid);
            Assert.That(await r.Content.ReadAsStringAsync(), Does.Contain("Wrong address or password, or not an administrator."));
        }

        // The fifth failure blocks the address: now even the right password is refused, here and over XMPP,
        // because the console and SASL share the one throttle.
        using (var r = await SignInAsync(http, Admin, "wrong again"))
        {
            Assert.That(r.StatusCode, Is.EqualTo(HttpStatusCode.Forbidden));
        }

        using (var r = await SignInAsync(http, Admin, AdminPassword))
        {
            Assert.That(r.StatusCode, Is.EqualTo((HttpStatusCode)429));
            Assert.That(CookieOf(r), Is.Null);
        }

        Assert.That(await XmppLoginAsync(server, "admin", AdminPassword), Is.EqualTo("failure"), "SASL from the blocked address is refused too");
        Assert.That(server.Logs.Any(l => l.Contains(AdminPassword, StringComparison.Ordinal) || l.Contains("wrong again", StringComparison.Ordinal)), Is.False, "no password in the log");
    }

    [Test]
    public async Task Failures_at_xmpp_login_count_for_the_console_per_account()
    {
        await using var server = await StartAsync(o => o with { Auth = o.Auth with { FailuresPerAccount = 3 } });
        for (var i = 0; i < 3; i++)
        {
            Assert.That(await XmppLoginAsync(server, "admin", "guess" + i), Is.EqualTo("failure"));
        }

        using var http = Http(server);
        using var r = await SignInAsync(http, Admin, AdminPassword);
        Assert.That(r.StatusCode, Is.EqualTo(HttpStatusCode.Forbidden), "the account is blocked for a while, whatever the way in");
        Assert.That(CookieOf(r), Is.Null);
    }

    [Test]
    public async Task Posts_without_the_session_form_token_are_refused()
    {
        await using var server = await StartAsync();
        using var http = Http(server);
        var (cookie, csrf) = await SignInAsAdminAsync(http);
        KeyValuePair<string, string>[] add = [new("username", "carol"), new("host", "localhost"), new("password", "carol-pass"), new("password2", "carol-pass")];

        using (var r = await PostAsync(http, "/admin/users/add", cookie, add))
        {
            Assert.That(r.StatusCode, Is.EqualTo(HttpStatusCode.Forbidden), "no token");
        }

        using (var r = await PostAsync(http, "/admin/users/add", cookie, [.. add, new("csrf", csrf[..^1] + (csrf[^1] == 'A' ? 'B' : 'A'))]))
        {
            Assert.That(r.StatusCode, Is.EqualTo(HttpStatusCode.Forbidden), "a wrong token");
        }

        // Another session's token does not do either.
        using var other = Http(server);
        var (_, otherCsrf) = await SignInAsAdminAsync(other);
        using (var r = await PostAsync(http, "/admin/users/add", cookie, [.. add, new("csrf", otherCsrf)]))
        {
            Assert.That(r.StatusCode, Is.EqualTo(HttpStatusCode.Forbidden), "another session's token");
        }

        using (var r = await PostAsync(http, "/admin/users/add", cookie, [.. add, new("csrf", csrf)], origin: "https://evil.example"))
        {
            Assert.That(r.StatusCode, Is.EqualTo(HttpStatusCode.Forbidden), "from another origin");
        }

        using (var r = await PostAsync(http, "/admin/users/add", cookie, [.. add, new("csrf", csrf)], origin: "null", fetchSite: "cross-site"))
        {
            Assert.That(r.StatusCode, Is.EqualTo(HttpStatusCode.Forbidden), "from another site, by Sec-Fetch-Site");
        }

        Assert.That(await server.Server.Context.Storage.Users.ExistsAsync("localhost", "carol", CancellationToken.None), Is.False);
        using (var r = await PostAsync(http, "/admin/users/add", cookie, [.. add, new("csrf", csrf)], origin: http.BaseAddress!.GetLeftPart(UriPartial.Authority), fetchSite: "same-origin"))
        {
            Assert.That(r.StatusCode, Is.EqualTo(HttpStatusCode.SeeOther), "the form of this console, from its own origin");
        }

        // What Chromium sends for the console's own forms under Referrer-Policy no-referrer.
        using (var r = await PostAsync(http, "/admin/users/delete", cookie, [new("csrf", csrf), new("jid", "carol@localhost"), new("confirm", "yes")], origin: "null", fetchSite: "same-origin"))
        {
            Assert.That(r.StatusCode, Is.EqualTo(HttpStatusCode.SeeOther), "Origin: null with the token");
        }

        Assert.That(await server.Server.Context.Storage.Users.ExistsAsync("localhost", "carol", CancellationToken.None), Is.False);

    }

    [Test]
    public async Task Account_changes_made_here_are_what_xmpp_logins_see()
    {
        await using var server = await StartAsync();
        using var http = Http(server);
        var (cookie, csrf) = await SignInAsAdminAsync(http);

        using (var r = await PostAsync(http, "/admin/users/add", cookie, [new("csrf", csrf), new("username", "Carol"), new("host", "localhost"), new("password", "carol-pass"), new("password2", "carol-pass")]))
        {
            Assert.That(r.StatusCode, Is.EqualTo(HttpStatusCode.SeeOther));
            Assert.That(r.Headers.Location?.OriginalString, Is.EqualTo("/admin/user?jid=carol%40localhost&done=added"));
        }

        Assert.That(await XmppLoginAsync(server, "carol", "carol-pass"), Is.EqualTo("success"));
        using (var r = await PostAsync(http, "/admin/users/add", cookie, [new("csrf", csrf), new("username", "carol"), new("host", "localhost"), new("password", "x"), new("password2", "x")]))
        {
            Assert.That(r.StatusCode, Is.EqualTo(HttpStatusCode.Conflict));
            Assert.That(await r.Content.ReadAsStringAsync(), Does.Contain("carol@localhost exists already."));
        }

        using (var r = await PostAsync(http, "/admin/users/add", cookie, [new("csrf", csrf), new("username", "<b>x</b>"), new("host", "localhost"), new("password", "x"), new("password2", "x")]))
        {
            Assert.That(r.StatusCode, Is.EqualTo(HttpStatusCode.BadRequest));
            Assert.That(await r.Content.ReadAsStringAsync(), Does.Contain("&lt;b&gt;x&lt;/b&gt;").And.Not.Contain("<b>x</b>"), "what the request said is encoded");
        }

        var userPage = await (await GetAsync(http, "/admin/user?jid=carol%40localhost&done=added", cookie)).Content.ReadAsStringAsync();
        Assert.That(userPage, Does.Contain("The account was created."));

        using (var r = await PostAsync(http, "/admin/users/password", cookie, [new("csrf", csrf), new("jid", "carol@localhost"), new("password", "new-pass"), new("password2", "new-pass")]))
        {
            Assert.That(r.StatusCode, Is.EqualTo(HttpStatusCode.SeeOther));
        }

        Assert.That(await XmppLoginAsync(server, "carol", "carol-pass"), Is.EqualTo("failure"), "the old password");
        Assert.That(await XmppLoginAsync(server, "carol", "new-pass"), Is.EqualTo("success"), "the new password");

        // Deleting an account ends its session with not-authorized, as XEP-0133's delete-user does.
        await using var carol = await RawXmppClient.ConnectAsync(server.C2sPort);
        await carol.LoginAsync("carol", "new-pass");
        using (var r = await PostAsync(http, "/admin/users/delete", cookie, [new("csrf", csrf), new("jid", "carol@localhost")]))
        {
            Assert.That(r.StatusCode, Is.EqualTo(HttpStatusCode.BadRequest), "not without the confirmation");
        }

        using (var r = await PostAsync(http, "/admin/users/delete", cookie, [new("csrf", csrf), new("jid", "carol@localhost"), new("confirm", "yes")]))
        {
            Assert.That(r.StatusCode, Is.EqualTo(HttpStatusCode.SeeOther));
        }

        Assert.That(await carol.ReadStreamErrorAsync(), Is.EqualTo("not-authorized"));
        Assert.That(await XmppLoginAsync(server, "carol", "new-pass"), Is.EqualTo("failure"), "the account is gone");
        using (var r = await GetAsync(http, "/admin/user?jid=carol%40localhost", cookie))
        {
            Assert.That(r.StatusCode, Is.EqualTo(HttpStatusCode.NotFound));
        }
    }

    [Test]
    public async Task Sessions_are_listed_and_ended()
    {
        await using var server = await StartAsync();
        using var http = Http(server);
        var (cookie, csrf) = await SignInAsAdminAsync(http);
        await using var bob = await RawXmppClient.ConnectAsync(server.C2sPort);
        var bound = await bob.LoginAsync("bob", "bob-pass", resource: "phone");
        await using var bob2 = await RawXmppClient.ConnectAsync(server.C2sPort);
        await bob2.LoginAsync("bob", "bob-pass", resource: "laptop");
        await bob2.SendAsync("<presence><status>at work</status></presence>");
        await bob2.ReadUntilAsync(e => e.Name == "presence" && e.GetAttribute("from") == "bob@localhost/laptop");

        var page = await (await GetAsync(http, "/admin/sessions", cookie)).Content.ReadAsStringAsync();
        Assert.That(page, Does.Contain("bob@localhost/phone").And.Contain("bob@localhost/laptop").And.Contain("127.0.0.1:").And.Contain("Tls1"));
        var user = await (await GetAsync(http, "/admin/user?jid=bob%40localhost", cookie)).Content.ReadAsStringAsync();
        Assert.That(user, Does.Contain("bob@localhost/phone").And.Contain("Online now."));

        // The list is paged by address (keyset: 'after' the last address shown) and searched by address prefix.
        page = await (await GetAsync(http, "/admin/sessions?after=bob%40localhost%2Flaptop", cookie)).Content.ReadAsStringAsync();
        Assert.That(page, Does.Contain("bob@localhost/phone").And.Not.Contain("bob@localhost/laptop").And.Contain("First page"));
        page = await (await GetAsync(http, "/admin/sessions?q=BOB%40localhost%2Fl", cookie)).Content.ReadAsStringAsync();
        Assert.That(page, Does.Contain("bob@localhost/laptop").And.Not.Contain("bob@localhost/phone").And.Contain("1 matching"));

        using (var r = await PostAsync(http, "/admin/sessions/end", cookie, [new("csrf", csrf), new("jid", bound), new("back", "sessions")]))
        {
            Assert.That(r.StatusCode, Is.EqualTo(HttpStatusCode.SeeOther));
            Assert.That(r.Headers.Location?.OriginalString, Is.EqualTo("/admin/sessions?done=ended"));
        }

        Assert.That(await bob.ReadStreamErrorAsync(), Is.EqualTo("policy-violation"));
        page = await (await GetAsync(http, "/admin/sessions?done=ended", cookie)).Content.ReadAsStringAsync();
        Assert.That(page, Does.Not.Contain("bob@localhost/phone").And.Contain("bob@localhost/laptop").And.Contain("The session was ended."));

        using (var r = await PostAsync(http, "/admin/sessions/end", cookie, [new("csrf", csrf), new("jid", "bob@localhost"), new("back", "user")]))
        {
            Assert.That(r.Headers.Location?.OriginalString, Is.EqualTo("/admin/user?jid=bob%40localhost&done=ended-all"));
        }

        Assert.That(await bob2.ReadStreamErrorAsync(), Is.EqualTo("policy-violation"));

        // The last activity is stored as the session goes (by the presence module): wait for it, within bounds.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        do
        {
            user = await (await GetAsync(http, "/admin/user?jid=bob%40localhost", cookie)).Content.ReadAsStringAsync();
        }
        while (!user.Contains("Last logged out", StringComparison.Ordinal) && DateTime.UtcNow < deadline && await Task.Delay(50).ContinueWith(_ => true));

        Assert.That(user, Does.Contain("Last logged out").And.Contain("<p class=\"muted\">None.</p>"));
    }

    [Test]
    public async Task The_user_list_pages_and_searches_thousands_of_accounts()
    {
        await using var server = await StartAsync();
        var storage = server.Server.Context.Storage;
        ScramCredential[] creds = [ScramCredential.Create(ScramHash.Sha256, "x", 4096)];
        await Task.WhenAll(Enumerable.Range(0, 3000).Select(i => storage.Users.CreateAsync("localhost", "u" + i.ToString("D4", System.Globalization.CultureInfo.InvariantCulture), creds, CancellationToken.None)));
        using var http = Http(server);
        var (cookie, _) = await SignInAsAdminAsync(http);

        async Task<(List<string> Users, string? Next)> PageAsync(string query)
        {
            using var r = await GetAsync(http, "/admin/users?" + query, cookie);
            Assert.That(r.StatusCode, Is.EqualTo(HttpStatusCode.OK));
            var html = await r.Content.ReadAsStringAsync();
            var users = Regex.Matches(html, "<a href=\"/admin/user\\?jid=[^\"]+\">([^<]+)</a>").Select(m => m.Groups[1].Value).ToList();
            var next = Regex.Match(html, "<a href=\"/admin/users\\?([^\"]+)\" rel=\"next\">");
            return (users, next.Success ? WebUtility.HtmlDecode(next.Groups[1].Value) : null);
        }

        var all = new List<string>();
        string? query = "q=";
        var pages = 0;
        while (query is not null)
        {
            var (users, next) = await PageAsync(query);
            Assert.That(users, Has.Count.LessThanOrEqualTo(ConsoleModule.PageSize));
            all.AddRange(users);
            query = next;
            pages++;
        }

        var expected = Enumerable.Range(0, 3000).Select(i => "u" + i.ToString("D4", System.Globalization.CultureInfo.InvariantCulture) + "@localhost").Prepend("bob@localhost").Prepend("admin@localhost").ToList();
        Assert.That(all, Is.EqualTo(expected), "every account once, in order");
        Assert.That(pages, Is.EqualTo((3002 / ConsoleModule.PageSize) + 1));

        var (first, more) = await PageAsync("q=U12");
        Assert.That(first, Is.EqualTo(Enumerable.Range(1200, 50).Select(i => $"u{i}@localhost")), "a prefix, case-folded as usernames are");
        var (second, last) = await PageAsync(more!);
        Assert.That(second, Is.EqualTo(Enumerable.Range(1250, 50).Select(i => $"u{i}@localhost")));
        Assert.That((await PageAsync(last!)).Users, Is.Empty);
        Assert.That((await PageAsync("q=zz")).Users, Is.Empty);
        Assert.That((await PageAsync("q=b")).Users, Is.EqualTo(new[] { "bob@localhost" }));
    }
}
