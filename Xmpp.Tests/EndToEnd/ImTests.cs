using System.Diagnostics;
using Xmpp.Core;
using Xmpp.Core.Xml;
using Xmpp.Server.Config;

namespace Xmpp.Tests.EndToEnd;

/// <summary>Instant messaging core (RFC 6121) end to end with several raw-XML clients.</summary>
[Parallelizable(ParallelScope.All)]
public sealed class ImTests
{
    private const string Alice = "alice@localhost:wonderland";
    private const string Bob = "bob@localhost:builder";
    private const string Carol = "carol@localhost:singer";

    internal static async Task<RawXmppClient> OnlineAsync(TestServer server, string user, string password, string resource = "r", string presence = "<presence/>", bool roster = true)
    {
        var client = await RawXmppClient.ConnectAsync(server.C2sPort);
        await client.LoginAsync(user, password, resource: resource);
        if (roster)
        {
            await client.IqAsync("<iq type='get' id='roster0'><query xmlns='jabber:iq:roster'/></iq>");
        }

        if (presence.Length > 0)
        {
            await client.SendAsync(presence);
        }

        await client.DrainAsync();
        return client;
    }

    /// <summary>Mutual subscription through the protocol (A subscribes, B approves, and the other way round).</summary>
    internal static async Task BefriendAsync(RawXmppClient a, string aJid, RawXmppClient b, string bJid)
    {
        await a.SendAsync($"<presence type='subscribe' to='{bJid}'/>");
        await a.DrainAsync();
        await b.SendAsync($"<presence type='subscribed' to='{aJid}'/>");
        await b.SendAsync($"<presence type='subscribe' to='{aJid}'/>");
        await b.DrainAsync();
        await a.SendAsync($"<presence type='subscribed' to='{bJid}'/>");
        await a.DrainAsync();
        await b.DrainAsync();
    }

    private static Element? PushItem(IEnumerable<Element> seen, string jid) =>
        seen.Where(e => e.Name == "iq" && e.GetAttribute("type") == "set")
            .Select(e => e.Child("query", Ns.Roster)?.Child("item"))
            .LastOrDefault(i => i?.GetAttribute("jid") == jid);

    private static bool Has(IEnumerable<Element> seen, string name, string? type, string from) =>
        seen.Any(e => e.Name == name && e.GetAttribute("type") == type && e.GetAttribute("from") == from);

    [Test]
    public async Task Subscription_handshake_with_pushes_and_presence()
    {
        await using var server = await TestServer.StartAsync(null, Alice, Bob, Carol);
        await using var alice = await OnlineAsync(server, "alice", "wonderland");
        await using var bob = await OnlineAsync(server, "bob", "builder", presence: "<presence><show>away</show></presence>");

        await alice.SendAsync("<presence type='subscribe' to='bob@localhost'><status>it is Alice</status></presence>");
        var aliceSeen = await alice.DrainAsync();
        Assert.That(PushItem(aliceSeen, "bob@localhost")!.GetAttribute("ask"), Is.EqualTo("subscribe"));
        var bobSeen = await bob.DrainAsync();
        var request = bobSeen.Single(e => e.Name == "presence" && e.GetAttribute("type") == "subscribe");
        Assert.That(request.GetAttribute("from"), Is.EqualTo("alice@localhost"), "stamped with the bare JID");
        Assert.That(request.ChildText("status", Ns.Client), Is.EqualTo("it is Alice"));

        await bob.SendAsync("<presence type='subscribed' to='alice@localhost'/>");
        bobSeen = await bob.DrainAsync();
        Assert.That(PushItem(bobSeen, "alice@localhost")!.GetAttribute("subscription"), Is.EqualTo("from"));
        aliceSeen = await alice.DrainAsync();
        Assert.That(Has(aliceSeen, "presence", "subscribed", "bob@localhost"), Is.True);
        var item = PushItem(aliceSeen, "bob@localhost")!;
        Assert.That(item.GetAttribute("subscription"), Is.EqualTo("to"));
        Assert.That(item.GetAttribute("ask"), Is.Null);
        var bobPresence = aliceSeen.Single(e => e.Name == "presence" && e.GetAttribute("from") == "bob@localhost/r");
        Assert.That(bobPresence.ChildText("show", Ns.Client), Is.EqualTo("away"), "§3.1.5: the new subscriber gets current presence");

        // Bob changes his presence: Alice (a subscriber) sees it, Bob's presence does not reach non-subscribers.
        await using var carol = await OnlineAsync(server, "carol", "singer");
        await bob.SendAsync("<presence><show>dnd</show></presence>");
        await bob.DrainAsync();
        aliceSeen = await alice.DrainAsync();
        Assert.That(aliceSeen.Any(e => e.Name == "presence" && e.ChildText("show", Ns.Client) == "dnd"), Is.True);
        Assert.That((await carol.DrainAsync()).Where(e => e.Name == "presence"), Is.Empty, "not a subscriber");
    }

