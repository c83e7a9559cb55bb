using System.Security.Cryptography;
using Xmpp.Core.Xml;
using Xmpp.Server.Config;
using static Xmpp.Tests.EndToEnd.MucTests;

namespace Xmpp.Tests.EndToEnd;

/// <summary>XEP-0486 MUC avatars: a room's vcard-temp, set by its owners, read by anyone, announced by 104.</summary>
public sealed class MucAvatarTests
{
    private const string VCard = "vcard-temp";

    /// <summary>A 1x1 PNG.</summary>
    private const string Png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";

    private static string PhotoVCard(string binval = Png) => $"<vCard xmlns='{VCard}'><PHOTO><TYPE>image/png</TYPE><BINVAL>{binval}</BINVAL></PHOTO></vCard>";

#pragma warning disable CA5350 // XEP-0153's hash
    private static string Sha1Hex(string base64) => Convert.ToHexStringLower(SHA1.HashData(Convert.FromBase64String(base64)));
#pragma warning restore CA5350

    private static IEnumerable<string> RoomInfoValues(Element info, string var) =>
        info.Child("query", "http://jabber.org/protocol/disco#info")!.Child("x", "jabber:x:data")!.Elements()
            .Where(f => f.GetAttribute("var") == var).SelectMany(f => f.Elements().Select(v => v.Text));

