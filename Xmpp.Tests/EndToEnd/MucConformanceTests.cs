using Xmpp.Core.Xml;
using static Xmpp.Tests.EndToEnd.MucTests;

namespace Xmpp.Tests.EndToEnd;

/// <summary>
/// XEP-0045 rules that the XSF's conformance suite checks: the self-presence carries the client's id
/// (muc#stable_id), the error conditions of §6.6, §9.1, §10.2, §10.5 and §10.8, and what §10.9 passes on.
/// </summary>
public sealed class MucConformanceTests
{
    private const string Admin = "http://jabber.org/protocol/muc#admin";

    [Test]
    public async Task The_self_presence_carries_the_id_of_the_presence_that_caused_it()
    {
        await using var server = await TestServer.StartAsync(null, Users);
        await using var alice = await LoginAsync(server, "alice");
        await using var bob = await LoginAsync(server, "bob");
        await JoinAsync(alice, "Alice");
        await InstantRoomAsync(alice);

        // §7.2.3: entering.
        await bob.SendAsync($"<presence to='{Room}/Bob' id='join-1'><x xmlns='{Muc}'/></presence>");
        var self = await bob.ReadUntilAsync(e => e.Name == "presence" && Codes(e).Contains("110"));
        Assert.That(self.GetAttribute("id"), Is.EqualTo("join-1"));
        var seenByAlice = await alice.ReadUntilAsync(e => e.Name == "presence" && e.GetAttribute("from") == Room + "/Bob");
        Assert.That(seenByAlice.GetAttribute("id"), Is.Not.EqualTo("join-1"), "only the sender's own session gets its id back");

        // §7.6: a nick change; the id answers on the new nick's presence, not on the 303.
        await bob.SendAsync($"<presence to='{Room}/Robert' id='nick-1'/>");
        var gone = await bob.ReadUntilAsync(e => e.Name == "presence" && e.GetAttribute("type") == "unavailable" && Codes(e).Contains("303"));
        Assert.That(gone.GetAttribute("id"), Is.Not.EqualTo("nick-1"));
        var renamed = await bob.ReadUntilAsync(e => e.Name == "presence" && e.GetAttribute("from") == Room + "/Robert");
        Assert.That(renamed.GetAttribute("id"), Is.EqualTo("nick-1"));

        // A presence update, then §7.14 leaving.
        await bob.SendAsync($"<presence to='{Room}/Robert' id='away-1'><show>away</show></presence>");
        var away = await bob.ReadUntilAsync(e => e.Name == "presence" && e.ChildText("show", "jabber:client") == "away");
        Assert.That(away.GetAttribute("id"), Is.EqualTo("away-1"));
        await bob.SendAsync($"<presence to='{Room}/Robert' id='leave-1' type='unavailable'/>");
        var left = await bob.ReadUntilAsync(e => e.Name == "presence" && e.GetAttribute("type") == "unavailable");
        Assert.That(Codes(left), Does.Contain("110"));
        Assert.That(left.GetAttribute("id"), Is.EqualTo("leave-1"));
        Assert.That(left.Elements().Count(e => e.Name == "occupant-id"), Is.EqualTo(1), "XEP-0421 §4: one occupant id");
    }

    [Test]
    public async Task Admins_may_not_touch_the_owner_or_admin_lists_nor_ban_themselves_and_the_last_owner_stays()
    {
        await using var server = await TestServer.StartAsync(null, Users);
        await using var alice = await LoginAsync(server, "alice");
        await using var bob = await LoginAsync(server, "bob");
        await JoinAsync(alice, "Alice");
        await InstantRoomAsync(alice);
        var made = await alice.IqAsync($"<iq type='set' id='a' to='{Room}'><query xmlns='{Admin}'><item jid='bob@localhost' affiliation='admin'/></query></iq>");
        Assert.That(made.GetAttribute("type"), Is.EqualTo("result"), made.ToString());

        // §10.5 and §10.8: only owners modify the owner and admin lists.
        var owner = await bob.IqAsync($"<iq type='set' id='o' to='{Room}'><query xmlns='{Admin}'><item jid='carol@localhost' affiliation='owner'/></query></iq>");
        Assert.That(ErrorCondition(owner), Is.EqualTo("forbidden"), owner.ToString());
        var admin = await bob.IqAsync($"<iq type='set' id='d' to='{Room}'><query xmlns='{Admin}'><item jid='carol@localhost' affiliation='admin'/></query></iq>");
        Assert.That(ErrorCondition(admin), Is.EqualTo("forbidden"), admin.ToString());

        // §9.1: banning oneself is a conflict; banning an owner is not allowed.
        var self = await bob.IqAsync($"<iq type='set' id='b' to='{Room}'><query xmlns='{Admin}'><item jid='bob@localhost' affiliation='outcast'/></query></iq>");
        Assert.That(ErrorCondition(self), Is.EqualTo("conflict"), self.ToString());
        var banOwner = await bob.IqAsync($"<iq type='set' id='c' to='{Room}'><query xmlns='{Admin}'><item jid='alice@localhost' affiliation='outcast'/></query></iq>");
        Assert.That(ErrorCondition(banOwner), Is.EqualTo("not-allowed"), banOwner.ToString());

        // §10.2: the configuration form may not take the last owner away.
        var form = await alice.IqAsync($"<iq type='set' id='f' to='{Room}'><query xmlns='{MucOwner}'><x xmlns='jabber:x:data' type='submit'>" +
            "<field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value></field><field var='muc#roomconfig_roomowners'/></x></query></iq>");
        Assert.That(ErrorCondition(form), Is.EqualTo("conflict"), form.ToString());
        var list = await alice.IqAsync($"<iq type='set' id='l' to='{Room}'><query xmlns='{Admin}'><item jid='alice@localhost' affiliation='admin'/></query></iq>");
        Assert.That(ErrorCondition(list), Is.EqualTo("conflict"), list.ToString());
    }

