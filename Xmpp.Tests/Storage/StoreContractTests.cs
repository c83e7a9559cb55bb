using Xmpp.Core.Sasl;
using Xmpp.Server.Storage;
using Xmpp.Server.Storage.Postgres;
using Xmpp.Server.Storage.Sqlite;

namespace Xmpp.Tests.Storage;

/// <summary>
/// The contract of every store, run against each back end: embedded SQLite always, and a real PostgreSQL
/// server these tests start themselves (see <see cref="PostgresCluster"/>).
/// </summary>
[TestFixture("sqlite")]
[TestFixture("postgresql")]
public sealed class StoreContractTests(string backend)
{
    private const string H = "example.org";
    private static readonly CancellationToken None = CancellationToken.None;
    private IStorage _storage = null!;
    private string? _dir;

    [SetUp]
    public async Task SetUp()
    {
        if (backend == "sqlite")
        {
            _dir = Path.Combine(Path.GetTempPath(), "xmpp-contract-" + Guid.NewGuid().ToString("N"));
            _storage = new SqliteStorage(Path.Combine(_dir, "xmpp.db"));
        }
        else
        {
            _storage = new PostgresStorage(await SharedPostgres.NewDatabaseAsync());
        }

        // Migrations are idempotent: a second run (a restart) changes nothing.
        Assert.That(await _storage.MigrateAsync(None), Is.EqualTo(11));
        Assert.That(await _storage.MigrateAsync(None), Is.EqualTo(11));
        foreach (var u in new[] { "alice", "bob" })
        {
            Assert.That(await _storage.Users.CreateAsync(H, u, Creds("pw-" + u), None), Is.True);
        }
    }

    [TearDown]
    public async Task TearDown()
    {
        await _storage.DisposeAsync();
        if (_dir is not null)
        {
            Directory.Delete(_dir, recursive: true);
        }
    }

    private static ScramCredential[] Creds(string password) =>
        [ScramCredential.Create(ScramHash.Sha1, password, 4096), ScramCredential.Create(ScramHash.Sha256, password, 4096)];

    [Test]
    public async Task A_host_document_added_concurrently_is_the_first_writers_everywhere()
    {
        // Several servers (cluster nodes) sharing one database draw a secret at once: all of them get the one stored.
        var drawn = Enumerable.Range(0, 8).Select(i => $"<s n='{i}'/>").ToArray();
        var got = await Task.WhenAll(drawn.Select(d => _storage.Documents.AddOrGetHostAsync(string.Empty, "test-secret", string.Empty, d, None)));
        Assert.Multiple(async () =>
        {
            Assert.That(got.Distinct().Count(), Is.EqualTo(1), string.Join(", ", got));
            Assert.That(drawn, Does.Contain(got[0]));
            Assert.That(await _storage.Documents.GetHostAsync(string.Empty, "test-secret", string.Empty, None), Is.EqualTo(got[0]));
            Assert.That(await _storage.Documents.AddOrGetHostAsync(string.Empty, "test-secret", string.Empty, "<later/>", None), Is.EqualTo(got[0]), "a later writer gets the stored one");
        });

        // Through the dialback secret itself: two "nodes" issue keys the other verifies.
        var a = await Xmpp.Server.S2s.Dialback.LoadSharedAsync(_storage.Documents, None);
        var b = await Xmpp.Server.S2s.Dialback.LoadSharedAsync(_storage.Documents, None);
        var key = a.Key("remote.example", H, "stream-1");
        Assert.Multiple(() =>
        {
            Assert.That(b.Verify("remote.example", H, "stream-1", key), Is.True);
            Assert.That(b.Verify("remote.example", H, "stream-2", key), Is.False);
        });
    }

    [Test]
    public async Task Users_are_paged_by_prefix_in_order()
    {
        // alice and bob exist; names around the edges of a prefix's range, another host, non-ASCII names.
        foreach (var u in new[] { "al", "alb", "alz", "am", "a-z", "a", "al\u00e9", "al\U0001F600", "alice2", "b" })
        {
            Assert.That(await _storage.Users.CreateAsync(H, u, Creds("x"), None), Is.True, u);
        }

        await _storage.Users.CreateAsync("other.org", "alpha", Creds("x"), None);
        Assert.That(await _storage.Users.CountAsync(null, None), Is.EqualTo(13));
        Assert.That(await _storage.Users.CountAsync(H, None), Is.EqualTo(12));
        Assert.That(await _storage.Users.CountAsync("none.example", None), Is.EqualTo(0));

        var all = (await _storage.Users.ListAsync(H, None)).Select(u => u.Username).ToList();
        var paged = new List<string>();
        string? after = null;
        while (true)
        {
            var page = await _storage.Users.PageAsync(H, string.Empty, after, 5, None);
            paged.AddRange(page);
            if (page.Count < 5)
            {
                break;
            }

            after = page[^1];
        }

        Assert.That(paged, Is.EqualTo(all), "pages of 5 give every account once, in the store's order");
        var expected = all.Where(u => u.StartsWith("al", StringComparison.Ordinal)).ToList();
        Assert.That(expected, Has.Count.EqualTo(7));
        Assert.That(await _storage.Users.PageAsync(H, "al", null, 100, None), Is.EqualTo(expected));
        Assert.That(await _storage.Users.PageAsync(H, "al", null, 3, None), Is.EqualTo(expected.Take(3)));
        Assert.That(await _storage.Users.PageAsync(H, "al", expected[2], 3, None), Is.EqualTo(expected.Skip(3).Take(3)));
        Assert.That(await _storage.Users.PageAsync(H, "al", expected[^1], 3, None), Is.Empty);
        Assert.That(await _storage.Users.PageAsync(H, "al\u00e9", null, 10, None), Is.EqualTo(new[] { "al\u00e9" }));
        Assert.That(await _storage.Users.PageAsync(H, "a-", null, 10, None), Is.EqualTo(new[] { "a-z" }));
        Assert.That(await _storage.Users.PageAsync(H, "alpha", null, 10, None), Is.Empty, "other hosts' accounts are not listed");
        Assert.That(await _storage.Users.PageAsync(H, "zz", null, 10, None), Is.Empty);
    }