    [Test]
    public async Task Pending_request_is_kept_while_offline_and_delivered_at_next_login()
    {
        await using var server = await TestServer.StartAsync(null, Alice, Bob);
        await using var alice = await OnlineAsync(server, "alice", "wonderland");
        await alice.SendAsync("<presence type='subscribe' to='bob@localhost'><status>remember me</status></presence>");
        await alice.DrainAsync();

        await using var bob = await OnlineAsync(server, "bob", "builder", presence: string.Empty);
        Assert.That(await bob.DrainAsync(), Is.Empty, "nothing before initial presence");
        await bob.SendAsync("<presence/>");
        var seen = await bob.DrainAsync();
        var request = seen.Single(e => e.Name == "presence" && e.GetAttribute("type") == "subscribe");
        Assert.That(request.GetAttribute("from"), Is.EqualTo("alice@localhost"));
        Assert.That(request.ChildText("status", Ns.Client), Is.EqualTo("remember me"));

        // The pending request is not a roster item until Bob answers it.
        var roster = await bob.IqAsync("<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>");
        Assert.That(roster.Child("query", Ns.Roster)!.ElementCount(), Is.Zero);

        // Denying it leaves nothing behind; Alice's pending-out is cleared.
        await bob.SendAsync("<presence type='unsubscribed' to='alice@localhost'/>");
        await bob.DrainAsync();
        var aliceSeen = await alice.DrainAsync();
        Assert.That(Has(aliceSeen, "presence", "unsubscribed", "bob@localhost"), Is.True);
        Assert.That(PushItem(aliceSeen, "bob@localhost")!.GetAttribute("ask"), Is.Null);
    }

    [Test]
    public async Task Login_probes_contacts_and_the_new_resource_sees_them_at_once()
    {
        await using var server = await TestServer.StartAsync(null, Alice, Bob);
        await using (var a = await OnlineAsync(server, "alice", "wonderland"))
        await using (var b0 = await OnlineAsync(server, "bob", "builder", resource: "setup"))
        {
            await BefriendAsync(a, "alice@localhost", b0, "bob@localhost");
            await a.CloseAsync();
        }

        await using var bob = await OnlineAsync(server, "bob", "builder", resource: "laptop", presence: "<presence><show>xa</show><status>reading</status></presence>");
        await using var alice = await RawXmppClient.ConnectAsync(server.C2sPort);
        await alice.LoginAsync("alice", "wonderland", resource: "phone");
        await alice.SendAsync("<presence/>");
        var bobPresence = await alice.ReadUntilAsync(e => e.Name == "presence" && e.GetAttribute("from") == "bob@localhost/laptop");
        Assert.That(bobPresence.ChildText("status", Ns.Client), Is.EqualTo("reading"));
        var toBob = await bob.ReadUntilAsync(e => e.Name == "presence" && e.GetAttribute("from") == "alice@localhost/phone");
        Assert.That(toBob.GetAttribute("type"), Is.Null, "Bob sees Alice's initial presence");
    }