    [Test]
    public async Task Owners_set_and_remove_the_room_avatar_others_read_it_and_occupants_hear_of_it()
    {
        await using var server = await TestServer.StartAsync(null, Users);
        await using var alice = await LoginAsync(server, "alice");
        await using var bob = await LoginAsync(server, "bob");
        await using var carol = await LoginAsync(server, "carol");
        await JoinAsync(alice, "Alice");
        await InstantRoomAsync(alice);
        await JoinAsync(bob, "Bob");

        // §3.1: the service and its rooms say they speak vcard-temp.
        var service = await carol.IqAsync("<iq type='get' id='s' to='conference.localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
        Assert.That(service.ToString(), Does.Contain($"var='{VCard}'"));
        var info = await carol.IqAsync($"<iq type='get' id='i' to='{Room}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
        Assert.That(info.ToString(), Does.Contain($"var='{VCard}'"));
        Assert.That(RoomInfoValues(info, "muc#roominfo_avatarhash"), Is.Empty, "no avatar, no hash");

        // No vCard yet: an empty one (XEP-0054 §3.1).
        var none = await carol.IqAsync($"<iq type='get' id='n' to='{Room}'><vCard xmlns='{VCard}'/></iq>");
        Assert.That(none.GetAttribute("type"), Is.EqualTo("result"), none.ToString());
        Assert.That(none.Child("vCard", VCard)!.ElementCount(), Is.Zero);

        // §3.2: a participant may not set it; the owner may, and the occupants get a 104.
        var refused = await bob.IqAsync($"<iq type='set' id='b' to='{Room}'>{PhotoVCard()}</iq>");
        Assert.That(ErrorCondition(refused), Is.EqualTo("forbidden"));
        var set = await alice.IqAsync($"<iq type='set' id='a' to='{Room}'>{PhotoVCard()}</iq>");
        Assert.That(set.GetAttribute("type"), Is.EqualTo("result"), set.ToString());
        var notice = await bob.ReadUntilAsync(e => e.Name == "message" && Codes(e).Contains("104"));
        Assert.That(notice.GetAttribute("from"), Is.EqualTo(Room));
        Assert.That(notice.GetAttribute("type"), Is.EqualTo("groupchat"));

        // §3.3–§3.4: the hash in muc#roominfo, the vCard for anyone.
        info = await carol.IqAsync($"<iq type='get' id='i2' to='{Room}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
        Assert.That(RoomInfoValues(info, "muc#roominfo_avatarhash"), Is.EqualTo(new[] { Sha1Hex(Png) }));
        var got = await carol.IqAsync($"<iq type='get' id='g' to='{Room}'><vCard xmlns='{VCard}'/></iq>");
        Assert.That(got.Child("vCard", VCard)!.Child("PHOTO", VCard)!.ChildText("BINVAL", VCard), Is.EqualTo(Png));

        // Data that is not base64 is refused; an empty vCard removes the avatar.
        var bad = await alice.IqAsync($"<iq type='set' id='x' to='{Room}'>{PhotoVCard("not base64!")}</iq>");
        Assert.That(ErrorCondition(bad), Is.EqualTo("bad-request"));
        var removed = await alice.IqAsync($"<iq type='set' id='r' to='{Room}'><vCard xmlns='{VCard}'/></iq>");
        Assert.That(removed.GetAttribute("type"), Is.EqualTo("result"), removed.ToString());
        var after = await carol.IqAsync($"<iq type='get' id='g2' to='{Room}'><vCard xmlns='{VCard}'/></iq>");
        Assert.That(after.Child("vCard", VCard)!.Child("PHOTO", VCard), Is.Null);
        info = await carol.IqAsync($"<iq type='get' id='i3' to='{Room}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
        Assert.That(RoomInfoValues(info, "muc#roominfo_avatarhash"), Is.Empty);
    }

    [Test]
    public async Task A_persistent_room_keeps_its_avatar_across_a_restart_and_loses_it_when_destroyed()
    {
        var dataDir = Path.Combine(Path.GetTempPath(), "xmpp-mucavatar-" + Guid.NewGuid().ToString("N"));
        ServerOptions Options(ServerOptions o) => o with { DataDirectory = dataDir, Storage = new StorageOptions { File = Path.Combine(dataDir, "xmpp.db") } };
        try
        {
            await using (var server = await TestServer.StartAsync(Options, Users))
            {
                await using var alice = await LoginAsync(server, "alice");
                await JoinAsync(alice, "Alice");
                await InstantRoomAsync(alice);

                // Set while the room is temporary: written once the room becomes persistent.
                var set = await alice.IqAsync($"<iq type='set' id='a' to='{Room}'>{PhotoVCard()}</iq>");
                Assert.That(set.GetAttribute("type"), Is.EqualTo("result"), set.ToString());
                await InstantRoomAsync(alice, fields: Field("persistentroom", "1"));
            }

            await using (var server = await TestServer.StartAsync(Options))
            {
                await using var bob = await LoginAsync(server, "bob");
                var got = await bob.IqAsync($"<iq type='get' id='g' to='{Room}'><vCard xmlns='{VCard}'/></iq>");
                Assert.That(got.Child("vCard", VCard)!.Child("PHOTO", VCard)!.ChildText("BINVAL", VCard), Is.EqualTo(Png));
                var info = await bob.IqAsync($"<iq type='get' id='i' to='{Room}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
                Assert.That(RoomInfoValues(info, "muc#roominfo_avatarhash"), Is.EqualTo(new[] { Sha1Hex(Png) }));

                await using var alice = await LoginAsync(server, "alice");
                await JoinAsync(alice, "Alice");
                var destroy = await alice.IqAsync($"<iq type='set' id='d' to='{Room}'><query xmlns='{MucOwner}'><destroy/></query></iq>");
                Assert.That(destroy.GetAttribute("type"), Is.EqualTo("result"), destroy.ToString());
            }

            await using (var server = await TestServer.StartAsync(Options))
            {
                // A new room of the same name starts without the old one's avatar.
                await using var alice = await LoginAsync(server, "alice");
                await JoinAsync(alice, "Alice");
                await InstantRoomAsync(alice);
                var got = await alice.IqAsync($"<iq type='get' id='g' to='{Room}'><vCard xmlns='{VCard}'/></iq>");
                Assert.That(got.Child("vCard", VCard)!.ElementCount(), Is.Zero);
            }
        }
        finally
        {
            Directory.Delete(dataDir, recursive: true);
        }
    }
}
