using Xmpp.Core.Addressing;
using Xmpp.Core.Xml;
using Xmpp.Server.Storage;

namespace Xmpp.Tests.EndToEnd;

/// <summary>
/// Every row of the subscription state tables of RFC 6121 Appendix A, end to end: two clients on one
/// server, roster entries preset in storage, the sender's stanza, then the stored states on both sides and
/// whether the recipient's client saw the stanza. The expected tables are copied from the RFC here (with one marked departure:
/// a repeated subscribe is delivered, as §3.1.3 says, where A.3.1 says not), not
/// computed by the server's code.
/// </summary>
[Parallelizable(ParallelScope.All)]
public sealed class SubscriptionStateTests
{
    private static readonly string[] States = ["None", "None+Out", "None+In", "None+Out+In", "To", "To+In", "From", "From+Out", "Both"];
    private static readonly string[] Types = ["subscribe", "unsubscribe", "subscribed", "unsubscribed"];
    private static int _pair;
    private TestServer _server = null!;

    /// <summary>Outbound processing (the user's server): state → (routed, new state). RFC 6121 §3.1.2, §3.3.2, A.2.1, A.2.2.</summary>
    private static readonly Dictionary<string, Dictionary<string, (bool Routed, string After)>> Outbound = new()
    {
        ["subscribe"] = new()
        {
            ["None"] = (true, "None+Out"),
            ["None+Out"] = (true, "None+Out"),
            ["None+In"] = (true, "None+Out+In"),
            ["None+Out+In"] = (true, "None+Out+In"),
            ["To"] = (true, "To"),
            ["To+In"] = (true, "To+In"),
            ["From"] = (true, "From+Out"),
            ["From+Out"] = (true, "From+Out"),
            ["Both"] = (true, "Both"),
        },
        ["unsubscribe"] = new()
        {
            ["None"] = (true, "None"),
            ["None+Out"] = (true, "None"),
            ["None+In"] = (true, "None+In"),
            ["None+Out+In"] = (true, "None+In"),
            ["To"] = (true, "None"),
            ["To+In"] = (true, "None+In"),
            ["From"] = (true, "From"),
            ["From+Out"] = (true, "From"),
            ["Both"] = (true, "From"),
        },
        ["subscribed"] = new()
        {
            ["None"] = (false, "None"),
            ["None+Out"] = (false, "None+Out"),
            ["None+In"] = (true, "From"),
            ["None+Out+In"] = (true, "From+Out"),
            ["To"] = (false, "To"),
            ["To+In"] = (true, "Both"),
            ["From"] = (false, "From"),
            ["From+Out"] = (false, "From+Out"),
            ["Both"] = (false, "Both"),
        },
        ["unsubscribed"] = new()
        {
            ["None"] = (false, "None"),
            ["None+Out"] = (false, "None+Out"),
            ["None+In"] = (true, "None"),
            ["None+Out+In"] = (true, "None+Out"),
            ["To"] = (false, "To"),
            ["To+In"] = (true, "To"),
            ["From"] = (true, "None"),
            ["From+Out"] = (true, "None+Out"),
            ["Both"] = (true, "To"),
        },
    };

    /// <summary>Inbound processing (the contact's server): state → (delivered, new state). RFC 6121 A.3.1 to A.3.4.</summary>
    private static readonly Dictionary<string, Dictionary<string, (bool Delivered, string After)>> Inbound = new()
    {
        ["subscribe"] = new()
        {
            ["None"] = (true, "None+In"),
            ["None+Out"] = (true, "None+Out+In"),
            // A.3.1 says "no" for the three rows with Pending In; §3.1.3 rule 3 ("MUST send that subscription request to all
            // available resources") is followed instead: a repeated request reaches the user again, the state is unchanged.
            ["None+In"] = (true, "None+In"),
            ["None+Out+In"] = (true, "None+Out+In"),
            ["To"] = (true, "To+In"),
            ["To+In"] = (true, "To+In"),
            ["From"] = (false, "From"),
            ["From+Out"] = (false, "From+Out"),
            ["Both"] = (false, "Both"),
        },
        ["unsubscribe"] = new()
        {
            ["None"] = (false, "None"),
            ["None+Out"] = (false, "None+Out"),
            ["None+In"] = (true, "None"),
            ["None+Out+In"] = (true, "None+Out"),
            ["To"] = (false, "To"),
            ["To+In"] = (true, "To"),
            ["From"] = (true, "None"),
            ["From+Out"] = (true, "None+Out"),
            ["Both"] = (true, "To"),
        },
        ["subscribed"] = new()
        {
            ["None"] = (false, "None"),
            ["None+Out"] = (true, "To"),
            ["None+In"] = (false, "None+In"),
            ["None+Out+In"] = (true, "To+In"),
            ["To"] = (false, "To"),
            ["To+In"] = (false, "To+In"),
            ["From"] = (false, "From"),
            ["From+Out"] = (true, "Both"),
            ["Both"] = (false, "Both"),
        },
        ["unsubscribed"] = new()
        {
            ["None"] = (false, "None"),
            ["None+Out"] = (true, "None"),
            ["None+In"] = (false, "None+In"),
            ["None+Out+In"] = (true, "None+In"),
            ["To"] = (true, "None"),
            ["To+In"] = (true, "None+In"),
            ["From"] = (false, "From"),
            ["From+Out"] = (true, "From"),
            ["Both"] = (true, "From"),
        },
    };