    [TestCase("close")]
    [TestCase("reset")]
    [TestCase("stream-error")]
    [TestCase("idle")]
    public async Task Contacts_see_unavailable_however_the_session_ends(string how)
    {
        var idle = TimeSpan.FromSeconds(3);
        await using var server = await TestServer.StartAsync(o => o with { Limits = o.Limits with { IdleTimeout = idle } }, Alice, Bob, Carol);
        await using var alice = await OnlineAsync(server, "alice", "wonderland");
        await using var bob = await OnlineAsync(server, "bob", "builder");
        await using var carol = await OnlineAsync(server, "carol", "singer");
        await BefriendAsync(alice, "alice@localhost", bob, "bob@localhost");

        // Carol is not a contact: she only got directed presence, and still hears that Alice left.
        await alice.SendAsync("<presence to='carol@localhost'/>");
        await alice.DrainAsync();
        await carol.DrainAsync();

        using var keepalive = new CancellationTokenSource();
        var keepBobAndCarolAlive = Task.Run(async () =>
        {
            while (!keepalive.IsCancellationRequested)
            {
                await bob.SendAsync(" ");
                await carol.SendAsync(" ");
                await Task.Delay(250, CancellationToken.None);
            }
        });

        var watch = Stopwatch.StartNew();
        switch (how)
        {
            case "close":
                await alice.CloseAsync();
                break;
            case "reset":
                alice.Abort();
                break;
            case "stream-error":
                await alice.SendAsync("<message><body>broken</bod></message>");
                Assert.That(await alice.ReadStreamErrorAsync(), Is.EqualTo("not-well-formed"));
                break;
            default:
                // Alice's client stops answering (a dead network): the server pings, then gives up.
                break;
        }

        var gone = await bob.ReadUntilAsync(e => e.Name == "presence" && e.GetAttribute("from") == "alice@localhost/r" && e.GetAttribute("type") == "unavailable");
        var elapsed = watch.Elapsed;
        Assert.That(gone, Is.Not.Null);
        await carol.ReadUntilAsync(e => e.Name == "presence" && e.GetAttribute("from") == "alice@localhost/r" && e.GetAttribute("type") == "unavailable");
        if (how == "idle")
        {
            Assert.That(elapsed, Is.LessThan(idle + TimeSpan.FromSeconds(1.5)), "within the idle timeout (plus the sweep period)");
            Assert.That(server.Logs.Any(l => l.Contains("nothing received", StringComparison.Ordinal)), Is.True);
        }

        await keepalive.CancelAsync();
        await keepBobAndCarolAlive;
    }

    [Test]
    public async Task Idle_client_that_answers_pings_stays_connected()
    {
        await using var server = await TestServer.StartAsync(o => o with { Limits = o.Limits with { IdleTimeout = TimeSpan.FromSeconds(2) } }, Alice);
        await using var alice = await OnlineAsync(server, "alice", "wonderland");
        for (var i = 0; i < 2; i++)
        {
            var ping = await alice.ReadUntilAsync(e => e.Name == "iq" && e.GetAttribute("type") == "get");
            Assert.That(ping.Child("ping", "urn:xmpp:ping"), Is.Not.Null);
            await alice.SendAsync($"<iq type='result' id='{ping.GetAttribute("id")}' to='localhost'/>");
        }

        Assert.That(await alice.DrainAsync(), Is.Not.Null, "still connected after two idle periods");
    }

    [Test]
    public async Task Bare_jid_messages_follow_priority_and_type_rules()
    {
        await using var server = await TestServer.StartAsync(null, Alice, Bob);
        await using var alice = await OnlineAsync(server, "alice", "wonderland");
        await using var high = await OnlineAsync(server, "bob", "builder", resource: "high", presence: "<presence><priority>5</priority></presence>");
        await using var low = await OnlineAsync(server, "bob", "builder", resource: "low", presence: "<presence><priority>1</priority></presence>");

        async Task<(List<Element> High, List<Element> Low, List<Element> Alice)> SendAsync(string xml)
        {
            await alice.SendAsync(xml);
            var a = await alice.DrainAsync();
            return (await high.DrainAsync(), await low.DrainAsync(), a);
        }

        static bool Got(List<Element> seen, string id) => seen.Any(e => e.Name == "message" && e.GetAttribute("id") == id);

        var r = await SendAsync("<message to='bob@localhost' type='chat' id='c1'><body>hi</body></message>");
        Assert.That((Got(r.High, "c1"), Got(r.Low, "c1")), Is.EqualTo((true, false)), "chat: highest priority only");

        r = await SendAsync("<message to='bob@localhost' type='headline' id='h1'><body>news</body></message>");
        Assert.That((Got(r.High, "h1"), Got(r.Low, "h1")), Is.EqualTo((true, true)), "headline: every non-negative resource");

        r = await SendAsync("<message to='bob@localhost' type='groupchat' id='g1'><body>?</body></message>");
        Assert.That((Got(r.High, "g1"), Got(r.Low, "g1")), Is.EqualTo((false, false)));
        Assert.That(r.Alice.Single(e => e.GetAttribute("id") == "g1").Child("error")!.FirstElement()!.Name, Is.EqualTo("service-unavailable"));

        r = await SendAsync("<message to='bob@localhost/gone' type='chat' id='c2'><body>hi</body></message>");
        Assert.That(Got(r.High, "c2"), Is.True, "a missing resource falls back to the bare JID");

        r = await SendAsync("<message to='bob@localhost/low' type='chat' id='c3'><body>just you</body></message>");
        Assert.That((Got(r.High, "c3"), Got(r.Low, "c3")), Is.EqualTo((false, true)), "full JID: that resource");

        r = await SendAsync("<message to='bob@localhost' type='error' id='e1'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>");
        Assert.That(Got(r.High, "e1") || Got(r.Low, "e1") || Got(r.Alice, "e1"), Is.False, "an error to a bare JID is dropped, never bounced");

        await high.SendAsync("<presence><priority>-1</priority></presence>");
        await high.DrainAsync();
        r = await SendAsync("<message to='bob@localhost' id='n1'><body>normal</body></message>");
        Assert.That((Got(r.High, "n1"), Got(r.Low, "n1")), Is.EqualTo((false, true)), "negative priority gets no bare-JID messages");
    }

