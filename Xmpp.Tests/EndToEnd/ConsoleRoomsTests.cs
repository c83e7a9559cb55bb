using System.Globalization;
using System.Net;
using System.Text.RegularExpressions;
using Xmpp.Core;
using Xmpp.Core.Addressing;
using Xmpp.Server.Config;
using Xmpp.Server.Modules.Console;
using Xmpp.Server.S2s;
using static Xmpp.Tests.EndToEnd.ConsoleTests;

namespace Xmpp.Tests.EndToEnd;

/// <summary>
/// The console's Rooms and Federation pages against the real server: rooms that clients made, listed with their
/// occupants and settings, destroyed from the console as an owner's §10.9 destroy does it (the occupants' clients
/// are told, storage forgets the room); stored rooms listed and paged without loading the service; and two servers
/// federating on loopback, whose streams each console lists with their authentication and certificate.
/// </summary>
[Parallelizable(ParallelScope.All)]
public sealed partial class ConsoleRoomsTests
{
    private const string Room = "tea@conference.localhost";
    private const string RoomKind = "muc-room";

    [GeneratedRegex("<a href=\"/admin/room\\?jid=[^\"]+\">([^<]+)</a>")]
    private static partial Regex RoomLink();

    [GeneratedRegex("<a href=\"/admin/rooms\\?([^\"]+)\" rel=\"next\">")]
    private static partial Regex NextPage();

    private static async Task<string> PageAsync(HttpClient http, string path, string cookie, HttpStatusCode status = HttpStatusCode.OK)
    {
        using var r = await GetAsync(http, path, cookie);
        Assert.That(r.StatusCode, Is.EqualTo(status), path);
        return await r.Content.ReadAsStringAsync();
    }

    /// <summary>Every room the list shows, following its "Next page" links from <paramref name="query"/>; and how many pages.</summary>
    private static async Task<(List<string> Rooms, int Pages)> AllRoomsAsync(HttpClient http, string cookie, string query)
    {
        var rooms = new List<string>();
        var pages = 0;
        for (string? q = query; q is not null; pages++)
        {
            var html = await PageAsync(http, "/admin/rooms?" + q, cookie);
            var page = RoomLink().Matches(html).Select(m => m.Groups[1].Value).ToList();
            Assert.That(page, Has.Count.LessThanOrEqualTo(ConsoleModule.PageSize));
            rooms.AddRange(page);
            var next = NextPage().Match(html);
            q = next.Success ? WebUtility.HtmlDecode(next.Groups[1].Value) : null;
        }

        return (rooms, pages);
    }