    [Test]
    public async Task Users_and_credentials()
    {
        Assert.That(await _storage.Users.CreateAsync(H, "alice", Creds("other"), None), Is.False, "an existing account is not replaced");
        Assert.That(await _storage.Users.ExistsAsync(H, "alice", None), Is.True);
        Assert.That(await _storage.Users.ExistsAsync("other.org", "alice", None), Is.False);

        var stored = await _storage.Users.GetCredentialAsync(H, "alice", ScramHash.Sha256, None);
        var expected = Creds("pw-alice")[1];
        Assert.That(stored!.Salt, Has.Length.EqualTo(expected.Salt.Length));
        Assert.That(stored.Iterations, Is.EqualTo(4096));
        Assert.That(await _storage.Users.GetCredentialAsync(H, "carol", ScramHash.Sha256, None), Is.Null);

        var replacement = Creds("new");
        Assert.That(await _storage.Users.SetCredentialsAsync(H, "alice", replacement, None), Is.True);
        Assert.That((await _storage.Users.GetCredentialAsync(H, "alice", ScramHash.Sha1, None))!.StoredKey, Is.EqualTo(replacement[0].StoredKey));
        Assert.That(await _storage.Users.SetCredentialsAsync(H, "carol", replacement, None), Is.False);

        await _storage.Users.CreateAsync("a.example", "zed", Creds("z"), None);
        Assert.That(await _storage.Users.ListAsync(null, None), Is.EqualTo(new[] { ("a.example", "zed"), (H, "alice"), (H, "bob") }));
        Assert.That(await _storage.Users.ListAsync(H, None), Is.EqualTo(new[] { (H, "alice"), (H, "bob") }));
        Assert.That(await _storage.Users.AnyAsync(None), Is.True);
        foreach (var (host, user) in await _storage.Users.ListAsync(null, None))
        {
            await _storage.Users.DeleteAsync(host, user, None);
        }

        Assert.That(await _storage.Users.AnyAsync(None), Is.False, "no account left");
    }

    [Test]
    public async Task Deleting_an_account_deletes_all_its_data()
    {
        await _storage.Roster.SaveAsync(H, "alice", new RosterItem("bob@" + H, "Bob", Subscription.Both, false, false, false, ["Friends"]), 1, None);
        await _storage.Offline.StoreAsync(H, "alice", "<message/>", 10, None);
        await _storage.LastActivity.SetAsync(H, "alice", new LastActivity(DateTimeOffset.UtcNow, "gone"), None);
        await _storage.Documents.SetAsync(H, "alice", "vcard", string.Empty, "<vCard xmlns='vcard-temp'/>", None);
        await _storage.PubSub.CreateNodeAsync(H, "alice", "urn:xmpp:avatar:data", "<c/>", None);
        await _storage.PubSub.PublishAsync(H, "alice", "urn:xmpp:avatar:data", new PubSubItem("1", "<item/>", "alice@" + H, DateTimeOffset.UtcNow), 10, None);
        await _storage.Archive.AppendAsync(H, "alice", Message("m1", "bob@" + H, true, DateTimeOffset.UtcNow), None);

        Assert.That(await _storage.Users.DeleteAsync(H, "alice", None), Is.True);
        Assert.That(await _storage.Users.DeleteAsync(H, "alice", None), Is.False);
        Assert.That(await _storage.Users.GetCredentialAsync(H, "alice", ScramHash.Sha1, None), Is.Null);
        Assert.That((await _storage.Roster.LoadAsync(H, "alice", None)).Items, Is.Empty);
        Assert.That(await _storage.Offline.LoadAsync(H, "alice", None), Is.Empty);
        Assert.That(await _storage.LastActivity.GetAsync(H, "alice", None), Is.Null);
        Assert.That(await _storage.Documents.GetAsync(H, "alice", "vcard", string.Empty, None), Is.Null);
        Assert.That(await _storage.PubSub.ListNodesAsync(H, "alice", None), Is.Empty);
        Assert.That(await _storage.Archive.BoundsAsync(H, "alice", None), Is.Null);

        // Writes for an account that does not exist are no-ops, not errors.
        await _storage.LastActivity.SetAsync(H, "alice", new LastActivity(DateTimeOffset.UtcNow, null), None);
        Assert.That(await _storage.Documents.SetAsync(H, "alice", "vcard", string.Empty, "<v/>", None), Is.False);
        Assert.That(await _storage.PubSub.CreateNodeAsync(H, "alice", "n", "<c/>", None), Is.False);
        await _storage.Archive.AppendAsync(H, "alice", Message("m2", "bob@" + H, true, DateTimeOffset.UtcNow), None);
        Assert.That(await _storage.Archive.BoundsAsync(H, "alice", None), Is.Null);
    }