    /// <summary>For inbound rows: a sender state whose outbound processing routes the stanza.</summary>
    private static readonly Dictionary<string, string> RoutingSender = new()
    {
        ["subscribe"] = "None",
        ["unsubscribe"] = "None",
        ["subscribed"] = "None+In",
        ["unsubscribed"] = "From",
    };

    public static IEnumerable<TestCaseData> OutboundRows() =>
        from t in Types from s in States select new TestCaseData(t, s).SetName($"Outbound {t} from {s}");

    public static IEnumerable<TestCaseData> InboundRows() =>
        from t in Types from s in States select new TestCaseData(t, s).SetName($"Inbound {t} at {s}");

    [OneTimeSetUp]
    public async Task StartServer() => _server = await TestServer.StartAsync();

    [OneTimeTearDown]
    public async Task StopServer() => await _server.DisposeAsync();

    /// <summary>The user in state S (the contact mirrored consistently) sends TYPE; checks both sides.</summary>
    [TestCaseSource(nameof(OutboundRows))]
    public async Task Outbound_row(string type, string state)
    {
        var (routed, after) = Outbound[type][state];
        var mirror = Mirror(state);
        string contactAfter = mirror;
        var delivered = false;
        if (routed)
        {
            (delivered, contactAfter) = Inbound[type][mirror];
        }

        await RunAsync(type, state, mirror, after, contactAfter, delivered);
    }

    /// <summary>The contact in state S receives TYPE from a user whose state makes its server route it.</summary>
    [TestCaseSource(nameof(InboundRows))]
    public async Task Inbound_row(string type, string state)
    {
        var sender = RoutingSender[type];
        var (delivered, after) = Inbound[type][state];
        var senderAfter = Outbound[type][sender].After;
        if (type == "subscribe" && state is "From" or "From+Out" or "Both")
        {
            // A.3.1 "no *": the contact's server answers 'subscribed' for the contact, which the user's
            // server then processes as an inbound subscribed.
            senderAfter = Inbound["subscribed"][senderAfter].After;
        }

        await RunAsync(type, sender, state, senderAfter, after, delivered);
    }

    /// <summary>
    /// RFC 6121 §3.1.3 rules 3 and 4: a request repeated while the first is pending reaches the contact's client again,
    /// with its extension, and the request delivered at the contact's next login is the newest one.
    /// </summary>
    [Test]
    public async Task A_repeated_request_is_delivered_and_replaces_the_stored_one()
    {
        var (user, contact) = await NewPairAsync();
        await using var u = await RawXmppClient.ConnectAsync(_server.C2sPort);
        await u.LoginAsync(user, "pw");
        await u.SendAsync("<presence/>");
        await using (var c = await RawXmppClient.ConnectAsync(_server.C2sPort))
        {
            await c.LoginAsync(contact, "pw");
            await c.SendAsync("<presence/>");
            await c.DrainAsync();

            await u.SendAsync($"<presence type='subscribe' to='{contact}@localhost'><status>first</status></presence>");
            var first = await c.ReadUntilAsync(e => e.Name == "presence" && e.GetAttribute("type") == "subscribe");
            Assert.That(first.Child("status", "jabber:client")?.Text, Is.EqualTo("first"));

            await u.SendAsync($"<presence type='subscribe' to='{contact}@localhost'><status>again</status><test xmlns='org.example.test'/></presence>");
            var again = await c.ReadUntilAsync(e => e.Name == "presence" && e.GetAttribute("type") == "subscribe");
            Assert.Multiple(() =>
            {
                Assert.That(again.GetAttribute("from"), Is.EqualTo(user + "@localhost"));
                Assert.That(again.Child("status", "jabber:client")?.Text, Is.EqualTo("again"));
                Assert.That(again.Child("test", "org.example.test"), Is.Not.Null, "the repeated request's extension");
            });
        }

        Assert.That(await StateAsync(contact, user), Is.EqualTo("None+In"), "the state did not change");
        await using var later = await RawXmppClient.ConnectAsync(_server.C2sPort);
        await later.LoginAsync(contact, "pw");
        await later.SendAsync("<presence/>");
        var stored = await later.ReadUntilAsync(e => e.Name == "presence" && e.GetAttribute("type") == "subscribe");
        Assert.Multiple(() =>
        {
            Assert.That(stored.Child("status", "jabber:client")?.Text, Is.EqualTo("again"), "the newest request is the stored one");
            Assert.That(stored.Child("test", "org.example.test"), Is.Not.Null);
        });
    }