    [Test]
    public async Task A_room_is_listed_with_its_occupants_and_destroyed_from_the_console_as_its_owner_would()
    {
        await using var server = await StartAsync(null, "alice@localhost:alice-pass");
        var documents = server.Server.Context.Storage.Documents;
        await using var alice = await MucTests.LoginAsync(server, "alice");
        await using var bob = await MucTests.LoginAsync(server, "bob");
        await MucTests.JoinAsync(alice, "Alice", Room);
        await MucTests.InstantRoomAsync(alice, Room, MucTests.Field("roomname", "Tea &lt;party&gt;") + MucTests.Field("persistentroom", "1")
            + MucTests.Field("moderatedroom", "1") + MucTests.Field("whois", "anyone"));
        await alice.SendAsync($"<message to='{Room}' type='groupchat' id='s'><subject>Darjeeling</subject></message>");
        await alice.ReadUntilAsync(e => e.Name == "message" && e.Child("subject", Ns.Client) is not null);
        var ban = await alice.IqAsync($"<iq type='set' id='ban' to='{Room}'><query xmlns='{MucTests.MucAdmin}'><item affiliation='outcast' jid='mallory@evil.example'><reason>spam</reason></item></query></iq>");
        Assert.That(ban.GetAttribute("type"), Is.EqualTo("result"), ban.ToString());
        var entry = await MucTests.JoinAsync(bob, "Bob", Room);
        Assert.That(entry[^1].GetAttribute("type"), Is.Not.EqualTo("error"), entry[^1].ToString());
        Assert.That(await documents.GetHostAsync("conference.localhost", RoomKind, "tea", CancellationToken.None), Is.Not.Null, "a persistent room is stored");

        using var http = Http(server);
        var (cookie, csrf) = await SignInAsAdminAsync(http);
        var list = await PageAsync(http, "/admin/rooms", cookie);
        Assert.That(list, Does.Contain("<a href=\"/admin/rooms\" class=\"current\">Rooms</a>").And.Contain("<a href=\"/admin/federation\">Federation</a>"));
        Assert.That(list, Does.Contain($"<a href=\"/admin/room?jid=tea%40conference.localhost\">{Room}</a>"));
        Assert.That(list, Does.Contain("Tea &lt;party&gt;").And.Not.Contain("Tea <party>"), "the room's name is HTML-encoded");
        Assert.That(list, Does.Contain("<td>Darjeeling</td><td class=\"num\">2</td><td>persistent</td><td>public</td><td>open</td><td>yes</td><td>anyone (non-anonymous)</td>"));

        var page = await PageAsync(http, "/admin/room?jid=tea%40conference.localhost", cookie);
        Assert.That(page, Does.Contain("<tr><th>Subject</th><td>Darjeeling (set by Alice)</td></tr>").And.Contain("<tr><th>Moderated</th><td>yes: only occupants with voice may speak</td></tr>"));
        Assert.That(page, Does.Contain("<tr><td>Alice</td><td>alice@localhost/r</td><td>moderator</td><td>owner</td></tr>"));
        Assert.That(page, Does.Contain("<tr><td>Bob</td><td>bob@localhost/r</td><td>visitor</td><td>none</td></tr>"), "a moderated room makes visitors of newcomers");
        Assert.That(page, Does.Contain("<tr><td>owner</td><td>alice@localhost</td>").And.Contain("<tr><td>outcast</td><td>mallory@evil.example</td><td></td><td>spam</td></tr>"));
        Assert.That(page, Does.Contain("action=\"/admin/rooms/destroy\"").And.Contain("name=\"confirm\""));

        KeyValuePair<string, string>[] destroy = [new("jid", Room), new("reason", "Closing time"), new("alternate", "lounge@conference.localhost"), new("confirm", "yes")];
        using (var r = await PostAsync(http, "/admin/rooms/destroy", cookie, destroy))
        {
            Assert.That(r.StatusCode, Is.EqualTo(HttpStatusCode.Forbidden), "no form token");
        }

        using (var r = await PostAsync(http, "/admin/rooms/destroy", cookie, [.. destroy.Where(f => f.Key != "confirm"), new("csrf", csrf)]))
        {
            Assert.That(r.StatusCode, Is.EqualTo(HttpStatusCode.BadRequest), "not without “I am sure”");
        }

        using (var r = await PostAsync(http, "/admin/rooms/destroy", cookie, [new("csrf", csrf), new("jid", "tea@localhost"), new("confirm", "yes")]))
        {
            Assert.That(r.StatusCode, Is.EqualTo(HttpStatusCode.BadRequest), "not a room service's address");
        }

        Assert.That(await PageAsync(http, "/admin/rooms", cookie), Does.Contain(Room), "nothing was destroyed so far");
        using (var r = await PostAsync(http, "/admin/rooms/destroy", cookie, [.. destroy, new("csrf", csrf)]))
        {
            Assert.That(r.StatusCode, Is.EqualTo(HttpStatusCode.SeeOther));
            Assert.That(r.Headers.Location?.OriginalString, Is.EqualTo("/admin/rooms?service=conference.localhost&done=room-destroyed"));
        }

        // XEP-0045 §10.9: each occupant gets unavailable presence with <destroy/>, the alternate venue and the reason.
        foreach (var (client, nick) in new[] { (alice, "Alice"), (bob, "Bob") })
        {
            var gone = await client.ReadUntilAsync(e => e.Name == "presence" && e.GetAttribute("from") == $"{Room}/{nick}");
            Assert.That(gone.GetAttribute("type"), Is.EqualTo("unavailable"), gone.ToString());
            var d = gone.Child("x", MucTests.MucUser)?.Child("destroy", MucTests.MucUser);
            Assert.That(d, Is.Not.Null, gone.ToString());
            Assert.That((d!.GetAttribute("jid"), d.ChildText("reason", MucTests.MucUser)), Is.EqualTo(("lounge@conference.localhost", "Closing time")));
        }

        list = await PageAsync(http, "/admin/rooms?service=conference.localhost&done=room-destroyed", cookie);
        Assert.That(list, Does.Contain("The room was destroyed; its occupants were told.").And.Not.Contain(Room));
        await PageAsync(http, "/admin/room?jid=tea%40conference.localhost", cookie, HttpStatusCode.NotFound);
        Assert.That(await documents.GetHostAsync("conference.localhost", RoomKind, "tea", CancellationToken.None), Is.Null, "gone from storage");
        Assert.That(server.Logs.Any(l => l.Contains($"Console: admin@localhost destroyed the room {Room} from 127.0.0.1", StringComparison.Ordinal)), Is.True);
        using (var r = await PostAsync(http, "/admin/rooms/destroy", cookie, [.. destroy, new("csrf", csrf)]))
        {
            Assert.That(r.StatusCode, Is.EqualTo(HttpStatusCode.NotFound), "destroyed already");
        }

        // The room is free again: a join creates it anew.
        var again = await MucTests.JoinAsync(alice, "Alice", Room);
        Assert.That(MucTests.Codes(again.First(e => e.Name == "presence")), Does.Contain("201"));
    }