    [Test]
    public async Task Rosters_keep_items_and_versions()
    {
        var empty = await _storage.Roster.LoadAsync(H, "alice", None);
        Assert.That(empty.Items, Is.Empty);
        Assert.That(empty.Version, Is.Zero);

        var bob = new RosterItem("bob@" + H, "Bob", Subscription.To, PendingOut: false, PendingIn: true, Approved: false, ["Friends", "Work"], PendingInRequest: "<presence type='subscribe'/>");
        var carol = new RosterItem("carol@" + H, null, Subscription.None, PendingOut: true, PendingIn: false, Approved: true, []);
        await _storage.Roster.SaveAsync(H, "alice", bob, 1, None);
        await _storage.Roster.SaveAsync(H, "alice", carol, 2, None);
        var roster = await _storage.Roster.LoadAsync(H, "alice", None);
        Assert.That(roster.Version, Is.EqualTo(2));
        Assert.That(roster.Items.Select(i => i.Jid), Is.EqualTo(new[] { "bob@" + H, "carol@" + H }));
        var got = roster.Items[0];
        Assert.That((got.Name, got.Subscription, got.PendingOut, got.PendingIn, got.Approved, got.InRoster, got.PendingInRequest), Is.EqualTo(("Bob", Subscription.To, false, true, false, true, "<presence type='subscribe'/>")));
        Assert.That(got.Groups, Is.EqualTo(new[] { "Friends", "Work" }));
        var c = roster.Items[1];
        Assert.That((c.Name, c.PendingOut, c.Approved, c.Groups.Count), Is.EqualTo(((string?)null, true, true, 0)));

        await _storage.Roster.SaveAsync(H, "alice", bob with { Subscription = Subscription.Both, PendingIn = false, Name = null }, 3, None);
        var updated = await _storage.Roster.GetItemAsync(H, "alice", "bob@" + H, None);
        Assert.That((updated!.Subscription, updated.PendingIn, updated.Name), Is.EqualTo((Subscription.Both, false, (string?)null)));
        await _storage.Roster.RemoveAsync(H, "alice", "carol@" + H, 4, None);
        roster = await _storage.Roster.LoadAsync(H, "alice", None);
        Assert.That(roster.Items.Select(i => i.Jid), Is.EqualTo(new[] { "bob@" + H }));
        Assert.That(roster.Version, Is.EqualTo(4));
        Assert.That(await _storage.Roster.GetItemAsync(H, "alice", "carol@" + H, None), Is.Null);
        Assert.That((await _storage.Roster.LoadAsync(H, "bob", None)).Items, Is.Empty, "rosters are per account");
    }

    [Test]
    public async Task Offline_messages_are_kept_in_order_up_to_the_limit()
    {
        for (var i = 0; i < 5; i++)
        {
            Assert.That(await _storage.Offline.StoreAsync(H, "bob", $"<message id='{i}'/>", 3, None), Is.EqualTo(i < 3));
        }

        var stored = await _storage.Offline.LoadAsync(H, "bob", None);
        Assert.That(stored.Select(m => m.Xml), Is.EqualTo(new[] { "<message id='0'/>", "<message id='1'/>", "<message id='2'/>" }));
        await _storage.Offline.DeleteAsync(H, "bob", [stored[0].Id, stored[2].Id], None);
        Assert.That((await _storage.Offline.LoadAsync(H, "bob", None)).Select(m => m.Xml), Is.EqualTo(new[] { "<message id='1'/>" }));
        await _storage.Offline.DeleteAsync(H, "bob", [], None);
    }

    [Test]
    public async Task Last_activity_is_replaced()
    {
        var first = new DateTimeOffset(2026, 1, 2, 3, 4, 5, TimeSpan.Zero);
        await _storage.LastActivity.SetAsync(H, "alice", new LastActivity(first, "lunch"), None);
        await _storage.LastActivity.SetAsync(H, "alice", new LastActivity(first.AddHours(1), null), None);
        var got = await _storage.LastActivity.GetAsync(H, "alice", None);
        Assert.That(got!.When, Is.EqualTo(first.AddHours(1)));
        Assert.That(got.Status, Is.Null);
        Assert.That(await _storage.LastActivity.GetAsync(H, "bob", None), Is.Null);
    }