    [Test]
    public async Task Offline_messages_are_stored_and_delivered_with_delay_then_removed()
    {
        await using var server = await TestServer.StartAsync(null, Alice, Bob);
        await using var alice = await OnlineAsync(server, "alice", "wonderland");
        await alice.SendAsync("<message to='bob@localhost' type='chat' id='o1'><body>first</body></message>");
        await alice.SendAsync("<message to='bob@localhost/phone' type='chat' id='o2'><body>second</body></message>");
        await alice.SendAsync("<message to='bob@localhost' type='chat' id='o3'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>");
        await alice.SendAsync("<message to='bob@localhost' type='headline' id='o4'><body>old news</body></message>");
        Assert.That((await alice.DrainAsync()).Where(e => e.Name == "message"), Is.Empty, "stored, not bounced");

        // RFC 6121 §8.5.3.2.1: a normal message to a full JID that is not connected is refused, not stored.
        await alice.SendAsync("<message to='bob@localhost/phone' id='n1'><body>not for later</body></message>");
        var refused = (await alice.DrainAsync()).Single(e => e.Name == "message");
        Assert.That((refused.GetAttribute("id"), refused.GetAttribute("type"), refused.Child("error")?.FirstElement()?.Name), Is.EqualTo(("n1", "error", "service-unavailable")));

        // A session with negative priority does not take them (XEP-0160: non-negative presence).
        await using (var shy = await OnlineAsync(server, "bob", "builder", resource: "shy", presence: "<presence><priority>-5</priority></presence>"))
        {
            Assert.That((await shy.DrainAsync()).Where(e => e.Name == "message"), Is.Empty);
            await alice.SendAsync("<message to='bob@localhost' type='chat' id='o5'><body>third</body></message>");
            await alice.DrainAsync();
            Assert.That((await shy.DrainAsync()).Where(e => e.Name == "message"), Is.Empty);
            await shy.CloseAsync();
        }

        await using var bob = await RawXmppClient.ConnectAsync(server.C2sPort);
        await bob.LoginAsync("bob", "builder");
        await bob.SendAsync("<presence/>");
        var messages = (await bob.DrainAsync()).Where(e => e.Name == "message").ToList();
        Assert.That(messages.Select(m => m.GetAttribute("id")), Is.EqualTo(new[] { "o1", "o2", "o5" }), "in order; no chat-state-only or headline");
        var delay = messages[0].Child("delay", "urn:xmpp:delay")!;
        Assert.That(delay.GetAttribute("from"), Is.EqualTo("localhost"));
        Assert.That(DateTimeOffset.Parse(delay.GetAttribute("stamp")!, System.Globalization.CultureInfo.InvariantCulture), Is.EqualTo(DateTimeOffset.UtcNow).Within(TimeSpan.FromMinutes(1)));
        Assert.That(messages[0].GetAttribute("from"), Is.EqualTo("alice@localhost/r"));
        await bob.CloseAsync();

        await using var again = await OnlineAsync(server, "bob", "builder", presence: string.Empty);
        await again.SendAsync("<presence/>");
        Assert.That((await again.DrainAsync()).Where(e => e.Name == "message"), Is.Empty, "delivered messages are removed");
        Assert.That(server.Logs.Any(l => l.Contains("Stored an offline message", StringComparison.Ordinal) && l.Contains("first", StringComparison.Ordinal)), Is.False, "no bodies in the log");
    }

