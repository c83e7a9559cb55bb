using Xmpp.Core.Xml;
using Xmpp.Server.Config;
using Xmpp.Server.Modules.PubSub;

namespace Xmpp.Tests.EndToEnd;

/// <summary>The XEP-0060 publish-subscribe service on pubsub.localhost (with XEP-0248 collections).</summary>
public sealed class PubSubTests
{
    private const string Service = "pubsub.localhost";
    private const string PubSub = PubSubProtocol.Namespace;
    private const string Owner = PubSubProtocol.OwnerNamespace;
    private const string Event = PubSubProtocol.EventNamespace;
    private const string Errors = PubSubProtocol.ErrorsNamespace;
    private const string Stanzas = "urn:ietf:params:xml:ns:xmpp-stanzas";
    private const string Atom = "http://www.w3.org/2005/Atom";

    private static readonly string[] Users = ["alice@localhost:alice-pass", "bob@localhost:bob-pass", "carol@localhost:carol-pass"];

    private static Task<RawXmppClient> LoginAsync(TestServer server, string user, string resource = "r") =>
        ImTests.OnlineAsync(server, user, user + "-pass", resource);

    private static string NewId() => Guid.NewGuid().ToString("N")[..10];

    private static Task<Element> Set(RawXmppClient c, string inner, string ns = PubSub) =>
        c.IqAsync($"<iq type='set' id='{NewId()}' to='{Service}'><pubsub xmlns='{ns}'>{inner}</pubsub></iq>");

    private static Task<Element> Get(RawXmppClient c, string inner, string ns = PubSub) =>
        c.IqAsync($"<iq type='get' id='{NewId()}' to='{Service}'><pubsub xmlns='{ns}'>{inner}</pubsub></iq>");

    private static Task<Element> Disco(RawXmppClient c, string what, string? node = null, string to = Service) =>
        c.IqAsync($"<iq type='get' id='{NewId()}' to='{to}'><query xmlns='http://jabber.org/protocol/disco#{what}'{(node is null ? string.Empty : $" node='{node}'")}/></iq>");

    private static string Form(string type, string formType, params (string Var, string Value)[] fields) =>
        $"<x xmlns='jabber:x:data' type='{type}'><field var='FORM_TYPE' type='hidden'><value>{formType}</value></field>" +
        string.Concat(fields.Select(f => $"<field var='{f.Var}'><value>{f.Value}</value></field>")) + "</x>";

    private static string Config(params (string Var, string Value)[] fields) => Form("submit", PubSubProtocol.NodeConfigFormType, fields);

    private static Task<Element> CreateAsync(RawXmppClient c, string node, params (string Var, string Value)[] config) =>
        Set(c, $"<create node='{node}'/>" + (config.Length > 0 ? $"<configure>{Config(config)}</configure>" : string.Empty));

    private static string Entry(string title) => $"<entry xmlns='{Atom}'><title>{title}</title></entry>";

    private static Task<Element> PublishAsync(RawXmppClient c, string node, string id, string title, string options = "") =>
        Set(c, $"<publish node='{node}'><item id='{id}'>{Entry(title)}</item></publish>{options}");

    private static Task<Element> SubscribeAsync(RawXmppClient c, string node, string jid) => Set(c, $"<subscribe node='{node}' jid='{jid}'/>");

    private static Task<Element> ItemsAsync(RawXmppClient c, string node, string extra = "") => Get(c, $"<items node='{node}'{extra}/>");

    private static async Task<Element> Ok(Task<Element> request)
    {
        var reply = await request;
        Assert.That(reply.GetAttribute("type"), Is.EqualTo("result"), reply.ToString());
        return reply;
    }

    /// <summary>The stanza error's condition and its pubsub#errors element, if any ("condition/application").</summary>
    private static string Error(Element reply)
    {
        Assert.That(reply.GetAttribute("type"), Is.EqualTo("error"), reply.ToString());
        var error = reply.Child("error", "jabber:client")!;
        var condition = error.Elements().First(e => e.Namespace == Stanzas).Name;
        return error.Elements().FirstOrDefault(e => e.Namespace == Errors) is { } app ? condition + "/" + app.Name : condition;
    }

    private static List<string> ItemIds(Element reply) =>
        reply.Child("pubsub", PubSub)!.Child("items", PubSub)!.Elements().Select(e => e.GetAttribute("id")!).ToList();

    /// <summary>The pubsub events among what a client received.</summary>
    private static List<Element> Events(IEnumerable<Element> seen) =>
        seen.Where(e => e.Name == "message" && e.Child("event", Event) is not null).Select(e => e.Child("event", Event)!.FirstElement()!).ToList();

    private static string Subscription(Element reply) =>
        reply.Child("pubsub", PubSub)!.Child("subscription", PubSub)!.GetAttribute("subscription")!;

    private static string SubId(Element reply) =>
        reply.Child("pubsub", PubSub)!.Child("subscription", PubSub)!.GetAttribute("subid")!;

    private static Dictionary<string, List<string>> Fields(Element form) =>
        form.Elements().Where(e => e.Name == "field").ToDictionary(f => f.GetAttribute("var")!, f => f.Elements().Where(v => v.Name == "value").Select(v => v.Text).ToList());