    [Test]
    public async Task Documents_of_accounts_and_hosts()
    {
        Assert.That(await _storage.Documents.SetAsync(H, "alice", "private", "storage:bookmarks", "<storage xmlns='storage:bookmarks'/>", None), Is.True);
        Assert.That(await _storage.Documents.SetAsync(H, "alice", "private", "a:b", "<x xmlns='a:b'/>", None), Is.True);
        Assert.That(await _storage.Documents.SetAsync(H, "alice", "private", "a:b", "<x xmlns='a:b'>2</x>", None), Is.True);
        Assert.That(await _storage.Documents.GetAsync(H, "alice", "private", "a:b", None), Is.EqualTo("<x xmlns='a:b'>2</x>"));
        Assert.That(await _storage.Documents.GetAsync(H, "bob", "private", "a:b", None), Is.Null);
        var all = await _storage.Documents.ListAsync(H, "alice", "private", None);
        Assert.That(all.Keys, Is.EqualTo(new[] { "a:b", "storage:bookmarks" }));
        Assert.That(await _storage.Documents.SetAsync(H, "alice", "private", "a:b", null, None), Is.True);
        Assert.That(await _storage.Documents.SetAsync(H, "nobody", "private", "a:b", null, None), Is.False);
        Assert.That(await _storage.Documents.GetAsync(H, "alice", "private", "a:b", None), Is.Null);

        Assert.That(await _storage.Documents.GetHostAsync(H, "motd", string.Empty, None), Is.Null);
        await _storage.Documents.SetHostAsync(H, "motd", string.Empty, "<motd>hi</motd>", None);
        await _storage.Documents.SetHostAsync(H, "motd", string.Empty, "<motd>hello</motd>", None);
        Assert.That(await _storage.Documents.GetHostAsync(H, "motd", string.Empty, None), Is.EqualTo("<motd>hello</motd>"));
        Assert.That(await _storage.Documents.GetHostAsync("other.org", "motd", string.Empty, None), Is.Null);
        await _storage.Documents.SetHostAsync(H, "motd", string.Empty, null, None);
        Assert.That(await _storage.Documents.GetHostAsync(H, "motd", string.Empty, None), Is.Null);
    }

    [Test]
    public async Task PubSub_nodes_and_items()
    {
        const string Node = "urn:xmpp:microblog:0";
        Assert.That(await _storage.PubSub.CreateNodeAsync(H, "alice", Node, "<config a='1'/>", None), Is.True);
        Assert.That(await _storage.PubSub.CreateNodeAsync(H, "alice", Node, "<config a='2'/>", None), Is.False);
        await _storage.PubSub.SetConfigAsync(H, "alice", Node, "<config a='3'/>", None);
        Assert.That((await _storage.PubSub.GetNodeAsync(H, "alice", Node, None))!.Config, Is.EqualTo("<config a='3'/>"));
        Assert.That(await _storage.PubSub.GetNodeAsync(H, "bob", Node, None), Is.Null);

        var t = new DateTimeOffset(2026, 5, 6, 7, 8, 9, TimeSpan.Zero);
        for (var i = 1; i <= 4; i++)
        {
            await _storage.PubSub.PublishAsync(H, "alice", Node, new PubSubItem("i" + i, $"<entry n='{i}'/>", "alice@" + H, t.AddMinutes(i)), 3, None);
        }

        // At most 3 kept, oldest first; publishing an existing id replaces it and makes it the newest.
        Assert.That((await _storage.PubSub.GetItemsAsync(H, "alice", Node, null, null, None)).Select(i => i.Id), Is.EqualTo(new[] { "i2", "i3", "i4" }));
        await _storage.PubSub.PublishAsync(H, "alice", Node, new PubSubItem("i2", "<entry n='2b'/>", "alice@" + H, t.AddMinutes(9)), 3, None);
        var items = await _storage.PubSub.GetItemsAsync(H, "alice", Node, null, null, None);
        Assert.That(items.Select(i => i.Id), Is.EqualTo(new[] { "i3", "i4", "i2" }));
        Assert.That(items[2].Xml, Is.EqualTo("<entry n='2b'/>"));
        Assert.That(items[2].Published, Is.EqualTo(t.AddMinutes(9)));
        Assert.That((await _storage.PubSub.GetItemsAsync(H, "alice", Node, 1, null, None)).Single().Id, Is.EqualTo("i2"));
        Assert.That((await _storage.PubSub.GetItemsAsync(H, "alice", Node, null, ["i4", "nope"], None)).Single().Id, Is.EqualTo("i4"));
        Assert.That(await _storage.PubSub.GetItemsAsync(H, "alice", Node, null, [], None), Is.Empty);

        Assert.That(await _storage.PubSub.RetractAsync(H, "alice", Node, "i3", None), Is.True);
        Assert.That(await _storage.PubSub.RetractAsync(H, "alice", Node, "i3", None), Is.False);
        await _storage.PubSub.PurgeAsync(H, "alice", Node, None);
        Assert.That(await _storage.PubSub.GetItemsAsync(H, "alice", Node, null, null, None), Is.Empty);

        await _storage.PubSub.CreateNodeAsync(H, "alice", "a-node", "<c/>", None);
        Assert.That((await _storage.PubSub.ListNodesAsync(H, "alice", None)).Select(n => n.Node), Is.EqualTo(new[] { "a-node", Node }));
        await _storage.PubSub.PublishAsync(H, "alice", Node, new PubSubItem("x", "<x/>", "alice@" + H, t), 3, None);
        Assert.That(await _storage.PubSub.DeleteNodeAsync(H, "alice", Node, None), Is.True);
        Assert.That(await _storage.PubSub.DeleteNodeAsync(H, "alice", Node, None), Is.False);
        await _storage.PubSub.CreateNodeAsync(H, "alice", Node, "<c/>", None);
        Assert.That(await _storage.PubSub.GetItemsAsync(H, "alice", Node, null, null, None), Is.Empty, "a deleted node's items went with it");
    }