    [Test]
    public async Task Offline_storage_has_a_per_user_limit()
    {
        var modules = new Dictionary<string, IReadOnlyDictionary<string, string>>(ServerOptions.DefaultModules)
        {
            ["offline"] = new Dictionary<string, string> { ["max-per-user"] = "2" },
        };
        await using var server = await TestServer.StartAsync(o => o with { Modules = modules }, Alice, Bob);
        await using var alice = await OnlineAsync(server, "alice", "wonderland");
        for (var i = 1; i <= 3; i++)
        {
            await alice.SendAsync($"<message to='bob@localhost' id='m{i}'><body>{i}</body></message>");
        }

        var seen = await alice.DrainAsync();
        var bounce = seen.Single(e => e.Name == "message");
        Assert.That(bounce.GetAttribute("id"), Is.EqualTo("m3"));
        Assert.That(bounce.GetAttribute("type"), Is.EqualTo("error"));
        Assert.That(bounce.Child("error")!.FirstElement()!.Name, Is.EqualTo("service-unavailable"));
        Assert.That(bounce.ChildText("body", Ns.Client), Is.EqualTo("3"), "the original comes back");
    }

    [Test]
    public async Task Roster_pushes_reach_every_interested_resource()
    {
        await using var server = await TestServer.StartAsync(null, Bob);
        await using var one = await OnlineAsync(server, "bob", "builder", resource: "one");
        await using var two = await OnlineAsync(server, "bob", "builder", resource: "two");
        await using var uninterested = await OnlineAsync(server, "bob", "builder", resource: "three", roster: false);
        await one.SendAsync("<iq type='set' id='s1'><query xmlns='jabber:iq:roster'><item jid='carol@localhost' name='Carol'><group>Choir</group></item></query></iq>");
        var seenByOne = await one.DrainAsync();
        Assert.That(seenByOne.Single(e => e.GetAttribute("id") == "s1").GetAttribute("type"), Is.EqualTo("result"));
        var push1 = PushItem(seenByOne, "carol@localhost");
        var push2 = PushItem(await two.DrainAsync(), "carol@localhost");
        Assert.That(push1?.GetAttribute("name"), Is.EqualTo("Carol"));
        Assert.That(push2?.GetAttribute("name"), Is.EqualTo("Carol"));
        Assert.That(PushItem(await uninterested.DrainAsync(), "carol@localhost"), Is.Null, "§2.1.6: only resources that asked for the roster");
    }

    [Test]
    public async Task Roster_versioning_returns_empty_result_when_unchanged()
    {
        await using var server = await TestServer.StartAsync(null, Bob);
        await using var bob = await RawXmppClient.ConnectAsync(server.C2sPort);
        await bob.LoginAsync("bob", "builder");
        var features = await FeaturesAfterAuthAsync(server);
        Assert.That(features.Child("ver", "urn:xmpp:features:rosterver"), Is.Not.Null);
        Assert.That(features.Child("sub", "urn:xmpp:features:pre-approval"), Is.Not.Null);

        var first = await bob.IqAsync("<iq type='get' id='v1'><query xmlns='jabber:iq:roster' ver=''/></iq>");
        var ver = first.Child("query", Ns.Roster)!.GetAttribute("ver");
        Assert.That(ver, Is.Not.Null);
        var same = await bob.IqAsync($"<iq type='get' id='v2'><query xmlns='jabber:iq:roster' ver='{ver}'/></iq>");
        Assert.That(same.GetAttribute("type"), Is.EqualTo("result"));
        Assert.That(same.FirstElement(), Is.Null, "§2.6.3: empty result when the version is current");

        await bob.SendAsync("<iq type='set' id='v3'><query xmlns='jabber:iq:roster'><item jid='carol@localhost'/></query></iq>");
        var push = await bob.ReadUntilAsync(e => e.Name == "iq" && e.GetAttribute("type") == "set");
        var newVer = push.Child("query", Ns.Roster)!.GetAttribute("ver");
        Assert.That(newVer, Is.Not.Null.And.Not.EqualTo(ver));
        await bob.ReadUntilAsync(e => e.GetAttribute("id") == "v3");
        var changed = await bob.IqAsync($"<iq type='get' id='v4'><query xmlns='jabber:iq:roster' ver='{ver}'/></iq>");
        Assert.That(changed.Child("query", Ns.Roster)!.GetAttribute("ver"), Is.EqualTo(newVer));
        Assert.That(changed.Child("query", Ns.Roster)!.ElementCount(), Is.EqualTo(1));
    }