    [Test]
    public async Task The_service_is_found_and_nodes_are_created_configured_published_to_and_read()
    {
        await using var server = await TestServer.StartAsync(null, Users);
        await using var alice = await LoginAsync(server, "alice");
        await using var bob = await LoginAsync(server, "bob");

        // §5.1: found in the host's items, identity pubsub/service, the features it implements.
        Assert.That((await Disco(alice, "items", to: "localhost")).ToString(), Does.Contain(Service));
        var info = (await Disco(alice, "info")).FirstElement()!;
        Assert.That(info.Elements().Any(e => e.Name == "identity" && e.GetAttribute("category") == "pubsub" && e.GetAttribute("type") == "service"));
        var features = info.Elements().Where(e => e.Name == "feature").Select(e => e.GetAttribute("var")).ToList();
        Assert.That(features, Is.SupersetOf(new[] { PubSub, PubSub + "#publish", PubSub + "#subscribe", PubSub + "#instant-nodes", PubSub + "#access-authorize", PubSub + "#collections" }));

        // §8.1.2: an instant node gets a name from the service.
        var instant = await Ok(Set(alice, "<create/>"));
        Assert.That(instant.Child("pubsub", PubSub)!.Child("create", PubSub)!.GetAttribute("node"), Is.Not.Empty);

        // §8.3 the default configuration; §8.1.3 create and configure.
        var defaults = await Ok(Get(alice, "<default/>", Owner));
        var defaultFields = Fields(defaults.Child("pubsub", Owner)!.Child("default", Owner)!.Child("x", "jabber:x:data")!);
        Assert.That(defaultFields.Keys, Is.SupersetOf(new[] { "pubsub#title", "pubsub#deliver_payloads", "pubsub#notify_config", "pubsub#notify_delete", "pubsub#notify_retract", "pubsub#persist_items", "pubsub#max_items", "pubsub#access_model", "pubsub#publish_model", "pubsub#send_last_published_item", "pubsub#notification_type", "pubsub#node_type", "pubsub#collection" }));
        Assert.That(defaultFields["pubsub#access_model"], Is.EqualTo(new[] { "open" }));
        await Ok(CreateAsync(alice, "news", ("pubsub#title", "Alice news"), ("pubsub#max_items", "2")));
        Assert.That(Error(await CreateAsync(bob, "news")), Is.EqualTo("conflict"));

        // Only owners configure (§8.2.3.2); the form reads back what was set.
        Assert.That(Error(await Get(bob, "<configure node='news'/>", Owner)), Is.EqualTo("forbidden"));
        var form = await Ok(Get(alice, "<configure node='news'/>", Owner));
        var fields = Fields(form.Child("pubsub", Owner)!.Child("configure", Owner)!.Child("x", "jabber:x:data")!);
        Assert.That((fields["pubsub#title"][0], fields["pubsub#max_items"][0]), Is.EqualTo(("Alice news", "2")));
        Assert.That(Error(await Set(alice, $"<configure node='news'>{Config(("pubsub#access_model", "telepathy"))}</configure>", Owner)), Is.EqualTo("not-acceptable"));

        // §7.1: items are kept, at most max_items of them, newest last; the publisher learns the id.
        foreach (var n in new[] { "1", "2", "3" })
        {
            var published = await Ok(PublishAsync(alice, "news", "n" + n, "Story " + n));
            Assert.That(published.Child("pubsub", PubSub)!.Child("publish", PubSub)!.Child("item", PubSub)!.GetAttribute("id"), Is.EqualTo("n" + n));
        }

        var generated = await Ok(Set(alice, $"<publish node='news'><item>{Entry("no id")}</item></publish>"));
        var newId = generated.Child("pubsub", PubSub)!.Child("publish", PubSub)!.Child("item", PubSub)!.GetAttribute("id");
        Assert.That(ItemIds(await Ok(ItemsAsync(bob, "news"))), Is.EqualTo(new[] { "n3", newId }));
        Assert.That(ItemIds(await Ok(ItemsAsync(bob, "news", " max_items='1'"))), Is.EqualTo(new[] { newId }));
        var byId = await Ok(Get(bob, "<items node='news'><item id='n3'/></items>"));
        Assert.That(byId.ToString(), Does.Contain("Story 3"));

        // §7.1.5: publish-options are preconditions.
        var precondition = Form("submit", PubSubProtocol.PublishOptionsFormType, ("pubsub#access_model", "whitelist"));
        Assert.That(Error(await PublishAsync(alice, "news", "n4", "Story 4", $"<publish-options>{precondition}</publish-options>")), Is.EqualTo("conflict/precondition-not-met"));
        var holds = Form("submit", PubSubProtocol.PublishOptionsFormType, ("pubsub#access_model", "open"), ("pubsub#max_items", "2"));
        await Ok(PublishAsync(alice, "news", "n4", "Story 4", $"<publish-options>{holds}</publish-options>"));

        // §7.1.4: publishing to a node that does not exist creates it, with the publish-options as its configuration.
        var auto = Form("submit", PubSubProtocol.PublishOptionsFormType, ("pubsub#max_items", "5"), ("pubsub#title", "Made on the fly"));
        await Ok(PublishAsync(bob, "bobs-notes", "b1", "Note", $"<publish-options>{auto}</publish-options>"));
        var affiliations = await Ok(Get(bob, "<affiliations/>"));
        Assert.That(affiliations.ToString(), Does.Contain("node='bobs-notes'").And.Contain("affiliation='owner'"));

        // §5.3 and §5.5: a node's identity and meta-data, its items in disco#items.
        var nodeInfo = (await Ok(Disco(bob, "info", "news"))).FirstElement()!;
        Assert.That(nodeInfo.Elements().Any(e => e.Name == "identity" && e.GetAttribute("type") == "leaf"));
        Assert.That(nodeInfo.ToString(), Does.Contain("pubsub#meta-data").And.Contain("Alice news").And.Contain("alice@localhost"));
        var nodeItems = (await Ok(Disco(bob, "items", "news"))).FirstElement()!.Elements().ToList();
        Assert.That(nodeItems.Select(i => i.GetAttribute("name")), Is.EquivalentTo(new[] { newId, "n4" }));
        Assert.That(nodeItems.All(i => i.GetAttribute("node") is null));
        var nodes = (await Ok(Disco(bob, "items"))).FirstElement()!.Elements().Select(e => e.GetAttribute("node")).ToList();
        Assert.That(nodes, Is.SupersetOf(new[] { "news", "bobs-notes" }));
        Assert.That(Error(await Disco(bob, "info", "no-such-node")), Is.EqualTo("item-not-found"));
    }

    [Test]
    public async Task Subscribers_are_notified_of_items_retractions_purges_and_configuration()
    {
        await using var server = await TestServer.StartAsync(null, Users);
        await using var alice = await LoginAsync(server, "alice");
        await using var bob = await LoginAsync(server, "bob");
        await Ok(CreateAsync(alice, "feed", ("pubsub#notify_config", "true")));

        var subscribed = await Ok(SubscribeAsync(bob, "feed", "bob@localhost"));
        Assert.That(Subscription(subscribed), Is.EqualTo("subscribed"));
        var own = await Ok(Get(bob, "<subscriptions/>"));
        Assert.That(own.Child("pubsub", PubSub)!.Child("subscriptions", PubSub)!.Elements().Single().GetAttribute("subid"), Is.EqualTo(SubId(subscribed)));

        // §7.1.2.1: with the payload, from the service, as a headline.
        await Ok(PublishAsync(alice, "feed", "i1", "First"));
        var messages = (await bob.DrainAsync()).Where(e => e.Name == "message").ToList();
        Assert.That(messages, Has.Count.EqualTo(1));
        Assert.That((messages[0].GetAttribute("from"), messages[0].GetAttribute("type")), Is.EqualTo((Service, "headline")));
        var items = Events(messages).Single();
        Assert.That((items.Name, items.GetAttribute("node")), Is.EqualTo(("items", "feed")));
        Assert.That(items.Child("item", Event)!.Child("entry", Atom)!.ChildText("title", Atom), Is.EqualTo("First"));

        // Notification-only now (§7.1.2.2): the configuration change is announced with its form (notify_config).
        await Ok(Set(alice, $"<configure node='feed'>{Config(("pubsub#deliver_payloads", "false"))}</configure>", Owner));
        var configuration = Events(await bob.DrainAsync()).Single();
        Assert.That((configuration.Name, configuration.GetAttribute("node")), Is.EqualTo(("configuration", "feed")));
        await Ok(PublishAsync(alice, "feed", "i2", "Second"));
        var bare = Events(await bob.DrainAsync()).Single().Child("item", Event)!;
        Assert.That((bare.GetAttribute("id"), bare.FirstElement()), Is.EqualTo(("i2", (Element?)null)));

        // §7.2: a retraction is announced; §8.5: so is a purge.
        await Ok(Set(alice, "<retract node='feed' notify='true'><item id='i1'/></retract>"));
        Assert.That(Events(await bob.DrainAsync()).Single().Child("retract", Event)!.GetAttribute("id"), Is.EqualTo("i1"));
        Assert.That(Error(await Set(alice, "<retract node='feed'><item id='i1'/></retract>")), Is.EqualTo("item-not-found"));
        await Ok(Set(alice, "<purge node='feed'/>", Owner));
        Assert.That(Events(await bob.DrainAsync()).Single().Name, Is.EqualTo("purge"));
        Assert.That(ItemIds(await Ok(ItemsAsync(bob, "feed"))), Is.Empty);

        // §6.1.6 multi-subscribe: a second subscription has its own SubID; one message carries both as SHIM headers.
        var second = await Ok(SubscribeAsync(bob, "feed", "bob@localhost"));
        Assert.That(SubId(second), Is.Not.EqualTo(SubId(subscribed)));
        await Ok(PublishAsync(alice, "feed", "i3", "Third"));
        var both = (await bob.DrainAsync()).Single(e => e.Name == "message");
        Assert.That(both.Child("headers", "http://jabber.org/protocol/shim")!.Elements().Select(h => h.Text), Is.EquivalentTo(new[] { SubId(subscribed), SubId(second) }));

        // §6.2.3: which one to end must be said; then each ends.
        Assert.That(Error(await Set(bob, "<unsubscribe node='feed' jid='bob@localhost'/>")), Is.EqualTo("bad-request/subid-required"));
        Assert.That(Error(await Set(bob, "<unsubscribe node='feed' jid='bob@localhost' subid='nope'/>")), Is.EqualTo("not-acceptable/invalid-subid"));
        await Ok(Set(bob, $"<unsubscribe node='feed' jid='bob@localhost' subid='{SubId(second)}'/>"));
        await Ok(Set(bob, "<unsubscribe node='feed' jid='bob@localhost'/>"));
        Assert.That(Error(await Set(bob, "<unsubscribe node='feed' jid='bob@localhost'/>")), Is.EqualTo("unexpected-request/not-subscribed"));
        await Ok(PublishAsync(alice, "feed", "i4", "Fourth"));
        Assert.That(Events(await bob.DrainAsync()), Is.Empty);
    }

    [Test]
    public async Task Subscription_options_and_the_last_item_on_subscription()
    {
        await using var server = await TestServer.StartAsync(null, Users);
        await using var alice = await LoginAsync(server, "alice");
        await using var bob = await LoginAsync(server, "bob");
        await Ok(CreateAsync(alice, "weather"));
        await Ok(PublishAsync(alice, "weather", "w1", "Sunny"));

        // §6.1.7: the last item follows the subscription's result.
        await bob.SendAsync($"<iq type='set' id='sub' to='{Service}'><pubsub xmlns='{PubSub}'><subscribe node='weather' jid='bob@localhost'/></pubsub></iq>");
        var result = await bob.ReadAsync();
        Assert.That((result.Name, result.GetAttribute("id")), Is.EqualTo(("iq", "sub")));
        var last = await bob.ReadUntilAsync(e => e.Name == "message");
        Assert.That(last.ToString(), Does.Contain("Sunny").And.Contain("urn:xmpp:delay"));

        // §6.3: the options form, and deliver=false stopping notifications.
        var options = await Ok(Get(bob, "<options node='weather' jid='bob@localhost'/>"));
        Assert.That(Fields(options.Child("pubsub", PubSub)!.Child("options", PubSub)!.Child("x", "jabber:x:data")!)["pubsub#deliver"], Is.EqualTo(new[] { "true" }));
        var off = Form("submit", SubscriptionOptions.FormType, ("pubsub#deliver", "false"));
        await Ok(Set(bob, $"<options node='weather' jid='bob@localhost'>{off}</options>"));
        Assert.That(Error(await Set(bob, $"<options node='weather' jid='bob@localhost'>{Form("submit", SubscriptionOptions.FormType, ("pubsub#digest", "true"))}</options>")), Is.EqualTo("bad-request/invalid-options"));
        Assert.That(Error(await Get(alice, "<options node='weather' jid='alice@localhost'/>")), Is.EqualTo("unexpected-request/not-subscribed"));
        await Ok(Get(alice, "<options node='weather' jid='bob@localhost'/>")); // owners may read them
        await Ok(PublishAsync(alice, "weather", "w2", "Rain"));
        Assert.That(Events(await bob.DrainAsync()), Is.Empty);

        // Subscribe and configure at once (§6.3.7).
        await using var carol = await LoginAsync(server, "carol");
        var on = Form("submit", SubscriptionOptions.FormType, ("pubsub#deliver", "true"));
        await Ok(Set(carol, $"<subscribe node='weather' jid='carol@localhost'/><options>{on}</options>"));
        await carol.ReadUntilAsync(e => e.Name == "message" && e.ToString().Contains("Rain", StringComparison.Ordinal));
    }

    [Test]
    public async Task The_authorize_model_waits_for_an_owner_to_approve()
    {
        await using var server = await TestServer.StartAsync(null, Users);
        await using var alice = await LoginAsync(server, "alice");
        await using var bob = await LoginAsync(server, "bob");
        await using var carol = await LoginAsync(server, "carol");
        await Ok(CreateAsync(alice, "club", ("pubsub#access_model", "authorize")));
        await Ok(PublishAsync(alice, "club", "c1", "Members only"));

        // §6.1.4: pending; the owner gets the §8.6 form; the subscriber reads nothing meanwhile.
        Assert.That(Subscription(await Ok(SubscribeAsync(bob, "club", "bob@localhost"))), Is.EqualTo("pending"));
        var request = await alice.ReadUntilAsync(e => e.Name == "message" && e.Child("x", "jabber:x:data") is not null);
        var requestFields = Fields(request.Child("x", "jabber:x:data")!);
        Assert.That(requestFields["FORM_TYPE"], Is.EqualTo(new[] { "http://jabber.org/protocol/pubsub#subscribe_authorization" }));
        Assert.That((requestFields["pubsub#node"][0], requestFields["pubsub#subscriber_jid"][0]), Is.EqualTo(("club", "bob@localhost")));
        Assert.That(Error(await SubscribeAsync(bob, "club", "bob@localhost")), Is.EqualTo("not-authorized/pending-subscription"));
        Assert.That(Error(await ItemsAsync(bob, "club")), Is.EqualTo("not-authorized/not-subscribed"));
        var pending = await Ok(Get(alice, "<subscriptions node='club'/>", Owner));
        Assert.That(pending.ToString(), Does.Contain("subscription='pending'"));

        // The owner allows: the subscriber is told, and gets the last item.
        var subId = requestFields["pubsub#subid"][0];
        var answer = Form("submit", "http://jabber.org/protocol/pubsub#subscribe_authorization", ("pubsub#subid", subId), ("pubsub#node", "club"), ("pubsub#subscriber_jid", "bob@localhost"), ("pubsub#allow", "true"));
        await alice.SendAsync($"<message to='{Service}' id='approve'>{answer}</message>");
        var told = await bob.ReadUntilAsync(e => e.Name == "message" && e.Child("event", Event)?.Child("subscription", Event) is not null);
        Assert.That(told.Child("event", Event)!.Child("subscription", Event)!.GetAttribute("subscription"), Is.EqualTo("subscribed"));
        await bob.ReadUntilAsync(e => e.Name == "message" && e.ToString().Contains("Members only", StringComparison.Ordinal));
        Assert.That(ItemIds(await Ok(ItemsAsync(bob, "club"))), Is.EqualTo(new[] { "c1" }));

        // Carol is refused; an approval from someone who is not an owner is an error.
        Assert.That(Subscription(await Ok(SubscribeAsync(carol, "club", "carol@localhost"))), Is.EqualTo("pending"));
        var carolRequest = await alice.ReadUntilAsync(e => e.Name == "message" && e.Child("x", "jabber:x:data") is not null);
        var carolSubId = Fields(carolRequest.Child("x", "jabber:x:data")!)["pubsub#subid"][0];
        var forged = Form("submit", "http://jabber.org/protocol/pubsub#subscribe_authorization", ("pubsub#subid", carolSubId), ("pubsub#node", "club"), ("pubsub#allow", "true"));
        await carol.SendAsync($"<message to='{Service}' id='forged'>{forged}</message>");
        var refusedForgery = await carol.ReadUntilAsync(e => e.Name == "message" && e.GetAttribute("type") == "error");
        Assert.That(refusedForgery.ToString(), Does.Contain("forbidden"));
        var deny = Form("submit", "http://jabber.org/protocol/pubsub#subscribe_authorization", ("pubsub#subid", carolSubId), ("pubsub#node", "club"), ("pubsub#allow", "false"));
        await alice.SendAsync($"<message to='{Service}' id='deny'>{deny}</message>");
        var denied = await carol.ReadUntilAsync(e => e.Name == "message" && e.Child("event", Event)?.Child("subscription", Event) is not null);
        Assert.That(denied.Child("event", Event)!.Child("subscription", Event)!.GetAttribute("subscription"), Is.EqualTo("none"));
        Assert.That(Error(await ItemsAsync(carol, "club")), Is.EqualTo("not-authorized/not-subscribed"));
    }

    [Test]
    public async Task Access_models_and_affiliations_decide_who_reads_and_publishes()
    {
        await using var server = await TestServer.StartAsync(null, Users);
        await using var alice = await LoginAsync(server, "alice");
        await using var bob = await LoginAsync(server, "bob");
        await using var carol = await LoginAsync(server, "carol");
        await ImTests.BefriendAsync(alice, "alice@localhost", bob, "bob@localhost");

        // presence (§6.1.3.2): Bob sees Alice's presence, Carol does not.
        await Ok(CreateAsync(alice, "status", ("pubsub#access_model", "presence")));
        await Ok(SubscribeAsync(bob, "status", "bob@localhost"));
        Assert.That(Error(await SubscribeAsync(carol, "status", "carol@localhost")), Is.EqualTo("not-authorized/presence-subscription-required"));
        Assert.That(Error(await ItemsAsync(carol, "status")), Is.EqualTo("not-authorized/presence-subscription-required"));

        // roster (§6.1.3.3): only contacts in the allowed groups.
        await Ok(alice.IqAsync("<iq type='set' id='g'><query xmlns='jabber:iq:roster'><item jid='carol@localhost'><group>Family</group></item></query></iq>"));
        await Ok(Set(alice, "<create node='family'/>" + $"<configure>{Form("submit", PubSubProtocol.NodeConfigFormType, ("pubsub#access_model", "roster"))}</configure>"));
        await Ok(Set(alice, "<configure node='family'><x xmlns='jabber:x:data' type='submit'><field var='pubsub#roster_groups_allowed'><value>Family</value><value>Friends</value></field></x></configure>", Owner));
        await Ok(SubscribeAsync(carol, "family", "carol@localhost"));
        Assert.That(Error(await SubscribeAsync(bob, "family", "bob@localhost")), Is.EqualTo("not-authorized/not-in-roster-group"));

        // whitelist (§6.1.3.4): members only, until the owner adds one (§8.9).
        await Ok(CreateAsync(alice, "secret", ("pubsub#access_model", "whitelist")));
        Assert.That(Error(await SubscribeAsync(carol, "secret", "carol@localhost")), Is.EqualTo("not-allowed/closed-node"));
        await Ok(Set(alice, "<affiliations node='secret'><affiliation jid='carol@localhost' affiliation='member'/></affiliations>", Owner));
        var notice = await carol.ReadUntilAsync(e => e.Name == "message" && e.Child("pubsub", PubSub) is not null);
        Assert.That(notice.ToString(), Does.Contain("affiliation='member'"));
        await Ok(SubscribeAsync(carol, "secret", "carol@localhost"));
        Assert.That((await Ok(Get(carol, "<affiliations/>"))).ToString(), Does.Contain("node='secret'"));

        // outcast (§6.1.3.8): blocked, and its subscription goes.
        await Ok(Set(alice, "<affiliations node='secret'><affiliation jid='carol@localhost' affiliation='outcast'/></affiliations>", Owner));
        Assert.That(Error(await SubscribeAsync(carol, "secret", "carol@localhost")), Is.EqualTo("forbidden"));
        Assert.That((await Ok(Get(alice, "<subscriptions node='secret'/>", Owner))).ToString(), Does.Not.Contain("carol@localhost"));

        // Publish models (§7.1.3.1): publishers by default; a publisher may; publish-only may publish but not read; open lets anyone.
        await Ok(CreateAsync(alice, "board"));
        Assert.That(Error(await PublishAsync(bob, "board", "b1", "Hi")), Is.EqualTo("forbidden"));
        await Ok(Set(alice, "<affiliations node='board'><affiliation jid='bob@localhost' affiliation='publisher'/><affiliation jid='carol@localhost' affiliation='publish-only'/></affiliations>", Owner));
        await Ok(PublishAsync(bob, "board", "b1", "Hi"));
        await Ok(PublishAsync(carol, "board", "c1", "Hello"));
        Assert.That(Error(await ItemsAsync(carol, "board")), Is.EqualTo("forbidden"));
        Assert.That(Error(await Set(carol, "<retract node='board'><item id='b1'/></retract>")), Is.EqualTo("forbidden"), "publish-only: own items only");
        await Ok(Set(carol, "<retract node='board'><item id='c1'/></retract>"));
        var list = await Ok(Get(alice, "<affiliations node='board'/>", Owner));
        Assert.That(list.ToString(), Does.Contain("affiliation='publish-only'").And.Contain("affiliation='publisher'").And.Contain("affiliation='owner'"));
        Assert.That(Error(await Get(bob, "<affiliations node='board'/>", Owner)), Is.EqualTo("forbidden"));
        Assert.That(Error(await Set(alice, "<affiliations node='board'><affiliation jid='alice@localhost' affiliation='none'/></affiliations>", Owner)), Is.EqualTo("not-acceptable"));

        await Ok(Set(alice, $"<configure node='status'>{Config(("pubsub#publish_model", "subscribers"))}</configure>", Owner));
        await Ok(PublishAsync(bob, "status", "s1", "Bob was here"));
        Assert.That(Error(await PublishAsync(carol, "status", "s2", "Carol too")), Is.EqualTo("forbidden"));
        await Ok(Set(alice, $"<configure node='status'>{Config(("pubsub#publish_model", "open"), ("pubsub#access_model", "open"))}</configure>", Owner));
        await Ok(PublishAsync(carol, "status", "s2", "Carol too"));

        // §8.8: the owner ends a subscription; the subscriber hears of it.
        await bob.DrainAsync();
        await Ok(Set(alice, "<subscriptions node='status'><subscription jid='bob@localhost' subscription='none'/></subscriptions>", Owner));
        var ended = Events(await bob.DrainAsync()).Single(e => e.Name == "subscription");
        Assert.That(ended.GetAttribute("subscription"), Is.EqualTo("none"));
    }

    [Test]
    public async Task Requests_that_break_the_rules_get_the_errors_the_xep_names()
    {
        await using var server = await TestServer.StartAsync(o => o with { Modules = new Dictionary<string, IReadOnlyDictionary<string, string>>(ServerOptions.DefaultModules) { ["pubsub"] = new Dictionary<string, string> { ["create"] = "admins", ["max-items"] = "50" } }, Admins = [Xmpp.Core.Addressing.Jid.Parse("alice@localhost")] }, Users);
        await using var alice = await LoginAsync(server, "alice");
        await using var bob = await LoginAsync(server, "bob");

        Assert.That(Error(await CreateAsync(bob, "mine")), Is.EqualTo("forbidden"), "create=admins");
        Assert.That(Error(await PublishAsync(bob, "mine", "1", "x")), Is.EqualTo("item-not-found"), "no auto-create for who may not create");
        Assert.That(Error(await CreateAsync(alice, "big", ("pubsub#max_items", "51"))), Is.EqualTo("not-acceptable"));

        // §7.1.3.6 by the kind of node.
        await Ok(CreateAsync(alice, "pings", ("pubsub#persist_items", "false"), ("pubsub#deliver_payloads", "false")));
        await Ok(SubscribeAsync(bob, "pings", "bob@localhost"));
        Assert.That(Error(await PublishAsync(alice, "pings", "1", "x")), Is.EqualTo("bad-request/item-forbidden"));
        await Ok(Set(alice, "<publish node='pings'/>"));
        var ping = Events(await bob.DrainAsync()).Single().Child("item", Event)!;
        Assert.That((ping.GetAttribute("id"), ping.FirstElement()), Is.Not.EqualTo((null as string, (Element?)null)));
        Assert.That(Error(await ItemsAsync(bob, "pings")), Is.EqualTo("feature-not-implemented/unsupported"));
        await Ok(CreateAsync(alice, "posts"));
        Assert.That(Error(await Set(alice, "<publish node='posts'/>")), Is.EqualTo("bad-request/item-required"));
        Assert.That(Error(await Set(alice, "<publish node='posts'><item id='e'/></publish>")), Is.EqualTo("bad-request/payload-required"));
        Assert.That(Error(await Set(alice, $"<publish node='posts'><item>{Entry("a")}{Entry("b")}</item></publish>")), Is.EqualTo("bad-request/invalid-payload"));

        // Subscriptions (§6.1.3, §6.2.3) and nodes that do not exist.
        Assert.That(Error(await SubscribeAsync(bob, "posts", "carol@localhost")), Is.EqualTo("bad-request/invalid-jid"));
        Assert.That(Error(await SubscribeAsync(bob, "nowhere", "bob@localhost")), Is.EqualTo("item-not-found"));
        Assert.That(Error(await Set(bob, "<unsubscribe node='nowhere' jid='bob@localhost'/>")), Is.EqualTo("item-not-found"));
        await Ok(SubscribeAsync(bob, "posts", "bob@localhost"));
        await using var carol = await LoginAsync(server, "carol");
        Assert.That(Error(await Set(carol, "<unsubscribe node='posts' jid='bob@localhost'/>")), Is.EqualTo("forbidden"));
        Assert.That(Error(await ItemsAsync(bob, "nowhere")), Is.EqualTo("item-not-found"));
        Assert.That(Error(await Set(alice, "<delete node='nowhere'/>", Owner)), Is.EqualTo("item-not-found"));
        Assert.That(Error(await Set(bob, "<delete node='posts'/>", Owner)), Is.EqualTo("forbidden"));
        Assert.That(Error(await Set(bob, "<purge node='posts'/>", Owner)), Is.EqualTo("forbidden"));
        Assert.That(Error(await Set(alice, "<retract node='posts'/>")), Is.EqualTo("bad-request/item-required"));
        Assert.That(Error(await Get(alice, "<items/>")), Is.EqualTo("bad-request/nodeid-required"));
        Assert.That(Error(await Set(alice, "<frobnicate node='posts'/>")), Is.EqualTo("feature-not-implemented/unsupported"));
        Assert.That(Error(await bob.IqAsync($"<iq type='get' id='v' to='{Service}'><query xmlns='jabber:iq:version'/></iq>")), Is.EqualTo("service-unavailable"));
        Assert.That(Error(await bob.IqAsync($"<iq type='get' id='n' to='node@{Service}'><ping xmlns='urn:xmpp:ping'/></iq>")), Is.EqualTo("service-unavailable"));
    }

    [Test]
    public async Task Deleting_nodes_notifies_with_a_redirect_and_collections_pass_items_up()
    {
        await using var server = await TestServer.StartAsync(null, Users);
        await using var alice = await LoginAsync(server, "alice");
        await using var bob = await LoginAsync(server, "bob");

        // XEP-0248: a collection with a leaf in it; the root lists the collection, the collection its leaf.
        var defaults = await Ok(alice.IqAsync($"<iq type='get' id='dc' to='{Service}'><pubsub xmlns='{Owner}'><default>{Form("submit", PubSubProtocol.NodeConfigFormType, ("pubsub#node_type", "collection"))}</default></pubsub></iq>"));
        Assert.That(defaults.ToString(), Does.Contain("collection"));
        await Ok(CreateAsync(alice, "sports", ("pubsub#node_type", "collection")));
        await Ok(CreateAsync(alice, "football", ("pubsub#collection", "sports")));
        Assert.That(Error(await CreateAsync(bob, "hijack", ("pubsub#collection", "sports"))), Is.EqualTo("forbidden"), "only the collection's owners add to it");
        Assert.That(Error(await CreateAsync(alice, "in-a-leaf", ("pubsub#collection", "football"))), Is.EqualTo("not-acceptable"));
        var root = (await Ok(Disco(bob, "items"))).FirstElement()!.Elements().Select(e => e.GetAttribute("node")).ToList();
        Assert.That(root, Does.Contain("sports").And.Not.Contain("football"));
        var children = (await Ok(Disco(bob, "items", "sports"))).FirstElement()!.Elements().Select(e => e.GetAttribute("node")).ToList();
        Assert.That(children, Is.EqualTo(new[] { "football" }));
        var collectionInfo = (await Ok(Disco(bob, "info", "sports"))).FirstElement()!;
        Assert.That(collectionInfo.Elements().Any(e => e.Name == "identity" && e.GetAttribute("type") == "collection"));
        Assert.That(Error(await PublishAsync(alice, "sports", "x", "x")), Is.EqualTo("feature-not-implemented/unsupported"));

        // A subscriber of the collection hears of its leaves' items.
        await Ok(SubscribeAsync(bob, "sports", "bob@localhost"));
        await Ok(PublishAsync(alice, "football", "goal", "Goal!"));
        var passedUp = Events(await bob.DrainAsync()).Single();
        Assert.That((passedUp.Name, passedUp.GetAttribute("node")), Is.EqualTo(("items", "football")));

        // §8.4: deleting the leaf tells its subscribers where to go; deleting the collection moves its children to the root.
        await Ok(SubscribeAsync(bob, "football", "bob@localhost"));
        await bob.DrainAsync();
        await Ok(Set(alice, $"<delete node='football'><redirect uri='xmpp:{Service}?;node=soccer'/></delete>", Owner));
        var deleted = Events(await bob.DrainAsync()).Single();
        Assert.That((deleted.Name, deleted.Child("redirect", Event)?.GetAttribute("uri")), Is.EqualTo(("delete", $"xmpp:{Service}?;node=soccer")));
        Assert.That(Error(await ItemsAsync(bob, "football")), Is.EqualTo("item-not-found"));
        await Ok(CreateAsync(alice, "tennis", ("pubsub#collection", "sports")));
        await Ok(Set(alice, "<delete node='sports'/>", Owner));
        Assert.That(Events(await bob.DrainAsync()).Single().Name, Is.EqualTo("delete"));
        Assert.That((await Ok(Disco(bob, "items"))).ToString(), Does.Contain("node='tennis'"));
        Assert.That(Fields((await Ok(Get(alice, "<configure node='tennis'/>", Owner))).Child("pubsub", Owner)!.Child("configure", Owner)!.Child("x", "jabber:x:data")!)["pubsub#collection"], Is.Empty);
    }

    [Test]
    public async Task A_reload_keeps_the_nodes_and_their_subscribers()
    {
        await using var server = await TestServer.StartAsync(null, Users);
        await using var alice = await LoginAsync(server, "alice");
        await using var bob = await LoginAsync(server, "bob");
        await Ok(CreateAsync(alice, "status"));
        await Ok(SubscribeAsync(bob, "status", "bob@localhost"));

        var reloaded = await server.Server.ReloadAsync(server.Server.Options, CancellationToken.None);
        Assert.That(reloaded.Applied, Is.True);
        await Ok(PublishAsync(alice, "status", "s1", "After the reload"));
        Assert.That(Events(await bob.DrainAsync()).Single().Child("item", Event)!.GetAttribute("id"), Is.EqualTo("s1"));
    }

    [Test]
    public async Task Nodes_affiliations_subscriptions_and_items_survive_a_restart()
    {
        var dataDir = Path.Combine(Path.GetTempPath(), "xmpp-pubsub-" + Guid.NewGuid().ToString("N"));
        ServerOptions Options(ServerOptions o) => o with { DataDirectory = dataDir, Storage = new StorageOptions { File = Path.Combine(dataDir, "xmpp.db") } };
        string subId;
        try
        {
            await using (var server = await TestServer.StartAsync(Options, Users))
            {
                await using var alice = await LoginAsync(server, "alice");
                await using var bob = await LoginAsync(server, "bob");
                await Ok(CreateAsync(alice, "journal", ("pubsub#title", "Journal"), ("pubsub#access_model", "whitelist"), ("pubsub#max_items", "3")));
                await Ok(Set(alice, "<affiliations node='journal'><affiliation jid='bob@localhost' affiliation='publisher'/></affiliations>", Owner));
                subId = SubId(await Ok(SubscribeAsync(bob, "journal", "bob@localhost")));
                await Ok(PublishAsync(bob, "journal", "d1", "Day one"));
                await Ok(PublishAsync(alice, "journal", "d2", "Day two"));
            }

            await using (var server = await TestServer.StartAsync(Options))
            {
                await using var alice = await LoginAsync(server, "alice");
                await using var bob = await LoginAsync(server, "bob");
                await using var carol = await LoginAsync(server, "carol");
                var items = await Ok(ItemsAsync(bob, "journal"));
                Assert.That(ItemIds(items), Is.EqualTo(new[] { "d1", "d2" }));
                Assert.That(items.ToString(), Does.Contain("publisher='bob@localhost'"));
                Assert.That(Error(await ItemsAsync(carol, "journal")), Is.EqualTo("not-allowed/closed-node"), "still whitelisted");
                var fields = Fields((await Ok(Get(alice, "<configure node='journal'/>", Owner))).Child("pubsub", Owner)!.Child("configure", Owner)!.Child("x", "jabber:x:data")!);
                Assert.That((fields["pubsub#title"][0], fields["pubsub#max_items"][0]), Is.EqualTo(("Journal", "3")));
                var subscriptions = await Ok(Get(bob, "<subscriptions/>"));
                Assert.That(subscriptions.ToString(), Does.Contain($"subid='{subId}'").And.Contain("subscription='subscribed'"));
                await Ok(PublishAsync(alice, "journal", "d3", "Day three"));
                Assert.That(Events(await bob.DrainAsync()).Single().Child("item", Event)!.GetAttribute("id"), Is.EqualTo("d3"));
            }
        }
        finally
        {
            if (Directory.Exists(dataDir))
            {
                Directory.Delete(dataDir, recursive: true);
            }
        }
    }
}