    [Test]
    public async Task PubSub_services_keep_nodes_affiliations_subscriptions_and_items()
    {
        const string S = "pubsub." + H;
        var store = _storage.PubSubServices;
        Assert.That(await store.CreateNodeAsync(S, "news", "<x a='1'/>", "alice@" + H, None), Is.True);
        Assert.That(await store.CreateNodeAsync(S, "news", "<x a='2'/>", "bob@" + H, None), Is.False, "an existing node is not replaced");
        Assert.That(await store.CreateNodeAsync("pubsub.other.org", "news", "<x/>", "carol@other.org", None), Is.True, "services are apart");
        await store.CreateNodeAsync(S, "blog", "<x/>", "bob@" + H, None);
        await store.SetConfigAsync(S, "news", "<x a='3'/>", None);

        await store.SetAffiliationAsync(S, "news", "bob@" + H, "publisher", None);
        await store.SetAffiliationAsync(S, "news", "bob@" + H, "member", None);
        await store.SetAffiliationAsync(S, "news", "mallory@evil.example", "outcast", None);
        await store.SetAffiliationAsync(S, "news", "mallory@evil.example", "none", None);
        await store.SetAffiliationAsync(S, "gone", "bob@" + H, "member", None);

        await store.SetSubscriptionAsync(S, new ServiceSubscriptionRecord("news", "s1", "bob@" + H, "pending", string.Empty), None);
        await store.SetSubscriptionAsync(S, new ServiceSubscriptionRecord("news", "s1", "bob@" + H, "subscribed", "<x o='1'/>"), None);
        await store.SetSubscriptionAsync(S, new ServiceSubscriptionRecord("news", "s2", "bob@" + H + "/phone", "subscribed", string.Empty), None);
        await store.SetSubscriptionAsync(S, new ServiceSubscriptionRecord("gone", "s3", "bob@" + H, "subscribed", string.Empty), None);
        Assert.That(await store.RemoveSubscriptionAsync(S, "news", "s2", None), Is.True);
        Assert.That(await store.RemoveSubscriptionAsync(S, "news", "s2", None), Is.False);

        var state = await store.LoadAsync(S, None);
        Assert.That(state.Nodes, Is.EqualTo(new[] { new ServiceNodeRecord("blog", "<x/>"), new ServiceNodeRecord("news", "<x a='3'/>") }));
        Assert.That(state.Affiliations, Is.EqualTo(new[]
        {
            new ServiceAffiliationRecord("blog", "bob@" + H, "owner"),
            new ServiceAffiliationRecord("news", "alice@" + H, "owner"),
            new ServiceAffiliationRecord("news", "bob@" + H, "member"),
        }));
        Assert.That(state.Subscriptions, Is.EqualTo(new[] { new ServiceSubscriptionRecord("news", "s1", "bob@" + H, "subscribed", "<x o='1'/>") }), "none for a node that does not exist");

        var t = new DateTimeOffset(2026, 5, 6, 7, 8, 9, TimeSpan.Zero);
        for (var i = 1; i <= 4; i++)
        {
            await store.PublishAsync(S, "news", new PubSubItem("i" + i, $"<entry n='{i}'/>", "alice@" + H, t.AddMinutes(i)), 3, None);
        }

        await store.PublishAsync(S, "blog", new PubSubItem("i1", "<post/>", "bob@" + H, t), 3, None);
        Assert.That((await store.GetItemsAsync(S, "news", null, null, None)).Select(i => i.Id), Is.EqualTo(new[] { "i2", "i3", "i4" }));
        await store.PublishAsync(S, "news", new PubSubItem("i2", "<entry n='2b'/>", "bob@" + H, t.AddMinutes(9)), 3, None);
        var items = await store.GetItemsAsync(S, "news", null, null, None);
        Assert.That(items.Select(i => i.Id), Is.EqualTo(new[] { "i3", "i4", "i2" }));
        Assert.That((items[2].Xml, items[2].Publisher, items[2].Published), Is.EqualTo(("<entry n='2b'/>", "bob@" + H, t.AddMinutes(9))));
        Assert.That((await store.GetItemsAsync(S, "news", 1, null, None)).Single().Id, Is.EqualTo("i2"));
        Assert.That((await store.GetItemsAsync(S, "news", null, ["i4", "nope"], None)).Single().Id, Is.EqualTo("i4"));
        Assert.That(await store.RetractAsync(S, "news", "i3", None), Is.True);
        Assert.That(await store.RetractAsync(S, "news", "i3", None), Is.False);
        await store.PurgeAsync(S, "news", None);
        Assert.That(await store.GetItemsAsync(S, "news", null, null, None), Is.Empty);
        Assert.That((await store.GetItemsAsync(S, "blog", null, null, None)).Single().Xml, Is.EqualTo("<post/>"), "a purge touches one node");

        // Deleting a node takes its items, affiliations and subscriptions with it.
        Assert.That(await store.DeleteNodeAsync(S, "blog", None), Is.True);
        Assert.That(await store.DeleteNodeAsync(S, "blog", None), Is.False);
        Assert.That(await store.DeleteNodeAsync(S, "news", None), Is.True);
        Assert.That(await store.CreateNodeAsync(S, "blog", "<x/>", "carol@" + H, None), Is.True);
        Assert.That(await store.GetItemsAsync(S, "blog", null, null, None), Is.Empty);
        state = await store.LoadAsync(S, None);
        Assert.That(state.Affiliations, Is.EqualTo(new[] { new ServiceAffiliationRecord("blog", "carol@" + H, "owner") }));
        Assert.That(state.Subscriptions, Is.Empty);
        Assert.That((await store.LoadAsync("pubsub.other.org", None)).Nodes.Single().Node, Is.EqualTo("news"));
    }