    [Test]
    public async Task Stored_rooms_are_listed_and_paged_without_loading_the_service_and_then_from_memory()
    {
        await using var server = await StartAsync();
        var documents = server.Server.Context.Storage.Documents;
        static string Name(int i) => "r" + i.ToString("D3", CultureInfo.InvariantCulture);
        for (var i = 0; i < 120; i++)
        {
            var config = $"<config name='Room {i}' persistent='true' public='{(i % 2 == 0 ? "true" : "false")}' members-only='{(i == 5 ? "true" : "false")}' password='{(i == 5 ? "secret" : string.Empty)}'/>";
            if (i != 5)
            {
                config = config.Replace(" password=''", string.Empty, StringComparison.Ordinal);
            }

            await documents.SetHostAsync("conference.localhost", RoomKind, Name(i),
                $"<room xmlns='urn:xmppserver:muc'>{config}<subject by='Bob'>topic {i}</subject><affiliation jid='bob@localhost' affiliation='owner'/><affiliation jid='carol@localhost' affiliation='member' nick='Carol'/></room>",
                CancellationToken.None);
        }

        using var http = Http(server);
        var (cookie, csrf) = await SignInAsAdminAsync(http);
        var expected = Enumerable.Range(0, 120).Select(i => Name(i) + "@conference.localhost").ToList();
        var (rooms, pages) = await AllRoomsAsync(http, cookie, "q=");
        Assert.That((rooms, pages), Is.EqualTo((expected, 3)), "every stored room once, in order, 50 a page");
        var first = await PageAsync(http, "/admin/rooms", cookie);
        Assert.That(first, Does.Contain("120 rooms").And.Contain("has not loaded its rooms"));
        Assert.That(first, Does.Contain("<td>Room 5</td><td>topic 5</td><td class=\"num\">0</td><td>persistent</td><td>hidden</td><td>members only, password</td>"));
        Assert.That((await AllRoomsAsync(http, cookie, "q=R11")).Rooms, Is.EqualTo(expected.Skip(110)), "a prefix, case-folded as room names are");

        var room = await PageAsync(http, "/admin/room?jid=r005%40conference.localhost", cookie);
        Assert.That(room, Does.Contain("in storage (the service has not loaded its rooms)").And.Contain("<tr><th>Password</th><td>required (not shown)</td></tr>").And.Not.Contain("secret"));
        Assert.That(room, Does.Contain("<tr><td>owner</td><td>bob@localhost</td>").And.Contain("<tr><td>member</td><td>carol@localhost</td><td>Carol</td>"));
        await PageAsync(http, "/admin/room?jid=nothing%40conference.localhost", cookie, HttpStatusCode.NotFound);
        Assert.That(server.Logs.Any(l => l.Contains("persistent rooms loaded", StringComparison.Ordinal)), Is.False, "listing did not load the rooms");

        // Destroying one loads the service, as the administrators' destroy command does; the list then reads memory.
        using (var r = await PostAsync(http, "/admin/rooms/destroy", cookie, [new("csrf", csrf), new("jid", "r007@conference.localhost"), new("confirm", "yes")]))
        {
            Assert.That(r.StatusCode, Is.EqualTo(HttpStatusCode.SeeOther));
        }

        Assert.That(server.Logs.Any(l => l.Contains("conference.localhost: 120 persistent rooms loaded", StringComparison.Ordinal)), Is.True);
        Assert.That(await documents.GetHostAsync("conference.localhost", RoomKind, "r007", CancellationToken.None), Is.Null);
        (rooms, pages) = await AllRoomsAsync(http, cookie, "q=");
        Assert.That((rooms, pages), Is.EqualTo((expected.Where(r => r != "r007@conference.localhost").ToList(), 3)));
        Assert.That(await PageAsync(http, "/admin/rooms", cookie), Does.Contain("119 rooms").And.Not.Contain("has not loaded"));
        Assert.That(await PageAsync(http, "/admin/room?jid=r005%40conference.localhost", cookie), Does.Contain("<tr><th>State</th><td>in memory</td></tr>"));
    }