    private static async Task<Element> FeaturesAfterAuthAsync(TestServer server)
    {
        await using var c = await RawXmppClient.ConnectAsync(server.C2sPort);
        await c.OpenAsync();
        await c.StartTlsAsync();
        await c.OpenAsync();
        Assert.That((await c.AuthenticateAsync("SCRAM-SHA-256", "bob", "builder")).Name, Is.EqualTo("success"));
        return await c.OpenAsync();
    }

    [Test]
    public async Task Roster_set_validation_uses_the_rfc_errors()
    {
        await using var server = await TestServer.StartAsync(null, Alice, Bob);
        await using var bob = await OnlineAsync(server, "bob", "builder");
        async Task<string?> ErrorOf(string query)
        {
            var r = await bob.IqAsync($"<iq type='set' id='x{query.Length}'><query xmlns='jabber:iq:roster'>{query}</query></iq>");
            return r.Child("error")?.FirstElement()?.Name;
        }

        Assert.Multiple(async () =>
        {
            Assert.That(await ErrorOf("<item jid='carol@localhost'><group>A</group><group>A</group></item>"), Is.EqualTo("bad-request"));
            Assert.That(await ErrorOf($"<item jid='carol@localhost' name='{new string('n', 1100)}'/>"), Is.EqualTo("not-acceptable"));
            Assert.That(await ErrorOf("<item jid='carol@localhost'><group></group></item>"), Is.EqualTo("not-acceptable"));
            Assert.That(await ErrorOf("<item jid='carol@localhost/res'/>"), Is.EqualTo("bad-request"));
            Assert.That(await ErrorOf("<item jid='a@localhost'/><item jid='b@localhost'/>"), Is.EqualTo("bad-request"));
            Assert.That(await ErrorOf("<item jid='nobody@localhost' subscription='remove'/>"), Is.EqualTo("item-not-found"));
            Assert.That(await ErrorOf("<item jid='bob@localhost'/>"), Is.EqualTo("not-allowed"));
        });

        await using var alice = await OnlineAsync(server, "alice", "wonderland");
        var foreign = await alice.IqAsync("<iq type='get' id='f1' to='bob@localhost'><query xmlns='jabber:iq:roster'/></iq>");
        Assert.That(foreign.Child("error")!.FirstElement()!.Name, Is.EqualTo("forbidden"));
    }

    [Test]
    public async Task Removing_a_contact_cancels_both_subscriptions()
    {
        await using var server = await TestServer.StartAsync(null, Alice, Bob);
        await using var alice = await OnlineAsync(server, "alice", "wonderland");
        await using var bob = await OnlineAsync(server, "bob", "builder");
        await BefriendAsync(alice, "alice@localhost", bob, "bob@localhost");

        await alice.IqAsync("<iq type='set' id='rm'><query xmlns='jabber:iq:roster'><item jid='bob@localhost' subscription='remove'/></query></iq>");
        var seen = await bob.DrainAsync();
        Assert.That(Has(seen, "presence", "unsubscribe", "alice@localhost"), Is.True);
        Assert.That(Has(seen, "presence", "unsubscribed", "alice@localhost"), Is.True);
        Assert.That(Has(seen, "presence", "unavailable", "alice@localhost/r"), Is.True);
        Assert.That(PushItem(seen, "alice@localhost")!.GetAttribute("subscription"), Is.EqualTo("none"));
    }