    [Test]
    public async Task The_archive_pages_filters_and_expires()
    {
        var t0 = new DateTimeOffset(2026, 3, 1, 12, 0, 0, TimeSpan.Zero);
        for (var i = 0; i < 10; i++)
        {
            var with = i % 2 == 0 ? "bob@" + H + "/phone" : "carol@" + H;
            await _storage.Archive.AppendAsync(H, "alice", Message("id" + i, with, i % 3 == 0, t0.AddMinutes(i)), None);
        }

        await _storage.Archive.AppendAsync(H, "bob", Message("other", "alice@" + H, false, t0), None);
        var page = await _storage.Archive.QueryAsync(H, "alice", new ArchiveQuery { Max = 4 }, None);
        Assert.That(page!.Messages.Select(m => m.Id), Is.EqualTo(new[] { "id0", "id1", "id2", "id3" }));
        Assert.That(page.Complete, Is.False);
        Assert.That((page.Messages[0].Outgoing, page.Messages[1].Outgoing, page.Messages[0].At, page.Messages[0].With), Is.EqualTo((true, false, t0, "bob@" + H + "/phone")));

        var next = await _storage.Archive.QueryAsync(H, "alice", new ArchiveQuery { Max = 4, AfterId = "id7" }, None);
        Assert.That(next!.Messages.Select(m => m.Id), Is.EqualTo(new[] { "id8", "id9" }));
        Assert.That(next.Complete, Is.True);
        var last = await _storage.Archive.QueryAsync(H, "alice", new ArchiveQuery { Max = 3, Last = true }, None);
        Assert.That(last!.Messages.Select(m => m.Id), Is.EqualTo(new[] { "id7", "id8", "id9" }));
        var before = await _storage.Archive.QueryAsync(H, "alice", new ArchiveQuery { Max = 2, BeforeId = "id5" }, None);
        Assert.That(before!.Messages.Select(m => m.Id), Is.EqualTo(new[] { "id3", "id4" }));
        Assert.That(await _storage.Archive.QueryAsync(H, "alice", new ArchiveQuery { AfterId = "unknown" }, None), Is.Null);

        var withBob = await _storage.Archive.QueryAsync(H, "alice", new ArchiveQuery { With = "bob@" + H }, None);
        Assert.That(withBob!.Messages.Select(m => m.Id), Is.EqualTo(new[] { "id0", "id2", "id4", "id6", "id8" }));
        var withFull = await _storage.Archive.QueryAsync(H, "alice", new ArchiveQuery { With = "bob@" + H + "/laptop", WithIsFull = true }, None);
        Assert.That(withFull!.Messages, Is.Empty);
        var window = await _storage.Archive.QueryAsync(H, "alice", new ArchiveQuery { Start = t0.AddMinutes(3), End = t0.AddMinutes(5) }, None);
        Assert.That(window!.Messages.Select(m => m.Id), Is.EqualTo(new[] { "id3", "id4", "id5" }));
        var ids = await _storage.Archive.QueryAsync(H, "alice", new ArchiveQuery { Ids = ["id6", "id1", "nope"] }, None);
        Assert.That(ids!.Messages.Select(m => m.Id), Is.EqualTo(new[] { "id1", "id6" }));
        Assert.That((await _storage.Archive.QueryAsync(H, "alice", new ArchiveQuery { Ids = [] }, None))!.Messages, Is.Empty);

        var bounds = await _storage.Archive.BoundsAsync(H, "alice", None);
        Assert.That((bounds!.Value.First.Id, bounds.Value.Last.Id), Is.EqualTo(("id0", "id9")));

        Assert.That(await _storage.Archive.ExpireAsync(t0.AddMinutes(2), 0, None), Is.EqualTo(3), "id0, id1 and bob's");
        Assert.That(await _storage.Archive.ExpireAsync(null, 5, None), Is.EqualTo(3), "alice keeps her 5 newest");
        var left = await _storage.Archive.QueryAsync(H, "alice", new ArchiveQuery(), None);
        Assert.That(left!.Messages.Select(m => m.Id), Is.EqualTo(new[] { "id5", "id6", "id7", "id8", "id9" }));
    }

