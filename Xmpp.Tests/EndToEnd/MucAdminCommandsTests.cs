using Xmpp.Core.Addressing;
using Xmpp.Core.Xml;
using static Xmpp.Tests.EndToEnd.MucTests;

namespace Xmpp.Tests.EndToEnd;

/// <summary>The server administrators' room commands (XEP-0050) on the multi-user chat service's JID.</summary>
public sealed class MucAdminCommandsTests
{
    private const string Commands = "http://jabber.org/protocol/commands";
    private const string Service = "conference.localhost";
    private const string ListNode = "urn:xmppserver:muc#list-rooms";
    private const string DestroyNode = "urn:xmppserver:muc#destroy-rooms";

    private static Task<TestServer> StartAsync() =>
        TestServer.StartAsync(o => o with { Admins = [Jid.Parse("alice@localhost")] }, Users);

    private static List<string> Column(Element command, string var) =>
        command.Child("x", "jabber:x:data")!.Elements().Where(e => e.Name == "item")
            .Select(i => i.Elements().First(f => f.GetAttribute("var") == var).ChildText("value", "jabber:x:data")!).ToList();

    [Test]
    public async Task Administrators_list_every_room_and_destroy_rooms_from_the_service()
    {
        await using var server = await StartAsync();
        await using var alice = await LoginAsync(server, "alice");
        await using var bob = await LoginAsync(server, "bob");
        await using var carol = await LoginAsync(server, "carol");
        await JoinAsync(bob, "Bob");
        await InstantRoomAsync(bob, fields: Field("publicroom", "0") + Field("roomname", "Bob's"));
        await JoinAsync(carol, "Carol");
        await JoinAsync(bob, "Bob", "other@conference.localhost");
        await InstantRoomAsync(bob, "other@conference.localhost");

        // Offered to administrators only.
        var info = await alice.IqAsync($"<iq type='get' id='i' to='{Service}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
        Assert.That(info.ToString(), Does.Contain($"var='{Commands}'"));
        var list = await alice.IqAsync($"<iq type='get' id='l' to='{Service}'><query xmlns='http://jabber.org/protocol/disco#items' node='{Commands}'/></iq>");
        Assert.That(list.ToString(), Does.Contain(ListNode).And.Contain(DestroyNode));
        var notBob = await bob.IqAsync($"<iq type='get' id='l2' to='{Service}'><query xmlns='http://jabber.org/protocol/disco#items' node='{Commands}'/></iq>");
        Assert.That(notBob.Child("query", "http://jabber.org/protocol/disco#items")!.Elements(), Is.Empty);
        var refused = await bob.IqAsync($"<iq type='set' id='r' to='{Service}'><command xmlns='{Commands}' node='{DestroyNode}' action='execute'/></iq>");
        Assert.That(ErrorCondition(refused), Is.EqualTo("forbidden"));
        var notAtHost = await alice.IqAsync($"<iq type='set' id='h' to='localhost'><command xmlns='{Commands}' node='{ListNode}' action='execute'/></iq>");
        Assert.That(ErrorCondition(notAtHost), Is.EqualTo("item-not-found"), "the room commands are the service's, not the host's");

        // The list shows hidden rooms too.
        var listed = await alice.IqAsync($"<iq type='set' id='x' to='{Service}'><command xmlns='{Commands}' node='{ListNode}' action='execute'/></iq>");
        var rooms = listed.Child("command", Commands)!;
        Assert.That(rooms.GetAttribute("status"), Is.EqualTo("completed"), listed.ToString());
        Assert.That(Column(rooms, "jid"), Is.EqualTo(new[] { "other@conference.localhost", Room }));
        Assert.That(Column(rooms, "occupants"), Is.EqualTo(new[] { "1", "2" }));
        Assert.That(Column(rooms, "public"), Is.EqualTo(new[] { "1", "0" }));

        // Destroy: the form lists the rooms; the occupants are told, as by an owner (§10.9).
        var first = await alice.IqAsync($"<iq type='set' id='d1' to='{Service}'><command xmlns='{Commands}' node='{DestroyNode}' action='execute'/></iq>");
        var cmd = first.Child("command", Commands)!;
        Assert.That(cmd.GetAttribute("status"), Is.EqualTo("executing"), first.ToString());
        Assert.That(cmd.ToString(), Does.Contain(Room));
        var done = await alice.IqAsync($"<iq type='set' id='d2' to='{Service}'><command xmlns='{Commands}' node='{DestroyNode}' sessionid='{cmd.GetAttribute("sessionid")}' action='complete'>" +
            "<x xmlns='jabber:x:data' type='submit'><field var='rooms'><value>" + Room + "</value></field>" +
            "<field var='reason'><value>closed by the administrators</value></field><field var='alternate'><value>other@conference.localhost</value></field></x></command></iq>");
        var completed = done.Child("command", Commands)!;
        Assert.That(completed.GetAttribute("status"), Is.EqualTo("completed"), done.ToString());
        Assert.That(completed.Child("note", Commands)!.GetAttribute("type"), Is.EqualTo("info"));
        var gone = await carol.ReadUntilAsync(e => e.Name == "presence" && e.GetAttribute("type") == "unavailable");
        var destroy = gone.Child("x", MucUser)!.Child("destroy", MucUser)!;
        Assert.That(destroy.GetAttribute("jid"), Is.EqualTo("other@conference.localhost"));
        Assert.That(destroy.ChildText("reason", MucUser), Is.EqualTo("closed by the administrators"));
        var noRoom = await carol.IqAsync($"<iq type='get' id='g' to='{Room}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
        Assert.That(ErrorCondition(noRoom), Is.EqualTo("item-not-found"));
    }
}
