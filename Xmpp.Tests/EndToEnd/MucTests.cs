using Xmpp.Core.Xml;
using Xmpp.Server.Config;

namespace Xmpp.Tests.EndToEnd;

/// <summary>XEP-0045 multi-user chat on conference.localhost, with XEP-0410, XEP-0421 and XEP-0313 for rooms.</summary>
public sealed class MucTests
{
    internal const string Muc = "http://jabber.org/protocol/muc";
    internal const string MucUser = "http://jabber.org/protocol/muc#user";
    internal const string MucAdmin = "http://jabber.org/protocol/muc#admin";
    internal const string MucOwner = "http://jabber.org/protocol/muc#owner";
    internal const string Stanzas = "urn:ietf:params:xml:ns:xmpp-stanzas";
    internal const string Room = "room@conference.localhost";

    internal static readonly string[] Users = ["alice@localhost:alice-pass", "bob@localhost:bob-pass", "carol@localhost:carol-pass", "dave@localhost:dave-pass"];

    internal static async Task<RawXmppClient> LoginAsync(TestServer server, string user)
    {
        var c = await RawXmppClient.ConnectAsync(server.C2sPort);
        await c.LoginAsync(user, user + "-pass", resource: "r");
        await c.SendAsync("<presence/>");
        await c.DrainAsync();
        return c;
    }

    /// <summary>Joins and reads up to the subject (the end of the entry, §7.2.15); returns everything received.</summary>
    internal static async Task<List<Element>> JoinAsync(RawXmppClient c, string nick, string room = Room, string inner = "")
    {
        await c.SendAsync($"<presence to='{room}/{nick}'><x xmlns='{Muc}'>{inner}</x></presence>");
        var seen = new List<Element>();
        while (true)
        {
            var e = await c.ReadAsync();
            seen.Add(e);
            if (e.Name == "presence" && e.GetAttribute("type") == "error")
            {
                return seen;
            }

            if (e.Name == "message" && e.Child("subject", "jabber:client") is not null && e.Child("body", "jabber:client") is null)
            {
                return seen;
            }
        }
    }

    internal static IEnumerable<string> Codes(Element stanza) =>
        stanza.Child("x", MucUser)?.Elements().Where(e => e.Name == "status").Select(e => e.GetAttribute("code")!) ?? [];

    internal static Element Item(Element presence) => presence.Child("x", MucUser)!.Child("item", MucUser)!;

    internal static string? ErrorCondition(Element stanza) =>
        stanza.Child("error", "jabber:client")?.Elements().FirstOrDefault(e => e.Namespace == Stanzas)?.Name;

    internal static async Task InstantRoomAsync(RawXmppClient owner, string room = Room, string fields = "")
    {
        var r = await owner.IqAsync($"<iq type='set' id='cfg' to='{room}'><query xmlns='{MucOwner}'><x xmlns='jabber:x:data' type='submit'>" +
            $"<field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value></field>{fields}</x></query></iq>");
        Assert.That(r.GetAttribute("type"), Is.EqualTo("result"), r.ToString());
    }

    /// <summary>A XEP-0313 query on the room's archive: the result messages, and the iq that ends them.</summary>
    private static async Task<(List<Element> Results, Element Fin)> QueryRoomArchiveAsync(RawXmppClient c)
    {
        await c.SendAsync($"<iq type='set' id='q' to='{Room}'><query xmlns='urn:xmpp:mam:2' queryid='qq'/></iq>");
        var results = new List<Element>();
        while (true)
        {
            var e = await c.ReadAsync();
            if (e.Name == "iq" && e.GetAttribute("id") == "q")
            {
                return (results, e);
            }

            if (e.Child("result", "urn:xmpp:mam:2") is not null)
            {
                results.Add(e);
            }
        }
    }

    internal static string Field(string var, string value) => $"<field var='muc#roomconfig_{var}'><value>{value}</value></field>";