    [Test]
    public async Task Invitations_are_kept_used_once_per_use_and_expire()
    {
        var now = DateTimeOffset.UtcNow;
        var once = new Invite("AAAAAAAAAAAAAAAAAAAAAA", InviteKind.Register, H, null, "juliet", false, false, 1, now.AddDays(7), now);
        var twice = new Invite("BBBBBBBBBBBBBBBBBBBBBB", InviteKind.Roster, H, "alice@" + H, null, true, true, 2, now.AddDays(1), now.AddSeconds(1));
        var old = new Invite("CCCCCCCCCCCCCCCCCCCCCC", InviteKind.Register, "other.org", null, null, false, true, 1, now.AddDays(-40), now.AddDays(-50));
        foreach (var i in new[] { once, twice, old })
        {
            await _storage.Invites.CreateAsync(i, None);
        }

        var read = await _storage.Invites.GetAsync(twice.Token, None);
        Assert.That(read, Is.Not.Null);
        Assert.That(read!.Kind, Is.EqualTo(InviteKind.Roster));
        Assert.That((read.Inviter, read.Username, read.AllowRegistration, read.Subscribe, read.UsesLeft), Is.EqualTo(("alice@" + H, (string?)null, true, true, 2)));
        Assert.That(read.Expires, Is.EqualTo(twice.Expires).Within(TimeSpan.FromMilliseconds(1)));
        Assert.That(read.Created, Is.EqualTo(twice.Created).Within(TimeSpan.FromMilliseconds(1)));
        Assert.That((await _storage.Invites.GetAsync(once.Token, None))!.Username, Is.EqualTo("juliet"));
        Assert.That(await _storage.Invites.GetAsync("nope", None), Is.Null);

        // The last use goes to one of two concurrent users only.
        var both = await Task.WhenAll(_storage.Invites.TryUseAsync(once.Token, None), _storage.Invites.TryUseAsync(once.Token, None));
        Assert.That(both.Count(b => b), Is.EqualTo(1));
        Assert.That((await _storage.Invites.GetAsync(once.Token, None))!.UsesLeft, Is.Zero);
        await _storage.Invites.ReturnUseAsync(once.Token, None);
        Assert.That(await _storage.Invites.TryUseAsync(once.Token, None), Is.True, "a use given back can be taken again");
        Assert.That(await _storage.Invites.TryUseAsync(once.Token, None), Is.False);
        Assert.That(await _storage.Invites.TryUseAsync(twice.Token, None), Is.True);
        Assert.That((await _storage.Invites.GetAsync(twice.Token, None))!.UsesLeft, Is.EqualTo(1));

        Assert.That((await _storage.Invites.ListAsync(H, None)).Select(i => i.Token), Is.EqualTo(new[] { twice.Token, once.Token }), "newest first");
        Assert.That(await _storage.Invites.ListAsync(null, None), Has.Count.EqualTo(3));
        Assert.That(await _storage.Invites.DeleteExpiredAsync(now.AddDays(-30), None), Is.EqualTo(1));
        Assert.That(await _storage.Invites.GetAsync(old.Token, None), Is.Null);
        Assert.That(await _storage.Invites.DeleteAsync(twice.Token, None), Is.True);
        Assert.That(await _storage.Invites.DeleteAsync(twice.Token, None), Is.False);
        Assert.That(await _storage.Invites.ListAsync(null, None), Has.Count.EqualTo(1));
    }

