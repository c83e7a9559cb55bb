using Xmpp.Core.Xml;
using static Xmpp.Tests.EndToEnd.MucTests;

namespace Xmpp.Tests.EndToEnd;

/// <summary>XEP-0433 Extended Channel Search on the multi-user chat service's JID, with XEP-0059 pages.</summary>
public sealed class ChannelSearchTests
{
    private const string Search = "urn:xmpp:channel-search:0:search";
    private const string Error = "urn:xmpp:channel-search:0:error";
    private const string Rsm = "http://jabber.org/protocol/rsm";
    private const string Service = "conference.localhost";

    private static string Form(params (string Var, string Value)[] fields) =>
        "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>urn:xmpp:channel-search:0:search-params</value></field>" +
        string.Concat(fields.Select(f => $"<field var='{f.Var}'><value>{f.Value}</value></field>")) + "</x>";

    private static Task<Element> SearchAsync(RawXmppClient c, string form, string set = "") =>
        c.IqAsync($"<iq type='get' id='q{Guid.NewGuid():N}' to='{Service}'><search xmlns='{Search}'>{set}{form}</search></iq>");

    private static List<string> Addresses(Element reply) =>
        reply.Child("result", Search)!.Elements().Where(e => e.Name == "item").Select(e => e.GetAttribute("address")!.Split('@')[0]).ToList();

    private static Element? Application(Element reply) => reply.Child("error", "jabber:client")?.Elements().FirstOrDefault(e => e.Namespace == Error);

    /// <summary>Creates a configured room with the given fields, its creator still in it.</summary>
    private static async Task RoomAsync(RawXmppClient owner, string name, string fields)
    {
        var room = name + "@conference.localhost";
        await JoinAsync(owner, "owner", room);
        await InstantRoomAsync(owner, room, fields);
    }