    [Test]
    public async Task Who_reads_the_owner_list_depends_on_anonymity_and_strangers_get_bad_request_from_occupants()
    {
        await using var server = await TestServer.StartAsync(null, Users);
        await using var alice = await LoginAsync(server, "alice");
        await using var bob = await LoginAsync(server, "bob");
        await using var carol = await LoginAsync(server, "carol");
        await JoinAsync(alice, "Alice");
        await InstantRoomAsync(alice);
        await JoinAsync(bob, "Bob");
        var made = await alice.IqAsync($"<iq type='set' id='a' to='{Room}'><query xmlns='{Admin}'><item jid='dave@localhost' affiliation='admin'/></query></iq>");
        Assert.That(made.GetAttribute("type"), Is.EqualTo("result"), made.ToString());

        // §10.5, §10.8: in a semi-anonymous room only owners read the owner and admin lists.
        var semi = await bob.IqAsync($"<iq type='get' id='o1' to='{Room}'><query xmlns='{Admin}'><item affiliation='owner'/></query></iq>");
        Assert.That(ErrorCondition(semi), Is.EqualTo("forbidden"), semi.ToString());
        var admins = await alice.IqAsync($"<iq type='get' id='o2' to='{Room}'><query xmlns='{Admin}'><item affiliation='admin'/></query></iq>");
        Assert.That(admins.ToString(), Does.Contain("dave@localhost"));

        // In a non-anonymous room occupants see who owns it, also once the owner has left (§10); strangers do not.
        await InstantRoomAsync(alice, fields: Field("whois", "anyone"));
        await alice.SendAsync($"<presence to='{Room}/Alice' type='unavailable'/>");
        await alice.ReadUntilAsync(e => e.Name == "presence" && e.GetAttribute("type") == "unavailable");
        var owners = await bob.IqAsync($"<iq type='get' id='o' to='{Room}'><query xmlns='{Admin}'><item affiliation='owner'/></query></iq>");
        Assert.That(owners.ToString(), Does.Contain("alice@localhost"));
        var stranger = await carol.IqAsync($"<iq type='get' id='s' to='{Room}'><query xmlns='{Admin}'><item affiliation='owner'/></query></iq>");
        Assert.That(ErrorCondition(stranger), Is.EqualTo("forbidden"));
        var members = await bob.IqAsync($"<iq type='get' id='m' to='{Room}'><query xmlns='{Admin}'><item affiliation='member'/></query></iq>");
        Assert.That(ErrorCondition(members), Is.EqualTo("forbidden"), "§9.5: the member list of an open room is for admins");

        // §6.6: disco to an occupant from a non-occupant is a bad request; XEP-0410 pings stay not-acceptable.
        var info = await carol.IqAsync($"<iq type='get' id='i' to='{Room}/Bob'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
        Assert.That(ErrorCondition(info), Is.EqualTo("bad-request"), info.ToString());
        var ping = await carol.IqAsync($"<iq type='get' id='p' to='{Room}/Bob'><ping xmlns='urn:xmpp:ping'/></iq>");
        Assert.That(ErrorCondition(ping), Is.EqualTo("not-acceptable"));
    }

    [Test]
    public async Task Destroying_a_room_passes_on_the_alternate_venue_its_password_and_the_reason()
    {
        await using var server = await TestServer.StartAsync(null, Users);
        await using var alice = await LoginAsync(server, "alice");
        await using var bob = await LoginAsync(server, "bob");
        await JoinAsync(alice, "Alice");
        await InstantRoomAsync(alice);
        await JoinAsync(bob, "Bob");

        var destroy = await alice.IqAsync($"<iq type='set' id='d' to='{Room}'><query xmlns='{MucOwner}'><destroy jid='new@conference.localhost'>" +
            "<reason>moved</reason><password>secret</password></destroy></query></iq>");
        Assert.That(destroy.GetAttribute("type"), Is.EqualTo("result"), destroy.ToString());
        var p = await bob.ReadUntilAsync(e => e.Name == "presence" && e.GetAttribute("type") == "unavailable");
        var d = p.Child("x", MucUser)!.Child("destroy", MucUser)!;
        Assert.That(d.GetAttribute("jid"), Is.EqualTo("new@conference.localhost"));
        Assert.That(d.ChildText("reason", MucUser), Is.EqualTo("moved"));
        Assert.That(d.ChildText("password", MucUser), Is.EqualTo("secret"), "§10.9: the alternate venue's password");
    }
}