    [Test]
    public async Task Concurrent_writes_are_all_kept()
    {
        var at = DateTimeOffset.UtcNow;
        await Task.WhenAll(Enumerable.Range(0, 200).Select(i =>
            _storage.Offline.StoreAsync(H, i % 2 == 0 ? "alice" : "bob", $"<message id='{i}'/>", 1000, None))).WaitAsync(TimeSpan.FromSeconds(60));
        await Task.WhenAll(Enumerable.Range(0, 50).Select(i =>
            _storage.Archive.AppendAsync(H, "alice", Message("c" + i, "bob@" + H, true, at), None))).WaitAsync(TimeSpan.FromSeconds(60));
        Assert.That(await _storage.Offline.LoadAsync(H, "alice", None), Has.Count.EqualTo(100));
        Assert.That(await _storage.Offline.LoadAsync(H, "bob", None), Has.Count.EqualTo(100));
        Assert.That((await _storage.Archive.QueryAsync(H, "alice", new ArchiveQuery { Max = 100 }, None))!.Messages, Has.Count.EqualTo(50));
    }

    [Test]
    public async Task A_message_sent_again_with_its_origin_id_is_archived_once_under_its_first_stanza_id()
    {
        var t0 = DateTimeOffset.UtcNow;
        ArchivedMessage Sent(string id, string with, bool outgoing, string? origin) => Message(id, with, outgoing, t0) with { OriginId = origin };

        // XEP-0198 §5: a client that lost its session sends again what the server had not acknowledged; it may have
        // a new resource, so the correspondent is compared by bare JID.
        Assert.That(await _storage.Archive.AppendAsync(H, "alice", Sent("s1", "bob@" + H + "/phone", false, "o-1"), None), Is.EqualTo("s1"));
        Assert.That(await _storage.Archive.AppendAsync(H, "alice", Sent("s2", "bob@" + H + "/laptop", false, "o-1"), None), Is.EqualTo("s1"), "the copy sent again has the first one's stanza id");

        // The same origin id is another message when it comes from someone else, goes the other way, or is absent.
        Assert.That(await _storage.Archive.AppendAsync(H, "alice", Sent("s3", "carol@" + H, false, "o-1"), None), Is.EqualTo("s3"));
        Assert.That(await _storage.Archive.AppendAsync(H, "alice", Sent("s4", "bob@" + H, true, "o-1"), None), Is.EqualTo("s4"));
        Assert.That(await _storage.Archive.AppendAsync(H, "alice", Sent("s5", "bob@" + H, false, null), None), Is.EqualTo("s5"));
        Assert.That(await _storage.Archive.AppendAsync(H, "alice", Sent("s6", "bob@" + H, false, null), None), Is.EqualTo("s6"));
        Assert.That(await _storage.Archive.AppendAsync(H, "bob", Sent("s7", "alice@" + H, false, "o-1"), None), Is.EqualTo("s7"), "another owner's archive");

        // A stanza id archived already (an import run twice) is kept once too; an owner that does not exist gets none.
        Assert.That(await _storage.Archive.AppendAsync(H, "alice", Sent("s3", "carol@" + H, false, null), None), Is.EqualTo("s3"));
        Assert.That(await _storage.Archive.AppendAsync(H, "nobody", Sent("s8", "bob@" + H, false, "o-2"), None), Is.Null);

        var page = await _storage.Archive.QueryAsync(H, "alice", new ArchiveQuery { Max = 50 }, None);
        Assert.That(page!.Messages.Select(m => m.Id), Is.EqualTo(new[] { "s1", "s3", "s4", "s5", "s6" }));
        Assert.That(page.Messages[0].With, Is.EqualTo("bob@" + H + "/phone"), "the first copy is the one kept");
    }

    [Test]
    public async Task A_room_message_sent_again_is_archived_once_per_occupant()
    {
        await _storage.Documents.SetHostAsync(H, "muc-room", "room", "<room/>", None);
        var t0 = DateTimeOffset.UtcNow;
        ArchivedMessage Sent(string id, string nick, string origin) => Message(id, $"room@{H}/{nick}", false, t0) with { OriginId = origin };

        Assert.That(await _storage.RoomArchive.AppendAsync(H, "room", Sent("r1", "alice", "o-1"), None), Is.EqualTo("r1"));
        Assert.That(await _storage.RoomArchive.AppendAsync(H, "room", Sent("r2", "alice", "o-1"), None), Is.EqualTo("r1"));

        // Every occupant's bare JID is the room: another nick's message with the same origin id is its own.
        Assert.That(await _storage.RoomArchive.AppendAsync(H, "room", Sent("r3", "bob", "o-1"), None), Is.EqualTo("r3"));
        var page = await _storage.RoomArchive.QueryAsync(H, "room", new ArchiveQuery { Max = 50 }, None);
        Assert.That(page!.Messages.Select(m => m.Id), Is.EqualTo(new[] { "r1", "r3" }));
    }

    private static ArchivedMessage Message(string id, string with, bool outgoing, DateTimeOffset at) =>
        new(id, with, outgoing, at, $"<message id='{id}'><body>{id}</body></message>");
}