    [Test]
    public async Task A_room_is_created_locked_configured_by_its_owner_and_then_open_to_chat()
    {
        await using var server = await TestServer.StartAsync(null, Users);
        await using var alice = await LoginAsync(server, "alice");
        await using var bob = await LoginAsync(server, "bob");

        // The service is found from the host, and says what it is.
        var items = await alice.IqAsync("<iq type='get' id='i' to='localhost'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>");
        Assert.That(items.ToString(), Does.Contain("conference.localhost"));
        var service = await alice.IqAsync("<iq type='get' id='s' to='conference.localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
        Assert.That(service.ToString(), Does.Contain("category='conference'").And.Contain(Muc));

        var entry = await JoinAsync(alice, "Alice");
        var self = entry.First(e => e.Name == "presence");
        Assert.That(Codes(self), Is.SupersetOf(new[] { "110", "201" }), self.ToString());
        Assert.That(Item(self).GetAttribute("affiliation"), Is.EqualTo("owner"));
        Assert.That(Item(self).GetAttribute("role"), Is.EqualTo("moderator"));
        Assert.That(self.Child("occupant-id", "urn:xmpp:occupant-id:0"), Is.Not.Null);

        // Locked until configured (§10.1.1): nobody else gets in, the room is not listed.
        var refused = await JoinAsync(bob, "Bob");
        Assert.That(ErrorCondition(refused[^1]), Is.EqualTo("item-not-found"), refused[^1].ToString());
        var hidden = await bob.IqAsync($"<iq type='get' id='h' to='{Room}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
        Assert.That(ErrorCondition(hidden), Is.EqualTo("item-not-found"));

        var form = await alice.IqAsync($"<iq type='get' id='f' to='{Room}'><query xmlns='{MucOwner}'/></iq>");
        Assert.That(form.ToString(), Does.Contain("muc#roomconfig_persistentroom").And.Contain("muc#roomconfig_whois"));
        var notOwner = await bob.IqAsync($"<iq type='get' id='f2' to='{Room}'><query xmlns='{MucOwner}'/></iq>");
        Assert.That(ErrorCondition(notOwner), Is.EqualTo("item-not-found"), "a locked room does not exist for others");
        await InstantRoomAsync(alice, fields: Field("roomname", "Tea party"));
        var stillNotOwner = await bob.IqAsync($"<iq type='get' id='f3' to='{Room}'><query xmlns='{MucOwner}'/></iq>");
        Assert.That(ErrorCondition(stillNotOwner), Is.EqualTo("forbidden"));

        var bobEntry = await JoinAsync(bob, "Bob");
        var bobSees = bobEntry.Where(e => e.Name == "presence").ToList();
        Assert.That(bobSees[0].GetAttribute("from"), Is.EqualTo(Room + "/Alice"));
        Assert.That(Item(bobSees[0]).GetAttribute("jid"), Is.Null, "semi-anonymous: a participant does not see real JIDs");
        Assert.That(Codes(bobSees[^1]), Does.Contain("110"));
        Assert.That(Item(bobSees[^1]).GetAttribute("role"), Is.EqualTo("participant"));
        var aliceSeesBob = await alice.ReadUntilAsync(e => e.Name == "presence" && e.GetAttribute("from") == Room + "/Bob");
        Assert.That(Item(aliceSeesBob).GetAttribute("jid"), Is.EqualTo("bob@localhost/r"), "moderators see real JIDs");

        await bob.SendAsync($"<message to='{Room}' type='groupchat' id='m1'><body>hello room</body><occupant-id xmlns='urn:xmpp:occupant-id:0' id='forged'/></message>");
        var atAlice = await alice.ReadUntilAsync(e => e.Name == "message" && e.ChildText("body", "jabber:client") == "hello room");
        var atBob = await bob.ReadUntilAsync(e => e.Name == "message" && e.ChildText("body", "jabber:client") == "hello room");
        Assert.That(atAlice.GetAttribute("from"), Is.EqualTo(Room + "/Bob"));
        Assert.That(atBob.GetAttribute("id"), Is.EqualTo("m1"), "the sender recognises its own message by id");
        var ids = atAlice.Elements().Where(e => e.Name == "occupant-id").Select(e => e.GetAttribute("id")).ToList();
        Assert.That(ids, Has.Count.EqualTo(1).And.Not.Contain("forged"));
        Assert.That(ids[0], Is.EqualTo(Item(bobSees[^1]) is not null ? bobSees[^1].Child("occupant-id", "urn:xmpp:occupant-id:0")!.GetAttribute("id") : null));

        // Only occupants speak; groupchat to one occupant is refused; private messages pass under nicks.
        await using var carol = await LoginAsync(server, "carol");
        await carol.SendAsync($"<message to='{Room}' type='groupchat' id='c1'><body>let me in</body></message>");
        var notIn = await carol.ReadUntilAsync(e => e.Name == "message" && e.GetAttribute("type") == "error");
        Assert.That(ErrorCondition(notIn), Is.EqualTo("not-acceptable"));
        await bob.SendAsync($"<message to='{Room}/Alice' type='chat' id='pm'><body>psst</body></message>");
        var pm = await alice.ReadUntilAsync(e => e.Name == "message" && e.ChildText("body", "jabber:client") == "psst");
        Assert.That(pm.GetAttribute("from"), Is.EqualTo(Room + "/Bob"));
        Assert.That(pm.Child("x", MucUser), Is.Not.Null);
        await bob.SendAsync($"<message to='{Room}/Alice' type='groupchat' id='pm2'><body>wrong</body></message>");
        var bad = await bob.ReadUntilAsync(e => e.Name == "message" && e.GetAttribute("type") == "error");
        Assert.That(ErrorCondition(bad), Is.EqualTo("bad-request"));

        // The subject: participants may not change it unless the room says so; the owner may.
        await bob.SendAsync($"<message to='{Room}' type='groupchat' id='s1'><subject>bob's subject</subject></message>");
        var noSubject = await bob.ReadUntilAsync(e => e.Name == "message" && e.GetAttribute("id") == "s1");
        Assert.That(ErrorCondition(noSubject), Is.EqualTo("forbidden"));
        await alice.SendAsync($"<message to='{Room}' type='groupchat' id='s2'><subject>Tea at four</subject></message>");
        var subject = await bob.ReadUntilAsync(e => e.Name == "message" && e.ChildText("subject", "jabber:client") == "Tea at four");
        Assert.That(subject.GetAttribute("from"), Is.EqualTo(Room + "/Alice"));

        // The public room is listed, with its name; its disco#info says what kind it is.
        var rooms = await carol.IqAsync("<iq type='get' id='r' to='conference.localhost'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>");
        Assert.That(rooms.ToString(), Does.Contain(Room).And.Contain("Tea party"));
        var info = await carol.IqAsync($"<iq type='get' id='ri' to='{Room}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
        Assert.That(info.ToString(), Does.Contain("muc_temporary").And.Contain("muc_semianonymous").And.Contain("muc_open").And.Contain("urn:xmpp:occupant-id:0").And.Contain("Tea at four"));

        // Leaving: everybody hears it; the last one out ends a temporary room.
        await bob.SendAsync($"<presence to='{Room}/Bob' type='unavailable'/>");
        var left = await alice.ReadUntilAsync(e => e.Name == "presence" && e.GetAttribute("type") == "unavailable");
        Assert.That(left.GetAttribute("from"), Is.EqualTo(Room + "/Bob"));
        var bobSelf = await bob.ReadUntilAsync(e => e.Name == "presence" && e.GetAttribute("type") == "unavailable");
        Assert.That(Codes(bobSelf), Does.Contain("110"));
        await alice.SendAsync($"<presence to='{Room}/Alice' type='unavailable'/>");
        await alice.ReadUntilAsync(e => e.Name == "presence" && e.GetAttribute("type") == "unavailable");
        var gone = await carol.IqAsync($"<iq type='get' id='ri2' to='{Room}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
        Assert.That(ErrorCondition(gone), Is.EqualTo("item-not-found"));
    }

    [Test]
    public async Task Nicks_conflict_change_with_303_and_passwords_and_limits_are_enforced()
    {
        await using var server = await TestServer.StartAsync(null, Users);
        await using var alice = await LoginAsync(server, "alice");
        await using var bob = await LoginAsync(server, "bob");
        await using var carol = await LoginAsync(server, "carol");
        await JoinAsync(alice, "Alice");
        await InstantRoomAsync(alice, fields: Field("passwordprotectedroom", "1") + Field("roomsecret", "s3cret") + Field("maxusers", "2"));

        var noPassword = await JoinAsync(bob, "Bob");
        Assert.That(ErrorCondition(noPassword[^1]), Is.EqualTo("not-authorized"));
        var taken = await JoinAsync(bob, "Alice", inner: "<password>s3cret</password>");
        Assert.That(ErrorCondition(taken[^1]), Is.EqualTo("conflict"));
        var ok = await JoinAsync(bob, "Bob", inner: "<password>s3cret</password>");
        Assert.That(Codes(ok.Last(e => e.Name == "presence")), Does.Contain("110"));
        var full = await JoinAsync(carol, "Carol", inner: "<password>s3cret</password>");
        Assert.That(ErrorCondition(full[^1]), Is.EqualTo("service-unavailable"));
        Assert.That(full[^1].Child("error", "jabber:client")!.GetAttribute("type"), Is.EqualTo("wait"));

        // §7.6: a nick change is an unavailable presence with 303 and the new nick, then the new presence.
        await bob.SendAsync($"<presence to='{Room}/Alice'/>");
        var conflict = await bob.ReadUntilAsync(e => e.Name == "presence" && e.GetAttribute("type") == "error");
        Assert.That(ErrorCondition(conflict), Is.EqualTo("conflict"));
        await bob.SendAsync($"<presence to='{Room}/Robert'/>");
        var change = await alice.ReadUntilAsync(e => e.Name == "presence" && e.GetAttribute("from") == Room + "/Bob" && e.GetAttribute("type") == "unavailable");
        Assert.That(change.GetAttribute("type"), Is.EqualTo("unavailable"));
        Assert.That(Codes(change), Does.Contain("303"));
        Assert.That(Item(change).GetAttribute("nick"), Is.EqualTo("Robert"));
        var now = await alice.ReadUntilAsync(e => e.Name == "presence" && e.GetAttribute("from") == Room + "/Robert");
        Assert.That(now.GetAttribute("type"), Is.Null);
        var bobChange = await bob.ReadUntilAsync(e => e.Name == "presence" && e.GetAttribute("from") == Room + "/Bob" && e.GetAttribute("type") == "unavailable");
        Assert.That(Codes(bobChange), Is.SupersetOf(new[] { "303", "110" }));
    }

    [Test]
    public async Task Moderators_kick_and_give_voice_admins_ban_and_manage_members_and_owners_are_protected()
    {
        await using var server = await TestServer.StartAsync(null, Users);
        await using var alice = await LoginAsync(server, "alice");
        await using var bob = await LoginAsync(server, "bob");
        await using var carol = await LoginAsync(server, "carol");
        await JoinAsync(alice, "Alice");
        await InstantRoomAsync(alice, fields: Field("moderatedroom", "1"));
        var bobEntry = await JoinAsync(bob, "Bob");
        Assert.That(Item(bobEntry.Last(e => e.Name == "presence")).GetAttribute("role"), Is.EqualTo("visitor"), "moderated room: no voice by default");
        await JoinAsync(carol, "Carol");

        // A visitor cannot speak; voice granted by a moderator lets it.
        await bob.SendAsync($"<message to='{Room}' type='groupchat' id='v1'><body>can I speak?</body></message>");
        var mute = await bob.ReadUntilAsync(e => e.Name == "message" && e.GetAttribute("id") == "v1");
        Assert.That(ErrorCondition(mute), Is.EqualTo("forbidden"));
        var voice = await alice.IqAsync($"<iq type='set' id='a1' to='{Room}'><query xmlns='{MucAdmin}'><item nick='Bob' role='participant'/></query></iq>");
        Assert.That(voice.GetAttribute("type"), Is.EqualTo("result"), voice.ToString());
        var voiced = await bob.ReadUntilAsync(e => e.Name == "presence" && e.GetAttribute("from") == Room + "/Bob");
        Assert.That(Item(voiced).GetAttribute("role"), Is.EqualTo("participant"));
        await bob.SendAsync($"<message to='{Room}' type='groupchat' id='v2'><body>thanks</body></message>");
        await alice.ReadUntilAsync(e => e.Name == "message" && e.ChildText("body", "jabber:client") == "thanks");

        // Participants may not kick; moderators may not kick an owner; the role list is for moderators.
        var notMod = await bob.IqAsync($"<iq type='set' id='a2' to='{Room}'><query xmlns='{MucAdmin}'><item nick='Carol' role='none'/></query></iq>");
        Assert.That(ErrorCondition(notMod), Is.EqualTo("forbidden"));
        var list = await alice.IqAsync($"<iq type='get' id='a3' to='{Room}'><query xmlns='{MucAdmin}'><item role='participant'/></query></iq>");
        Assert.That(list.ToString(), Does.Contain("nick='Bob'").And.Not.Contain("nick='Carol'"));

        // Membership and admin rights: an admin manages members but not owners; the last owner stays.
        var admin = await alice.IqAsync($"<iq type='set' id='a4' to='{Room}'><query xmlns='{MucAdmin}'><item jid='bob@localhost' affiliation='admin'/></query></iq>");
        Assert.That(admin.GetAttribute("type"), Is.EqualTo("result"), admin.ToString());
        var bobModerator = await bob.ReadUntilAsync(e => e.Name == "presence" && e.GetAttribute("from") == Room + "/Bob");
        Assert.That(Item(bobModerator).GetAttribute("affiliation") + "/" + Item(bobModerator).GetAttribute("role"), Is.EqualTo("admin/moderator"));
        var unOwner = await bob.IqAsync($"<iq type='set' id='a5' to='{Room}'><query xmlns='{MucAdmin}'><item jid='alice@localhost' affiliation='none'/></query></iq>");
        Assert.That(ErrorCondition(unOwner), Is.EqualTo("not-allowed"));
        var kickOwner = await bob.IqAsync($"<iq type='set' id='a6' to='{Room}'><query xmlns='{MucAdmin}'><item nick='Alice' role='none'/></query></iq>");
        Assert.That(ErrorCondition(kickOwner), Is.EqualTo("not-allowed"));
        var lastOwner = await alice.IqAsync($"<iq type='set' id='a7' to='{Room}'><query xmlns='{MucAdmin}'><item jid='alice@localhost' affiliation='member'/></query></iq>");
        Assert.That(ErrorCondition(lastOwner), Is.EqualTo("conflict"));
        var member = await bob.IqAsync($"<iq type='set' id='a8' to='{Room}'><query xmlns='{MucAdmin}'><item jid='dave@localhost' affiliation='member' nick='Dave'/></query></iq>");
        Assert.That(member.GetAttribute("type"), Is.EqualTo("result"), member.ToString());
        var members = await bob.IqAsync($"<iq type='get' id='a9' to='{Room}'><query xmlns='{MucAdmin}'><item affiliation='member'/></query></iq>");
        Assert.That(members.ToString(), Does.Contain("dave@localhost").And.Contain("nick='Dave'"));
        var reserved = await JoinAsync(carol, "Dave");
        Assert.That(ErrorCondition(reserved[^1]), Is.EqualTo("conflict"), "a member's reserved nick");

        // Kick (307) by a moderator, with actor and reason; ban (301) keeps the account out.
        var kick = await bob.IqAsync($"<iq type='set' id='k1' to='{Room}'><query xmlns='{MucAdmin}'><item nick='Carol' role='none'><reason>spam</reason></item></query></iq>");
        Assert.That(kick.GetAttribute("type"), Is.EqualTo("result"), kick.ToString());
        var kicked = await carol.ReadUntilAsync(e => e.Name == "presence" && e.GetAttribute("type") == "unavailable" && e.GetAttribute("from") == Room + "/Carol");
        Assert.That(Codes(kicked), Is.SupersetOf(new[] { "307", "110" }));
        Assert.That(Item(kicked).Child("actor", MucUser)!.GetAttribute("nick"), Is.EqualTo("Bob"));
        Assert.That(Item(kicked).ChildText("reason", MucUser), Is.EqualTo("spam"));
        var seen = await alice.ReadUntilAsync(e => e.Name == "presence" && e.GetAttribute("from") == Room + "/Carol" && e.GetAttribute("type") == "unavailable");
        Assert.That(Codes(seen), Does.Contain("307").And.Not.Contain("110"));

        await JoinAsync(carol, "Carol");
        var ban = await bob.IqAsync($"<iq type='set' id='b1' to='{Room}'><query xmlns='{MucAdmin}'><item jid='carol@localhost' affiliation='outcast'><reason>again</reason></item></query></iq>");
        Assert.That(ban.GetAttribute("type"), Is.EqualTo("result"), ban.ToString());
        var banned = await carol.ReadUntilAsync(e => e.Name == "presence" && e.GetAttribute("type") == "unavailable" && e.GetAttribute("from") == Room + "/Carol");
        Assert.That(Codes(banned), Does.Contain("301"));
        var back = await JoinAsync(carol, "Carol");
        Assert.That(ErrorCondition(back[^1]), Is.EqualTo("forbidden"));
        var outcasts = await alice.IqAsync($"<iq type='get' id='b2' to='{Room}'><query xmlns='{MucAdmin}'><item affiliation='outcast'/></query></iq>");
        Assert.That(outcasts.ToString(), Does.Contain("carol@localhost").And.Contain("again"));

        // Members-only: non-members leave with 322, and cannot come back (registration-required).
        await InstantRoomAsync(alice, fields: Field("membersonly", "1"));
        await using var dave = await LoginAsync(server, "dave");
        var daveIn = await JoinAsync(dave, "Dave");
        Assert.That(Item(daveIn.Last(e => e.Name == "presence")).GetAttribute("affiliation"), Is.EqualTo("member"));
        var unmember = await alice.IqAsync($"<iq type='set' id='m1' to='{Room}'><query xmlns='{MucAdmin}'><item jid='dave@localhost' affiliation='none'/></query></iq>");
        Assert.That(unmember.GetAttribute("type"), Is.EqualTo("result"));
        var removed = await dave.ReadUntilAsync(e => e.Name == "presence" && e.GetAttribute("type") == "unavailable" && e.GetAttribute("from") == Room + "/Dave");
        Assert.That(Codes(removed), Does.Contain("321"));
        var membersOnly = await JoinAsync(dave, "Dave");
        Assert.That(ErrorCondition(membersOnly[^1]), Is.EqualTo("registration-required"));
    }

    [Test]
    public async Task History_on_entry_honours_the_request_and_the_subject_comes_last()
    {
        await using var server = await TestServer.StartAsync(null, Users);
        await using var alice = await LoginAsync(server, "alice");
        await using var bob = await LoginAsync(server, "bob");
        await JoinAsync(alice, "Alice");
        await InstantRoomAsync(alice);
        await alice.SendAsync($"<message to='{Room}' type='groupchat' id='s'><subject>Plans</subject></message>");
        for (var i = 1; i <= 3; i++)
        {
            await alice.SendAsync($"<message to='{Room}' type='groupchat' id='h{i}'><body>message {i}</body></message>");
        }

        await alice.DrainAsync();
        var entry = await JoinAsync(bob, "Bob", inner: "<history maxstanzas='2'/>");
        var history = entry.Where(e => e.Name == "message" && e.Child("body", "jabber:client") is not null).ToList();
        Assert.That(history.Select(m => m.ChildText("body", "jabber:client")), Is.EqualTo(new[] { "message 2", "message 3" }));
        var delay = history[0].Child("delay", "urn:xmpp:delay")!;
        Assert.That(delay.GetAttribute("from"), Is.EqualTo(Room));
        Assert.That(entry[^1].ChildText("subject", "jabber:client"), Is.EqualTo("Plans"));

        await bob.SendAsync($"<presence to='{Room}/Bob' type='unavailable'/>");
        await bob.ReadUntilAsync(e => e.Name == "presence" && e.GetAttribute("type") == "unavailable");
        var none = await JoinAsync(bob, "Bob", inner: "<history maxchars='0'/>");
        Assert.That(none.Where(e => e.Name == "message" && e.Child("body", "jabber:client") is not null), Is.Empty);
    }

    [Test]
    public async Task A_persistent_room_keeps_its_configuration_members_subject_and_archive_across_a_restart()
    {
        var dataDir = Path.Combine(Path.GetTempPath(), "xmpp-muc-" + Guid.NewGuid().ToString("N"));
        ServerOptions Options(ServerOptions o) => o with { DataDirectory = dataDir, Storage = new StorageOptions { File = Path.Combine(dataDir, "xmpp.db") } };
        try
        {
            await using (var server = await TestServer.StartAsync(Options, Users))
            {
                await using var alice = await LoginAsync(server, "alice");
                await JoinAsync(alice, "Alice");
                await InstantRoomAsync(alice, fields: Field("persistentroom", "1") + Field("roomname", "Team") + Field("whois", "anyone"));
                await alice.IqAsync($"<iq type='set' id='m' to='{Room}'><query xmlns='{MucAdmin}'><item jid='bob@localhost' affiliation='member'/></query></iq>");
                await alice.SendAsync($"<message to='{Room}' type='groupchat' id='s'><subject>Release</subject></message>");
                await alice.SendAsync($"<message to='{Room}' type='groupchat' id='k'><body>kept across restarts</body></message>");
                var echo = await alice.ReadUntilAsync(e => e.Name == "message" && e.ChildText("body", "jabber:client") == "kept across restarts");
                Assert.That(echo.Child("stanza-id", "urn:xmpp:sid:0")!.GetAttribute("by"), Is.EqualTo(Room));
                await alice.SendAsync($"<presence to='{Room}/Alice' type='unavailable'/>");
                await alice.ReadUntilAsync(e => e.Name == "presence" && e.GetAttribute("type") == "unavailable");
            }

            await using (var server = await TestServer.StartAsync(Options))
            {
                await using var bob = await LoginAsync(server, "bob");
                var rooms = await bob.IqAsync("<iq type='get' id='r' to='conference.localhost'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>");
                Assert.That(rooms.ToString(), Does.Contain(Room).And.Contain("Team"));
                var info = await bob.IqAsync($"<iq type='get' id='i' to='{Room}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
                Assert.That(info.ToString(), Does.Contain("muc_persistent").And.Contain("muc_nonanonymous").And.Contain("urn:xmpp:mam:2"));
                var entry = await JoinAsync(bob, "Bob");
                var self = entry.Last(e => e.Name == "presence");
                Assert.That(Item(self).GetAttribute("affiliation"), Is.EqualTo("member"));
                Assert.That(Codes(self), Does.Contain("100").And.Contain("170"));
                Assert.That(entry.Any(e => e.ChildText("body", "jabber:client") == "kept across restarts"), Is.True, "history from the archive: " + string.Join(" | ", entry));
                Assert.That(entry[^1].ChildText("subject", "jabber:client"), Is.EqualTo("Release"));

                // XEP-0313 on the room JID.
                var (results, fin) = await QueryRoomArchiveAsync(bob);

                Assert.That(fin.GetAttribute("type"), Is.EqualTo("result"), fin.ToString());
                Assert.That(results.Select(r => r.GetAttribute("from")).Distinct(), Is.EqualTo(new[] { Room }));
                var bodies = results.Select(r => r.Child("result", "urn:xmpp:mam:2")!.Child("forwarded", "urn:xmpp:forward:0")!.Child("message", "jabber:client")!).ToList();
                Assert.That(bodies.Any(m => m.ChildText("body", "jabber:client") == "kept across restarts" && m.GetAttribute("from") == Room + "/Alice"), Is.True);

                // Destroying it: the occupants learn where to go, and it is gone from storage.
                await using var alice = await LoginAsync(server, "alice");
                await JoinAsync(alice, "Alice");
                var destroy = await alice.IqAsync($"<iq type='set' id='d' to='{Room}'><query xmlns='{MucOwner}'><destroy jid='new@conference.localhost'><reason>moved</reason></destroy></query></iq>");
                Assert.That(destroy.GetAttribute("type"), Is.EqualTo("result"), destroy.ToString());
                var out1 = await bob.ReadUntilAsync(e => e.Name == "presence" && e.GetAttribute("type") == "unavailable" && e.GetAttribute("from") == Room + "/Bob");
                var d = out1.Child("x", MucUser)!.Child("destroy", MucUser)!;
                Assert.That(d.GetAttribute("jid"), Is.EqualTo("new@conference.localhost"));
                Assert.That(d.ChildText("reason", MucUser), Is.EqualTo("moved"));
            }

            await using (var server = await TestServer.StartAsync(Options))
            {
                await using var bob = await LoginAsync(server, "bob");
                var rooms = await bob.IqAsync("<iq type='get' id='r' to='conference.localhost'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>");
                Assert.That(rooms.ToString(), Does.Not.Contain(Room));
            }
        }
        finally
        {
            Directory.Delete(dataDir, recursive: true);
        }
    }

    [Test]
    public async Task Self_ping_invitations_and_a_dropped_connection_leave_no_ghost()
    {
        await using var server = await TestServer.StartAsync(null, Users);
        await using var alice = await LoginAsync(server, "alice");
        await using var bob = await LoginAsync(server, "bob");
        await using var carol = await LoginAsync(server, "carol");
        await JoinAsync(alice, "Alice");
        await InstantRoomAsync(alice);
        await JoinAsync(bob, "Bob");

        // XEP-0410: the room answers a joined occupant's self-ping, and tells a stranger it is not joined.
        var pong = await bob.IqAsync($"<iq type='get' id='p1' to='{Room}/Bob'><ping xmlns='urn:xmpp:ping'/></iq>");
        Assert.That(pong.GetAttribute("type"), Is.EqualTo("result"));
        var stranger = await carol.IqAsync($"<iq type='get' id='p2' to='{Room}/Carol'><ping xmlns='urn:xmpp:ping'/></iq>");
        Assert.That(ErrorCondition(stranger), Is.EqualTo("not-acceptable"));
        var info = await carol.IqAsync($"<iq type='get' id='p3' to='{Room}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
        Assert.That(info.ToString(), Does.Contain("muc#self-ping-optimization"));

        // §7.8.2 mediated invitation, and the decline back to the inviter.
        await bob.SendAsync($"<message to='{Room}'><x xmlns='{MucUser}'><invite to='carol@localhost'><reason>join us</reason></invite></x></message>");
        var invite = await carol.ReadUntilAsync(e => e.Name == "message" && e.Child("x", MucUser) is not null);
        Assert.That(invite.GetAttribute("from"), Is.EqualTo(Room));
        Assert.That(invite.Child("x", MucUser)!.Child("invite", MucUser)!.GetAttribute("from"), Is.EqualTo("bob@localhost"));
        await carol.SendAsync($"<message to='{Room}'><x xmlns='{MucUser}'><decline to='bob@localhost'><reason>busy</reason></decline></x></message>");
        var decline = await bob.ReadUntilAsync(e => e.Name == "message" && e.Child("x", MucUser)?.Child("decline", MucUser) is not null);
        Assert.That(decline.Child("x", MucUser)!.Child("decline", MucUser)!.GetAttribute("from"), Is.EqualTo("carol@localhost"));

        // XEP-0249 direct invitation: a plain message between the two clients.
        await bob.SendAsync($"<message to='carol@localhost'><x xmlns='jabber:x:conference' jid='{Room}' reason='direct'/></message>");
        var direct = await carol.ReadUntilAsync(e => e.Name == "message" && e.Child("x", "jabber:x:conference") is not null);
        Assert.That(direct.Child("x", "jabber:x:conference")!.GetAttribute("jid"), Is.EqualTo(Room));

        // The session ends without a word: its server sends unavailable presence to the room (RFC 6121 §4.6.3).
        bob.Abort();
        var gone = await alice.ReadUntilAsync(e => e.Name == "presence" && e.GetAttribute("from") == Room + "/Bob" && e.GetAttribute("type") == "unavailable");
        Assert.That(Codes(gone), Does.Not.Contain("307"));
        var occupants = await alice.IqAsync($"<iq type='get' id='o' to='{Room}'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>");
        Assert.That(occupants.ToString(), Does.Not.Contain(Room + "/Bob"));
    }

    [Test]
    public async Task Rooms_and_their_occupants_carry_on_across_a_reload()
    {
        await using var server = await TestServer.StartAsync(null, Users);
        await using var alice = await LoginAsync(server, "alice");
        await using var bob = await LoginAsync(server, "bob");
        await JoinAsync(alice, "Alice");
        await InstantRoomAsync(alice);
        await JoinAsync(bob, "Bob");

        var modules = new Dictionary<string, IReadOnlyDictionary<string, string>>(ServerOptions.DefaultModules)
        {
            ["muc"] = new Dictionary<string, string> { ["max-history"] = "5" },
        };
        var result = await server.Server.ReloadAsync(server.Server.Options with { Modules = modules }, CancellationToken.None);
        Assert.That(result.Applied, Is.True, string.Join("; ", result.Messages));

        await bob.SendAsync($"<message to='{Room}' type='groupchat' id='r1'><body>after the reload</body></message>");
        var got = await alice.ReadUntilAsync(e => e.Name == "message" && e.ChildText("body", "jabber:client") == "after the reload");
        Assert.That(got.GetAttribute("from"), Is.EqualTo(Room + "/Bob"));
        var list = await alice.IqAsync($"<iq type='get' id='l' to='{Room}'><query xmlns='{MucAdmin}'><item affiliation='owner'/></query></iq>");
        Assert.That(list.ToString(), Does.Contain("alice@localhost"));
    }

    [Test]
    public async Task Registering_reserves_a_nick_and_visitors_ask_moderators_for_voice()
    {
        await using var server = await TestServer.StartAsync(null, Users);
        await using var alice = await LoginAsync(server, "alice");
        await using var bob = await LoginAsync(server, "bob");
        await using var carol = await LoginAsync(server, "carol");
        await JoinAsync(alice, "Alice");
        await InstantRoomAsync(alice, fields: Field("moderatedroom", "1"));

        // §7.10: the form, then the registration; the nick is then bob's alone, and bob is a member.
        var form = await bob.IqAsync($"<iq type='get' id='g' to='{Room}'><query xmlns='jabber:iq:register'/></iq>");
        Assert.That(form.ToString(), Does.Contain("muc#register_roomnick"));
        var register = await bob.IqAsync($"<iq type='set' id='s' to='{Room}'><query xmlns='jabber:iq:register'><x xmlns='jabber:x:data' type='submit'>" +
            "<field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#register</value></field><field var='muc#register_roomnick'><value>Builder</value></field></x></query></iq>");
        Assert.That(register.GetAttribute("type"), Is.EqualTo("result"), register.ToString());
        var registered = await bob.IqAsync($"<iq type='get' id='g2' to='{Room}'><query xmlns='jabber:iq:register'/></iq>");
        Assert.That(registered.ToString(), Does.Contain("registered").And.Contain("Builder"));
        var reserved = await bob.IqAsync($"<iq type='get' id='n' to='{Room}'><query xmlns='http://jabber.org/protocol/disco#info' node='x-roomuser-item'/></iq>");
        Assert.That(reserved.ToString(), Does.Contain("name='Builder'"));
        var taken = await JoinAsync(carol, "Builder");
        Assert.That(ErrorCondition(taken[^1]), Is.EqualTo("conflict"));
        var bobIn = await JoinAsync(bob, "Builder");
        Assert.That(Item(bobIn.Last(e => e.Name == "presence")).GetAttribute("affiliation") + "/" + Item(bobIn.Last(e => e.Name == "presence")).GetAttribute("role"), Is.EqualTo("member/participant"));

        // §8.6: carol, a visitor, asks for voice; the moderator gets the form and approves it.
        var carolIn = await JoinAsync(carol, "Carol");
        Assert.That(Item(carolIn.Last(e => e.Name == "presence")).GetAttribute("role"), Is.EqualTo("visitor"));
        await carol.SendAsync($"<message to='{Room}'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#request</value></field>" +
            "<field var='muc#role'><value>participant</value></field></x></message>");
        var request = await alice.ReadUntilAsync(e => e.Name == "message" && e.Child("x", "jabber:x:data") is not null);
        Assert.That(request.ToString(), Does.Contain("muc#request_allow").And.Contain("<value>Carol</value>"));
        await alice.SendAsync($"<message to='{Room}'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#request</value></field>" +
            "<field var='muc#role'><value>participant</value></field><field var='muc#roomnick'><value>Carol</value></field><field var='muc#request_allow'><value>true</value></field></x></message>");
        var voiced = await carol.ReadUntilAsync(e => e.Name == "presence" && e.GetAttribute("from") == Room + "/Carol" && Item(e).GetAttribute("role") == "participant");
        Assert.That(Codes(voiced), Does.Contain("110"));
    }

    [Test]
    public async Task A_room_that_stops_being_persistent_drops_its_archive()
    {
        await using var server = await TestServer.StartAsync(null, Users);
        await using var alice = await LoginAsync(server, "alice");
        await JoinAsync(alice, "Alice");
        await InstantRoomAsync(alice, fields: Field("persistentroom", "1"));
        await alice.SendAsync($"<message to='{Room}' type='groupchat' id='a1'><body>archived once</body></message>");
        await alice.ReadUntilAsync(e => e.Name == "message" && e.ChildText("body", "jabber:client") == "archived once");
        await InstantRoomAsync(alice, fields: Field("persistentroom", "0"));
        await InstantRoomAsync(alice, fields: Field("persistentroom", "1"));
        var (results, fin) = await QueryRoomArchiveAsync(alice);
        Assert.That(fin.GetAttribute("type"), Is.EqualTo("result"), fin.ToString());

        Assert.That(results, Is.Empty);
    }

    [Test]
    public async Task An_occupants_message_sent_again_with_its_origin_id_is_archived_once_and_goes_out_with_its_first_stanza_id()
    {
        await using var server = await TestServer.StartAsync(null, Users);
        await using var alice = await LoginAsync(server, "alice");
        await JoinAsync(alice, "Alice");
        await InstantRoomAsync(alice, fields: Field("persistentroom", "1"));

        // A client that lost its session sends again what was not acknowledged (XEP-0198 §5), with the same origin
        // id (XEP-0359): the room cannot know the first copy went out, so it goes out again, with the same stanza id.
        const string Sent = "<message to='" + Room + "' type='groupchat' id='{0}'><body>once?</body><origin-id xmlns='urn:xmpp:sid:0' id='9b2d-origin'/></message>";
        var ids = new List<string?>();
        foreach (var id in new[] { "g1", "g2" })
        {
            await alice.SendAsync(string.Format(System.Globalization.CultureInfo.InvariantCulture, Sent, id));
            var echo = await alice.ReadUntilAsync(e => e.Name == "message" && e.GetAttribute("id") == id);
            ids.Add(echo.Child("stanza-id", "urn:xmpp:sid:0")?.GetAttribute("id"));
        }

        Assert.That(ids[0], Is.Not.Null);
        Assert.That(ids[1], Is.EqualTo(ids[0]));
        var (results, fin) = await QueryRoomArchiveAsync(alice);
        Assert.That(fin.GetAttribute("type"), Is.EqualTo("result"), fin.ToString());
        Assert.That(results.Select(r => r.Child("result", "urn:xmpp:mam:2")?.GetAttribute("id")), Is.EqualTo(new[] { ids[0] }));
    }
}