    [Test]
    public async Task The_service_offers_the_search_form_and_finds_public_rooms_by_name_description_and_address()
    {
        await using var server = await TestServer.StartAsync(null, Users);
        await using var alice = await LoginAsync(server, "alice");
        await using var bob = await LoginAsync(server, "bob");
        await RoomAsync(alice, "tea", Field("roomname", "Tea Party") + Field("roomdesc", "Earl Grey and friends"));
        await RoomAsync(alice, "coffee", Field("roomname", "Coffee") + Field("roomdesc", "Espresso") + Field("membersonly", "1") + Field("whois", "anyone"));
        await RoomAsync(alice, "secret-tea", Field("roomname", "Hidden tea") + Field("publicroom", "0"));
        await JoinAsync(alice, "owner", "locked@conference.localhost"); // never configured: locked, not listed

        // §3.1: found by its feature on the service that the host lists.
        var info = await bob.IqAsync($"<iq type='get' id='i' to='{Service}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
        Assert.That(info.ToString(), Does.Contain($"var='{Search}'"));

        // §4.2.1 and §6.1: the form, with the sort key and service types preset.
        var form = await bob.IqAsync($"<iq type='get' id='f' to='{Service}'><search xmlns='{Search}'/></iq>");
        var x = form.Child("search", Search)!.Child("x", "jabber:x:data")!;
        var fields = x.Elements().Where(e => e.Name == "field").ToDictionary(e => e.GetAttribute("var")!, e => e.GetAttribute("type"));
        Assert.That(fields, Does.ContainKey("q").WithValue("text-single").And.ContainKey("all").WithValue("boolean")
            .And.ContainKey("sinname").WithValue("boolean").And.ContainKey("sindescription").WithValue("boolean")
            .And.ContainKey("sinaddress").WithValue("boolean").And.ContainKey("types").WithValue("list-multi").And.ContainKey("key").WithValue("list-single"));

        // Keywords, case-insensitively, in the name, the description or the address; only public configured rooms.
        Assert.That(Addresses(await SearchAsync(bob, Form(("q", "TEA")))), Is.EqualTo(new[] { "tea" }));
        Assert.That(Addresses(await SearchAsync(bob, Form(("q", "espresso")))), Is.EqualTo(new[] { "coffee" }));
        Assert.That(Addresses(await SearchAsync(bob, Form(("q", "grey earl")))), Is.EqualTo(new[] { "tea" }), "every term must match");
        Assert.That(Addresses(await SearchAsync(bob, Form(("q", "espresso"), ("sindescription", "false")))), Is.Empty);
        Assert.That(Addresses(await SearchAsync(bob, Form(("q", "coff"), ("sinname", "false"), ("sindescription", "false")))), Is.EqualTo(new[] { "coffee" }), "in the address");
        Assert.That(Addresses(await SearchAsync(bob, Form(("all", "true")))), Is.EqualTo(new[] { "coffee", "tea" }));

        // §6.2: what an item says.
        var all = await SearchAsync(bob, Form(("all", "true")));
        var items = all.Child("result", Search)!.Elements().Where(e => e.Name == "item").ToList();
        var coffee = items[0];
        Assert.That(coffee.GetAttribute("address"), Is.EqualTo("coffee@conference.localhost"));
        Assert.That(coffee.ChildText("name", Search), Is.EqualTo("Coffee"));
        Assert.That(coffee.ChildText("description", Search), Is.EqualTo("Espresso"));
        Assert.That(coffee.ChildText("nusers", Search), Is.EqualTo("1"));
        Assert.That(coffee.ChildText("service-type", Search), Is.EqualTo("xep-0045"));
        Assert.That(coffee.Child("is-open", Search), Is.Null, "members-only");
        Assert.That(coffee.ChildText("anonymity-mode", Search), Is.EqualTo("{urn:xmpp:channel-search:0:anonymity}none"));
        Assert.That(items[1].Child("is-open", Search), Is.Not.Null);
        Assert.That(items[1].ChildText("anonymity-mode", Search), Is.EqualTo("muc_semianonymous"));

        // §5: nothing found is an empty result, not an error; other service types are not returned.
        var nothing = await SearchAsync(bob, Form(("q", "nothing-like-this")));
        Assert.That(nothing.GetAttribute("type"), Is.EqualTo("result"));
        Assert.That(Addresses(nothing), Is.Empty);
        Assert.That(Addresses(await SearchAsync(bob, Form(("all", "true"), ("types", "xep-0369")))), Is.Empty);
        Assert.That(Addresses(await SearchAsync(bob, Form(("all", "true"), ("unknown-field", "x")))), Has.Count.EqualTo(2), "§5: unknown fields are ignored");
    }

    [Test]
    public async Task Conflicting_missing_and_unsupported_conditions_get_the_errors_of_section_4_2_2()
    {
        await using var server = await TestServer.StartAsync(null, Users);
        await using var bob = await LoginAsync(server, "bob");

        var conflict = await SearchAsync(bob, Form(("all", "true"), ("q", "tea")));
        Assert.That(ErrorCondition(conflict), Is.EqualTo("bad-request"));
        Assert.That(conflict.Child("error", "jabber:client")!.GetAttribute("type"), Is.EqualTo("modify"));
        Assert.That(Application(conflict)!.Name, Is.EqualTo("conflicting-fields"));
        Assert.That(Application(conflict)!.Elements().Select(v => v.Text), Is.EquivalentTo(new[] { "all", "q" }));

        var none = await SearchAsync(bob, Form());
        Assert.That(ErrorCondition(none), Is.EqualTo("bad-request"));
        Assert.That(none.Child("error", "jabber:client")!.GetAttribute("type"), Is.EqualTo("cancel"));
        Assert.That(Application(none)!.Name, Is.EqualTo("no-search-conditions"));

        var key = await SearchAsync(bob, Form(("q", "tea"), ("key", "{urn:example}colour")));
        Assert.That(ErrorCondition(key), Is.EqualTo("feature-not-implemented"));
        Assert.That(key.Child("error", "jabber:client")!.GetAttribute("type"), Is.EqualTo("modify"));
        Assert.That(Application(key)!.Name, Is.EqualTo("invalid-sort-key"));

        var spaces = await SearchAsync(bob, Form(("q", "   ")));
        Assert.That(Application(spaces)!.Name, Is.EqualTo("invalid-search-terms"));
    }

    [Test]
    public async Task Results_sort_by_address_or_by_users_and_page_with_result_set_management()
    {
        await using var server = await TestServer.StartAsync(null, Users);
        await using var alice = await LoginAsync(server, "alice");
        await using var bob = await LoginAsync(server, "bob");
        await using var carol = await LoginAsync(server, "carol");
        foreach (var name in new[] { "r1", "r2", "r3", "r4", "r5" })
        {
            await RoomAsync(alice, name, Field("roomname", "Room " + name));
        }

        await JoinAsync(bob, "bob", "r4@conference.localhost");
        await JoinAsync(carol, "carol", "r4@conference.localhost");
        await JoinAsync(bob, "bob", "r2@conference.localhost");

        var byUsers = await SearchAsync(bob, Form(("all", "true"), ("key", "{urn:xmpp:channel-search:0:order}nusers")));
        Assert.That(Addresses(byUsers), Is.EqualTo(new[] { "r4", "r2", "r1", "r3", "r5" }), "descending by users, then by address");
        var minUsers = await SearchAsync(bob, Form(("all", "true"), ("min_users", "2")));
        Assert.That(Addresses(minUsers), Is.EqualTo(new[] { "r2", "r4" }));

        // XEP-0059: pages of two by address, forward with after, backward with before, and by index.
        var first = await SearchAsync(bob, Form(("all", "true")), $"<set xmlns='{Rsm}'><max>2</max></set>");
        Assert.That(Addresses(first), Is.EqualTo(new[] { "r1", "r2" }));
        var set = first.Child("result", Search)!.Child("set", Rsm)!;
        Assert.That(set.ChildText("count", Rsm), Is.EqualTo("5"));
        Assert.That(set.Child("first", Rsm)!.GetAttribute("index"), Is.EqualTo("0"));
        var next = await SearchAsync(bob, Form(("all", "true")), $"<set xmlns='{Rsm}'><max>2</max><after>{set.ChildText("last", Rsm)}</after></set>");
        Assert.That(Addresses(next), Is.EqualTo(new[] { "r3", "r4" }));
        var last = await SearchAsync(bob, Form(("all", "true")), $"<set xmlns='{Rsm}'><max>2</max><before/></set>");
        Assert.That(Addresses(last), Is.EqualTo(new[] { "r4", "r5" }));
        var back = await SearchAsync(bob, Form(("all", "true")), $"<set xmlns='{Rsm}'><max>2</max><before>r3@conference.localhost</before></set>");
        Assert.That(Addresses(back), Is.EqualTo(new[] { "r1", "r2" }));
        var index = await SearchAsync(bob, Form(("all", "true")), $"<set xmlns='{Rsm}'><max>2</max><index>4</index></set>");
        Assert.That(Addresses(index), Is.EqualTo(new[] { "r5" }));
        var count = await SearchAsync(bob, Form(("all", "true")), $"<set xmlns='{Rsm}'><max>0</max></set>");
        Assert.That(Addresses(count), Is.Empty);
        Assert.That(count.Child("result", Search)!.Child("set", Rsm)!.ChildText("count", Rsm), Is.EqualTo("5"));

        // By address, a cursor whose room has gone still places the next page.
        var gone = await SearchAsync(bob, Form(("all", "true")), $"<set xmlns='{Rsm}'><max>2</max><after>r2a@conference.localhost</after></set>");
        Assert.That(Addresses(gone), Is.EqualTo(new[] { "r3", "r4" }));
    }
}
