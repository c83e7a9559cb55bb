using Xmpp.Core.Xml;
using Xmpp.Server.Config;

namespace Xmpp.Tests.EndToEnd;

/// <summary>XEP-0198 stream management: acknowledgements, resumption, and no loss when a session ends.</summary>
public sealed class StreamManagementTests
{
    private const string Sm = "urn:xmpp:sm:3";

    [Test]
    public async Task Enabling_before_authentication_is_answered_failed_and_the_stream_goes_on()
    {
        await using var server = await TestServer.StartAsync(null, "alice@localhost:wonderland");
        await using var alice = await RawXmppClient.ConnectAsync(server.C2sPort);
        await alice.OpenTlsAsync();

        // XEP-0198 §3: "The server SHALL enforce this order and return a <failed/> element".
        await alice.SendAsync($"<enable xmlns='{Sm}' resume='true'/>");
        var failed = await alice.ReadAsync();
        Assert.That((failed.Name, failed.Namespace, failed.FirstElement()?.Name), Is.EqualTo(("failed", Sm, "unexpected-request")));

        var result = await alice.AuthenticateAsync("SCRAM-SHA-256", "alice", "wonderland");
        Assert.That(result.Name, Is.EqualTo("success"), "the stream is still usable");
    }

    [Test]
    public async Task Acks_count_stanzas_both_ways()
    {
        await using var server = await TestServer.StartAsync(null, "alice@localhost:wonderland", "bob@localhost:builder");
        await using var alice = await RawXmppClient.ConnectAsync(server.C2sPort);
        await alice.LoginAsync("alice", "wonderland");

        await alice.SendAsync($"<enable xmlns='{Sm}'/>");
        var enabled = await alice.ReadUntilAsync(e => e.Namespace == Sm);
        Assert.That(enabled.Name, Is.EqualTo("enabled"));
        Assert.That(enabled.GetAttribute("id"), Is.Null, "no resumption unless asked for");

        await alice.SendAsync("<presence/>");
        await alice.SendAsync("<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
        await alice.SendAsync($"<r xmlns='{Sm}'/>");
        var first = new List<Element>();
        while (!first.Any(e => e.Is("a", Sm)))
        {
            first.Add(await alice.ReadAsync());
        }

        // The client's two stanzas were handled; the server sent two (the presence echo and the ping
        // result), requesting an acknowledgement after the first and not again while it is unanswered.
        Assert.That(first.Single(e => e.Is("a", Sm)).GetAttribute("h"), Is.EqualTo("2"));
        Assert.That(first.Select(e => e.Name), Is.EqualTo(new[] { "presence", "r", "iq", "a" }));
        await alice.SendAsync($"<a xmlns='{Sm}' h='2'/>");

        // Answered, so the next stanza brings a new request (the stream is handled in order).
        await alice.SendAsync("<iq type='get' id='p2' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
        Assert.That((await alice.ReadAsync()).GetAttribute("id"), Is.EqualTo("p2"));
        Assert.That((await alice.ReadAsync()).Is("r", Sm), Is.True);

        // Three stanzas sent so far: claiming more is a stream error.
        await alice.SendAsync($"<a xmlns='{Sm}' h='3'/>");
        await alice.SendAsync($"<a xmlns='{Sm}' h='99'/>");
        Assert.That(await alice.ReadStreamErrorAsync(), Is.EqualTo("undefined-condition"));
    }

    [Test]
    public async Task A_dropped_session_is_resumed_with_nothing_lost_or_repeated_and_contacts_never_see_it_leave()
    {
        await using var server = await TestServer.StartAsync(null, "alice@localhost:wonderland", "bob@localhost:builder");
        var alice = await ImTests.OnlineAsync(server, "alice", "wonderland", "phone");
        await using var bob = await ImTests.OnlineAsync(server, "bob", "builder", "desk");
        await ImTests.BefriendAsync(alice, "alice@localhost", bob, "bob@localhost");
        await alice.SendAsync($"<enable xmlns='{Sm}' resume='true'/>");
        var enabled = await alice.ReadUntilAsync(e => e.Is("enabled", Sm));
        var id = enabled.GetAttribute("id")!;
        Assert.That(enabled.GetAttribute("resume"), Is.EqualTo("true"));

        // Bob sends three; Alice acknowledges the first only, then her network goes away.
        for (var i = 1; i <= 3; i++)
        {
            await bob.SendAsync($"<message to='alice@localhost/phone' type='chat' id='m{i}'><body>message {i}</body></message>");
        }

        await bob.DrainAsync();
        var received = new List<string>();
        while (received.Count < 3)
        {
            var e = await alice.ReadAsync();
            if (e.Name == "message")
            {
                received.Add(e.ChildText("body", "jabber:client")!);
            }
        }

        await alice.SendAsync($"<a xmlns='{Sm}' h='1'/>");
        await alice.DrainAsync();
        alice.Abort();
        await alice.DisposeAsync();
        await server.WaitForLogAsync("Connection lost for alice@localhost/phone");

        // While she is away Bob writes twice more and sees no unavailable presence.
        await bob.SendAsync("<message to='alice@localhost/phone' type='chat' id='m4'><body>message 4</body></message>");
        await bob.SendAsync("<message to='alice@localhost' type='chat' id='m5'><body>message 5</body></message>");
        var bobSaw = await bob.DrainAsync();
        Assert.That(bobSaw.Where(e => e.Name == "presence" && e.GetAttribute("type") == "unavailable"), Is.Empty);
        Assert.That(bobSaw.Where(e => e.Name == "message"), Is.Empty, "nothing bounced");

        // A new connection resumes: everything after the first, once, in order.
        await using var again = await RawXmppClient.ConnectAsync(server.C2sPort);
        var features = await again.AuthenticateOnlyAsync("alice", "wonderland");
        Assert.That(features.Child("sm", Sm), Is.Not.Null);
        await again.SendAsync($"<resume xmlns='{Sm}' previd='{id}' h='{received.Count(b => b == "message 1")}'/>");
        var resumed = await again.ReadAsync();
        Assert.That(resumed.Name, Is.EqualTo("resumed"), resumed.ToString());
        var replayed = new List<string>();
        foreach (var e in await again.DrainAsync())
        {
            if (e.Name == "message")
            {
                // XEP-0203: those that arrived while she was away say when.
                var delayed = e.Child("delay", "urn:xmpp:delay") is not null;
                replayed.Add(e.ChildText("body", "jabber:client")! + (delayed ? " (delayed)" : string.Empty));
            }
        }

        Assert.That(replayed, Is.EqualTo(new[] { "message 2", "message 3", "message 4 (delayed)", "message 5 (delayed)" }));

        // The session goes on with the same address and presence.
        await bob.SendAsync("<message to='alice@localhost/phone' type='chat'><body>welcome back</body></message>");
        await bob.DrainAsync();
        Assert.That((await again.DrainAsync()).Single(e => e.Name == "message").ChildText("body", "jabber:client"), Is.EqualTo("welcome back"));
        Assert.That((await bob.DrainAsync()).Where(e => e.Name == "presence"), Is.Empty);
    }

    [Test]
    public async Task Unacknowledged_messages_go_to_offline_storage_when_the_session_expires_or_closes()
    {
        var sm = new Dictionary<string, string> { ["resume-timeout"] = "1" };
        var modules = new Dictionary<string, IReadOnlyDictionary<string, string>>(ServerOptions.DefaultModules) { ["sm"] = sm };
        await using var server = await TestServer.StartAsync(o => o with { Modules = modules }, "alice@localhost:wonderland", "bob@localhost:builder");
        await using var bob = await ImTests.OnlineAsync(server, "bob", "builder", "desk");

        foreach (var clean in new[] { false, true })
        {
            var alice = await ImTests.OnlineAsync(server, "alice", "wonderland", "phone");
            await alice.SendAsync($"<enable xmlns='{Sm}' resume='true'/>");
            await alice.ReadUntilAsync(e => e.Is("enabled", Sm));
            await bob.SendAsync($"<message to='alice@localhost/phone' type='chat'><body>unacked {clean}</body></message>");
            await bob.DrainAsync();
            await alice.ReadUntilAsync(e => e.Name == "message");
            if (clean)
            {
                // Closed by the client: not resumable, ends now; what it never acknowledged is kept.
                await alice.CloseAsync();
            }
            else
            {
                // Until the resumption time (1 s) is over and the session has ended.
                var ended = server.Logs.Count(l => l.Contains("handled at session end", StringComparison.Ordinal));
                alice.Abort();
                await server.WaitForLogAsync("handled at session end", ended + 1);
            }

            await alice.DisposeAsync();
            Assert.That((await bob.DrainAsync()).Where(e => e.Name == "message"), Is.Empty, "kept, not bounced");

            await using var later = await RawXmppClient.ConnectAsync(server.C2sPort);
            await later.LoginAsync("alice", "wonderland", resource: "laptop");
            await later.SendAsync("<presence/>");
            var offline = await later.ReadUntilAsync(e => e.Name == "message");
            Assert.That(offline.ChildText("body", "jabber:client"), Is.EqualTo($"unacked {clean}"));
            Assert.That((await later.DrainAsync()).Where(e => e.Name == "message"), Is.Empty, "exactly once");
            await later.CloseAsync();
        }
    }

    [Test]
    public async Task A_server_shutdown_while_a_session_waits_keeps_its_unacknowledged_messages()
    {
        var dataDir = Path.Combine(Path.GetTempPath(), "xmpp-sm-" + Guid.NewGuid().ToString("N"));
        ServerOptions Options(ServerOptions o) => o with { DataDirectory = dataDir, Storage = new StorageOptions { File = Path.Combine(dataDir, "xmpp.db") } };
        try
        {
            await using (var server = await TestServer.StartAsync(Options, "alice@localhost:wonderland", "bob@localhost:builder"))
            {
                await using var bob = await ImTests.OnlineAsync(server, "bob", "builder", "desk");
                var alice = await ImTests.OnlineAsync(server, "alice", "wonderland", "phone");
                await alice.SendAsync($"<enable xmlns='{Sm}' resume='true'/>");
                await alice.ReadUntilAsync(e => e.Is("enabled", Sm));
                await bob.SendAsync("<message to='alice@localhost/phone' type='chat'><body>before the shutdown</body></message>");
                await bob.DrainAsync();
                await alice.ReadUntilAsync(e => e.Name == "message");
                alice.Abort();
                await alice.DisposeAsync();
                await server.WaitForLogAsync("Connection lost for alice@localhost/phone");

                // The shutdown cancels the wait for resumption; the session must end before storage closes.
            }

            await using (var server = await TestServer.StartAsync(Options))
            {
                await using var alice = await RawXmppClient.ConnectAsync(server.C2sPort);
                await alice.LoginAsync("alice", "wonderland", resource: "laptop");
                await alice.SendAsync("<presence/>");
                var kept = await alice.ReadUntilAsync(e => e.Name == "message");
                Assert.That(kept.ChildText("body", "jabber:client"), Is.EqualTo("before the shutdown"));
            }
        }
        finally
        {
            Directory.Delete(dataDir, recursive: true);
        }
    }

    [Test]
    public async Task Resumption_is_refused_for_unknown_ids_and_other_accounts_and_takes_over_a_live_connection()
    {
        await using var server = await TestServer.StartAsync(null, "alice@localhost:wonderland", "bob@localhost:builder");
        await using var alice = await ImTests.OnlineAsync(server, "alice", "wonderland", "phone");
        await alice.SendAsync($"<enable xmlns='{Sm}' resume='1'/>");
        var id = (await alice.ReadUntilAsync(e => e.Is("enabled", Sm))).GetAttribute("id")!;

        await using var mallory = await RawXmppClient.ConnectAsync(server.C2sPort);
        await mallory.AuthenticateOnlyAsync("bob", "builder");
        await mallory.SendAsync($"<resume xmlns='{Sm}' previd='{id}' h='0'/>");
        var refused = await mallory.ReadAsync();
        Assert.That(refused.Name, Is.EqualTo("failed"));
        Assert.That(refused.Child("item-not-found", "urn:ietf:params:xml:ns:xmpp-stanzas"), Is.Not.Null);

        await using var unknown = await RawXmppClient.ConnectAsync(server.C2sPort);
        await unknown.AuthenticateOnlyAsync("alice", "wonderland");
        await unknown.SendAsync($"<resume xmlns='{Sm}' previd='nope' h='0'/>");
        Assert.That((await unknown.ReadAsync()).Name, Is.EqualTo("failed"));

        // The phone's connection is still open (it does not know it is dead): the new one takes over and the old is closed.
        await using var again = await RawXmppClient.ConnectAsync(server.C2sPort);
        await again.AuthenticateOnlyAsync("alice", "wonderland");
        await again.SendAsync($"<resume xmlns='{Sm}' previd='{id}' h='0'/>");
        Assert.That((await again.ReadAsync()).Name, Is.EqualTo("resumed"));
        Assert.That(await alice.ReadStreamErrorAsync(), Is.Null, "closed without an error");
        var ping = await again.IqAsync("<iq type='get' id='p' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
        Assert.That(ping.GetAttribute("type"), Is.EqualTo("result"));
        Assert.That(ping.GetAttribute("to"), Is.EqualTo("alice@localhost/phone"));
    }
}