    private async Task RunAsync(string type, string userState, string contactState, string userAfter, string contactAfter, bool delivered)
    {
        var (user, contact) = await NewPairAsync();
        await using var u = await RawXmppClient.ConnectAsync(_server.C2sPort);
        await u.LoginAsync(user, "pw");
        await using var c = await RawXmppClient.ConnectAsync(_server.C2sPort);
        await c.LoginAsync(contact, "pw");
        await c.SendAsync("<presence/>");
        await u.SendAsync("<presence/>");
        await u.DrainAsync();
        await c.DrainAsync();

        // The states are set once both are online, so that login probes cannot repair deliberately
        // inconsistent pairs before the stanza under test is sent.
        var rosters = _server.Server.Modules.Rosters;
        await rosters.ChangeAsync(Jid.Parse(user + "@localhost"), Jid.Parse(contact + "@localhost"), _ => Item(contact + "@localhost", userState), CancellationToken.None);
        await rosters.ChangeAsync(Jid.Parse(contact + "@localhost"), Jid.Parse(user + "@localhost"), _ => Item(user + "@localhost", contactState), CancellationToken.None);

        await u.SendAsync($"<presence type='{type}' to='{contact}@localhost'/>");
        await u.DrainAsync();
        var seen = await c.DrainAsync();
        var got = seen.Any(e => e.Name == "presence" && e.GetAttribute("type") == type && e.GetAttribute("from") == user + "@localhost");

        Assert.Multiple(async () =>
        {
            Assert.That(await StateAsync(user, contact), Is.EqualTo(userAfter), "the user's state");
            Assert.That(await StateAsync(contact, user), Is.EqualTo(contactAfter), "the contact's state");
            Assert.That(got, Is.EqualTo(delivered), "delivered to the contact's client");
        });
    }

    /// <summary>Two new accounts (uN and cN, password "pw") for one test case.</summary>
    private async Task<(string User, string Contact)> NewPairAsync()
    {
        var n = Interlocked.Increment(ref _pair);
        await _server.AddUserAsync($"u{n}@localhost", "pw");
        await _server.AddUserAsync($"c{n}@localhost", "pw");
        return ($"u{n}", $"c{n}");
    }

    private async Task<string> StateAsync(string owner, string other)
    {
        var roster = await _server.Server.Context.Storage.Roster.LoadAsync("localhost", owner, CancellationToken.None);
        var item = roster.Items.SingleOrDefault(i => i.Jid == other + "@localhost");
        if (item is null)
        {
            return "None";
        }

        return item.Subscription switch
        {
            Subscription.To => "To",
            Subscription.From => "From",
            Subscription.Both => "Both",
            _ => "None",
        } + (item.PendingOut ? "+Out" : string.Empty) + (item.PendingIn ? "+In" : string.Empty);
    }

    private static RosterItem Item(string jid, string state)
    {
        var parts = state.Split('+');
        var sub = parts[0] switch
        {
            "To" => Subscription.To,
            "From" => Subscription.From,
            "Both" => Subscription.Both,
            _ => Subscription.None,
        };
        var pendingIn = parts.Contains("In");
        var request = pendingIn ? new Element("presence", "jabber:client").SetAttribute("type", "subscribe").SetAttribute("from", jid).ToString() : null;
        return new RosterItem(jid, null, sub, parts.Contains("Out"), pendingIn, false, [], true, request);
    }

    /// <summary>The same relationship seen from the other side: To and From swap, as do Pending Out and In.</summary>
    private static string Mirror(string state)
    {
        var parts = state.Split('+');
        var sub = parts[0] switch
        {
            "To" => "From",
            "From" => "To",
            _ => parts[0],
        };
        var result = sub;
        if (parts.Contains("In"))
        {
            result += "+Out";
        }

        if (parts.Contains("Out"))
        {
            result += "+In";
        }

        return result;
    }
}