    [Test]
    public async Task Pre_approved_request_is_accepted_without_asking()
    {
        await using var server = await TestServer.StartAsync(null, Alice, Bob);
        await using var alice = await OnlineAsync(server, "alice", "wonderland");
        await using var bob = await OnlineAsync(server, "bob", "builder");
        await bob.SendAsync("<presence type='subscribed' to='alice@localhost'/>");
        var bobSeen = await bob.DrainAsync();
        Assert.That(PushItem(bobSeen, "alice@localhost")!.GetAttribute("approved"), Is.EqualTo("true"));
        Assert.That(await alice.DrainAsync(), Is.Empty, "a pre-approval is not sent");

        await alice.SendAsync("<presence type='subscribe' to='bob@localhost'/>");
        var aliceSeen = await alice.DrainAsync();
        Assert.That(Has(aliceSeen, "presence", "subscribed", "bob@localhost"), Is.True);
        Assert.That(PushItem(aliceSeen, "bob@localhost")!.GetAttribute("subscription"), Is.EqualTo("to"));
        bobSeen = await bob.DrainAsync();
        Assert.That(bobSeen.Any(e => e.GetAttribute("type") == "subscribe"), Is.False, "Bob is not asked");
        var item = PushItem(bobSeen, "alice@localhost")!;
        Assert.That((item.GetAttribute("subscription"), item.GetAttribute("approved")), Is.EqualTo(("from", (string?)null)));
    }

    [Test]
    public async Task Probe_of_an_offline_contact_gets_last_status_and_time_and_last_activity_answers()
    {
        await using var server = await TestServer.StartAsync(null, Alice, Bob, Carol);
        await using (var a0 = await OnlineAsync(server, "alice", "wonderland", resource: "setup"))
        await using (var b0 = await OnlineAsync(server, "bob", "builder"))
        {
            await BefriendAsync(a0, "alice@localhost", b0, "bob@localhost");
            await a0.CloseAsync();
            await b0.SendAsync("<presence type='unavailable'><status>gone fishing</status></presence>");
            await b0.CloseAsync();
        }

        await using var alice = await RawXmppClient.ConnectAsync(server.C2sPort);
        await alice.LoginAsync("alice", "wonderland");
        await alice.SendAsync("<presence/>");
        var answer = await alice.ReadUntilAsync(e => e.Name == "presence" && e.GetAttribute("from") == "bob@localhost");
        Assert.That(answer.GetAttribute("type"), Is.EqualTo("unavailable"));
        Assert.That(answer.ChildText("status", Ns.Client), Is.EqualTo("gone fishing"));
        Assert.That(answer.Child("delay", "urn:xmpp:delay")?.GetAttribute("stamp"), Is.Not.Null);

        var last = await alice.IqAsync("<iq type='get' id='l1' to='bob@localhost'><query xmlns='jabber:iq:last'/></iq>");
        Assert.That(last.GetAttribute("type"), Is.EqualTo("result"), last.ToString());
        Assert.That(int.Parse(last.Child("query", "jabber:iq:last")!.GetAttribute("seconds")!, System.Globalization.CultureInfo.InvariantCulture), Is.InRange(0, 60));
        Assert.That(last.Child("query", "jabber:iq:last")!.Text, Is.EqualTo("gone fishing"));

        await using var carol = await OnlineAsync(server, "carol", "singer");
        var denied = await carol.IqAsync("<iq type='get' id='l2' to='bob@localhost'><query xmlns='jabber:iq:last'/></iq>");
        Assert.That(denied.Child("error")!.FirstElement()!.Name, Is.EqualTo("forbidden"));

        // A probe from someone who is not subscribed reveals nothing: Bob's server answers 'unsubscribed'
        // (RFC 6121 §4.3.2), which Carol's server consumes because she has no subscription to cancel.
        await carol.SendAsync("<presence type='probe' to='bob@localhost'/>");
        Assert.That((await carol.DrainAsync()).Where(e => e.Name == "presence"), Is.Empty);
    }