    [Test]
    public async Task Without_the_muc_module_the_rooms_page_says_so()
    {
        await using var server = await StartAsync(o => o with { Modules = new Dictionary<string, IReadOnlyDictionary<string, string>>(o.Modules.Where(m => m.Key != "muc")) });
        using var http = Http(server);
        var (cookie, csrf) = await SignInAsAdminAsync(http);
        Assert.That(await PageAsync(http, "/admin/rooms", cookie), Does.Contain("The multi-user chat module (<code>&lt;muc/&gt;</code>) is not loaded"));
        await PageAsync(http, "/admin/room?jid=tea%40conference.localhost", cookie, HttpStatusCode.NotFound);
        using var r = await PostAsync(http, "/admin/rooms/destroy", cookie, [new("csrf", csrf), new("jid", Room), new("confirm", "yes")]);
        Assert.That(r.StatusCode, Is.EqualTo(HttpStatusCode.BadRequest));
    }

    // ---- federation -----------------------------------------------------------------------------------------

    /// <summary>The console on a federating server, its account the administrator.</summary>
    private static ServerOptions WithConsole(string domain, ServerOptions o) => o with
    {
        Modules = new Dictionary<string, IReadOnlyDictionary<string, string>>(o.Modules) { ["console"] = new Dictionary<string, string>() },
        Admins = [Jid.Parse(domain == "a.test" ? "alice@a.test" : "bob@b.test")],
        Listeners = [.. o.Listeners, new ListenerOptions(ListenerKind.Https, "127.0.0.1", 0)],
    };