    [Test]
    public async Task Requests_to_a_nonexistent_account_look_like_requests_to_an_account_that_ignores_them()
    {
        await using var server = await TestServer.StartAsync(null, Alice, Bob);
        await using var alice = await OnlineAsync(server, "alice", "wonderland");

        // RFC 6121 §8.5.1: a subscription request to a missing account is silently ignored, exactly as one to an
        // existing account whose owner has not answered: the request stays pending, nobody says unsubscribed.
        foreach (var to in new[] { "nobody@localhost", "bob@localhost" })
        {
            await alice.SendAsync($"<presence type='subscribe' to='{to}'/>");
            var seen = await alice.DrainAsync();
            Assert.That(seen.Where(e => e.Name == "presence"), Is.Empty, to);
            Assert.That((PushItem(seen, to)!.GetAttribute("subscription"), PushItem(seen, to)!.GetAttribute("ask")), Is.EqualTo(("none", "subscribe")), to);
        }

        // An iq to the missing account's bare or full JID is service-unavailable, whatever it asks (here: XEP-0199).
        foreach (var to in new[] { "nobody@localhost", "nobody@localhost/r" })
        {
            var pong = await alice.IqAsync($"<iq type='get' id='p' to='{to}'><ping xmlns='urn:xmpp:ping'/></iq>");
            Assert.That(pong.Child("error", "jabber:client")?.FirstElement()?.Name, Is.EqualTo("service-unavailable"), to);
        }

        var bobPong = await alice.IqAsync("<iq type='get' id='p2' to='bob@localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
        Assert.That(bobPong.GetAttribute("type"), Is.EqualTo("result"), "the server answers a ping for an existing account");

        // XEP-0030 §8: disco#info is service-unavailable both for the missing account and for an existing one that
        // has not granted a subscription, with a node or not; disco#items of the missing account is an empty result.
        foreach (var (to, node) in new[] { ("nobody@localhost", ""), ("nobody@localhost", " node='n'"), ("bob@localhost", ""), ("bob@localhost", " node='n'") })
        {
            var info = await alice.IqAsync($"<iq type='get' id='i' to='{to}'><query xmlns='http://jabber.org/protocol/disco#info'{node}/></iq>");
            Assert.That(info.Child("error", "jabber:client")?.FirstElement()?.Name, Is.EqualTo("service-unavailable"), to + node);
        }

        foreach (var node in new[] { "", " node='n'" })
        {
            var items = await alice.IqAsync($"<iq type='get' id='it' to='nobody@localhost'><query xmlns='http://jabber.org/protocol/disco#items'{node}/></iq>");
            Assert.That((items.GetAttribute("type"), items.FirstElement()!.ElementCount()), Is.EqualTo(("result", 0)), node);
        }

        var own = await alice.IqAsync("<iq type='get' id='o' to='alice@localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
        Assert.That(own.GetAttribute("type"), Is.EqualTo("result"), "the account itself may ask");
    }

    [Test]
    public async Task Removing_an_unanswered_request_is_item_not_found_and_keeps_the_request()
    {
        await using var server = await TestServer.StartAsync(null, Alice, Bob);
        await using var alice = await OnlineAsync(server, "alice", "wonderland");
        await using var bob = await OnlineAsync(server, "bob", "builder");
        await alice.SendAsync("<presence type='subscribe' to='bob@localhost'/>");
        await alice.DrainAsync();
        await bob.DrainAsync();
        var removed = await bob.IqAsync("<iq type='set' id='rm'><query xmlns='jabber:iq:roster'><item jid='alice@localhost' subscription='remove'/></query></iq>");
        Assert.That(removed.Child("error")!.FirstElement()!.Name, Is.EqualTo("item-not-found"));
        await bob.SendAsync("<presence type='subscribed' to='alice@localhost'/>");
        Assert.That(PushItem(await bob.DrainAsync(), "alice@localhost")!.GetAttribute("subscription"), Is.EqualTo("from"), "the request was still there to approve");
    }

    [Test]
    public async Task Iq_to_a_full_jid_is_routed_or_answered_with_an_error()
    {
        await using var server = await TestServer.StartAsync(null, Alice, Bob);
        await using var alice = await OnlineAsync(server, "alice", "wonderland");
        await using var bob = await OnlineAsync(server, "bob", "builder");
        await alice.SendAsync("<iq type='get' id='q1' to='bob@localhost/r'><query xmlns='jabber:iq:version'/></iq>");
        var request = await bob.ReadUntilAsync(e => e.Name == "iq" && e.GetAttribute("id") == "q1");
        Assert.That(request.GetAttribute("from"), Is.EqualTo("alice@localhost/r"));
        await bob.SendAsync("<iq type='result' id='q1' to='alice@localhost/r'><query xmlns='jabber:iq:version'><name>raw</name></query></iq>");
        var answer = await alice.ReadUntilAsync(e => e.Name == "iq" && e.GetAttribute("id") == "q1");
        Assert.That(answer.GetAttribute("type"), Is.EqualTo("result"));

        var missing = await alice.IqAsync("<iq type='get' id='q2' to='bob@localhost/nowhere'><query xmlns='jabber:iq:version'/></iq>");
        Assert.That(missing.Child("error")!.FirstElement()!.Name, Is.EqualTo("service-unavailable"));
    }
}