    private static async Task<(string Cookie, string Csrf)> SignInAsync(HttpClient http, string jid, string password)
    {
        using var response = await ConsoleTests.SignInAsync(http, jid, password);
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.SeeOther), await response.Content.ReadAsStringAsync());
        var cookie = CookieOf(response)!;
        return (cookie, await CsrfAsync(http, cookie));
    }

    /// <summary>The federation page cut into its outgoing and incoming sections.</summary>
    private static async Task<(string Outgoing, string Incoming)> FederationAsync(HttpClient http, string cookie)
    {
        var html = await PageAsync(http, "/admin/federation", cookie);
        var incoming = html.IndexOf("<h2>Incoming</h2>", StringComparison.Ordinal);
        var components = html.IndexOf("<h2>Components</h2>", StringComparison.Ordinal);
        Assert.That(incoming, Is.GreaterThan(0).And.LessThan(components));
        return (html[..incoming], html[incoming..components]);
    }

    /// <summary>Waits, within bounds, until the server's streams satisfy <paramref name="done"/> (a stream ends on its own task).</summary>
    private static async Task<IReadOnlyList<S2sStreamInfo>> StreamsAsync(TestServer server, Func<IReadOnlyList<S2sStreamInfo>, bool> done)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        var streams = server.Server.Context.S2s.Streams();
        while (!done(streams) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20);
            streams = server.Server.Context.S2s.Streams();
        }

        Assert.That(done(streams), Is.True, string.Join("\n", streams));
        return streams;
    }

    [Test]
    public async Task Federated_streams_are_listed_with_dialback_and_one_is_ended_from_the_console()
    {
        var (a, b) = await FederationTests.StartPairAsync(WithConsole);
        await using var _a = a;
        await using var _b = b;
        await using var alice = await FederationTests.OnlineAsync(a, "alice", "apw", "a.test");
        await using var bob = await FederationTests.OnlineAsync(b, "bob", "bpw", "b.test");
        await alice.SendAsync("<message to='bob@b.test' type='chat' id='f1'><body>over dialback</body></message>");
        await bob.ReadUntilAsync(e => e.Name == "message");

        // The snapshot API: a.test's outgoing stream to b.test, and b.test's incoming one from a.test.
        var outgoing = a.Server.Context.S2s.Streams().Single(s => s.Direction == S2sDirection.Outgoing && s.Claimed == "b.test");
        Assert.That((outgoing.Local, outgoing.State, outgoing.DirectTls), Is.EqualTo(("a.test", "Ready", false)));
        Assert.That(outgoing.Peers.Select(p => (p.Domain, p.Authentication)), Is.EqualTo(new[] { ("b.test", S2sAuthentication.Dialback) }));
        Assert.That(outgoing.Peers[0].CertificateProblem, Is.EqualTo("certificate not issued by a trusted authority"), "self-signed: accepted for dialback");
        Assert.That(outgoing.Tls, Does.StartWith("Tls1"));
        Assert.That(outgoing.Remote, Does.StartWith("127.0.0.1:"));
        Assert.That(outgoing.Stanzas, Is.GreaterThanOrEqualTo(1));
        Assert.That(outgoing.ConnectionId, Is.Not.Null);
        var incoming = b.Server.Context.S2s.Streams().First(s => s.Direction == S2sDirection.Incoming && s.Peers.Any(p => p.Domain == "a.test"));
        Assert.That((incoming.Local, incoming.Claimed, incoming.State), Is.EqualTo(("b.test", "a.test", "Authenticated")));
        Assert.That(incoming.Peers.Single().Authentication, Is.EqualTo(S2sAuthentication.Dialback));
        Assert.That(incoming.Stanzas, Is.GreaterThanOrEqualTo(1));

        // The pages.
        using var httpA = Http(a);
        using var httpB = Http(b);
        var (cookieA, csrfA) = await SignInAsync(httpA, "alice@a.test", "apw");
        var (cookieB, _) = await SignInAsync(httpB, "bob@b.test", "bpw");
        var (outA, _) = await FederationAsync(httpA, cookieA);
        Assert.That(outA, Does.Contain("<tr><td>a.test</td><td>b.test</td><td>127.0.0.1:").And.Contain("<td>Ready</td><td>dialback (XEP-0220)</td>"));
        Assert.That(outA, Does.Contain("not verified (certificate not issued by a trusted authority): accepted for dialback"));
        Assert.That(outA, Does.Contain($"name=\"id\" value=\"{outgoing.ConnectionId}\""));
        var (_, inB) = await FederationAsync(httpB, cookieB);
        Assert.That(inB, Does.Contain("<tr><td>b.test</td><td>a.test</td>").And.Contain("<td>Authenticated</td><td>dialback (XEP-0220)</td>"));
        Assert.That(inB, Does.Contain("the domain was proved by dialback"));

        // End: a.test closes its stream as the idle timeout would; the next message opens a new one.
        using (var r = await PostAsync(httpA, "/admin/federation/end", cookieA, [new("id", outgoing.ConnectionId!.Value.ToString(CultureInfo.InvariantCulture))]))
        {
            Assert.That(r.StatusCode, Is.EqualTo(HttpStatusCode.Forbidden), "no form token");
        }

        using (var r = await PostAsync(httpA, "/admin/federation/end", cookieA, [new("csrf", csrfA), new("id", outgoing.ConnectionId!.Value.ToString(CultureInfo.InvariantCulture))]))
        {
            Assert.That(r.StatusCode, Is.EqualTo(HttpStatusCode.SeeOther));
            Assert.That(r.Headers.Location?.OriginalString, Is.EqualTo("/admin/federation?done=s2s-ended"));
        }

        await a.WaitForLogAsync("Closing the s2s stream to b.test (ended by alice@a.test in the console)");
        await StreamsAsync(a, streams => streams.All(s => s.ConnectionId != outgoing.ConnectionId));
        await alice.SendAsync("<message to='bob@b.test' type='chat' id='f2'><body>again</body></message>");
        Assert.That((await bob.ReadUntilAsync(e => e.Name == "message")).ChildText("body", Ns.Client), Is.EqualTo("again"));
        var reopened = a.Server.Context.S2s.Streams().Single(s => s.Direction == S2sDirection.Outgoing && s.Claimed == "b.test");
        Assert.That(reopened.ConnectionId, Is.Not.EqualTo(outgoing.ConnectionId));

        using (var r = await PostAsync(httpA, "/admin/federation/end", cookieA, [new("csrf", csrfA), new("id", outgoing.ConnectionId!.Value.ToString(CultureInfo.InvariantCulture))]))
        {
            Assert.That(r.Headers.Location?.OriginalString, Is.EqualTo("/admin/federation?done=s2s-none"), "that stream is gone");
        }
    }

    [Test]
    public async Task Streams_authenticated_by_sasl_external_show_verified_certificates()
    {
        var dir = FederationTests.WriteTestCa("a.test", "b.test");
        try
        {
            var (a, b) = await FederationTests.StartPairAsync((domain, o) => WithConsole(domain, o) with
            {
                Hosts = [new HostOptions(domain, Path.Combine(dir, domain + ".crt"), Path.Combine(dir, domain + ".key"))],
                S2s = o.S2s with { CaFile = Path.Combine(dir, "ca.pem"), AllowDialback = false },
            });
            await using var _a = a;
            await using var _b = b;
            await using var alice = await FederationTests.OnlineAsync(a, "alice", "apw", "a.test");
            await using var bob = await FederationTests.OnlineAsync(b, "bob", "bpw", "b.test");
            await alice.SendAsync("<message to='bob@b.test' type='chat' id='m1'><body>over EXTERNAL</body></message>");
            await bob.ReadUntilAsync(e => e.Name == "message");

            var outgoing = a.Server.Context.S2s.Streams().Single(s => s.Direction == S2sDirection.Outgoing && s.Claimed == "b.test");
            Assert.That(outgoing.Peers.Single(), Is.EqualTo(new S2sPeer("b.test", S2sAuthentication.SaslExternal, null)));
            var incoming = b.Server.Context.S2s.Streams().First(s => s.Direction == S2sDirection.Incoming && s.Peers.Any(p => p.Domain == "a.test"));
            Assert.That(incoming.Peers.Single(), Is.EqualTo(new S2sPeer("a.test", S2sAuthentication.SaslExternal, null)));

            using var http = Http(b);
            var (cookie, _) = await SignInAsync(http, "bob@b.test", "bpw");
            var (_, inB) = await FederationAsync(http, cookie);
            Assert.That(inB, Does.Contain("<td>SASL EXTERNAL (certificate, XEP-0178)</td>").And.Contain("<td>verified (trusted chain, name matches)</td>"));
            Assert.That(await PageAsync(http, "/admin/federation", cookie), Does.Contain("Dialback not allowed (certificates required)"));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
