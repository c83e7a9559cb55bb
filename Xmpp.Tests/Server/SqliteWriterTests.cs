using Microsoft.Data.Sqlite;
using Xmpp.Core.Sasl;
using Xmpp.Server.Storage;
using Xmpp.Server.Storage.Sqlite;

namespace Xmpp.Tests.Server;

/// <summary>The single SQLite writer: group commit keeps every write, isolates failures and keeps store rules.</summary>
public sealed class SqliteWriterTests
{
    private string _dir = string.Empty;
    private SqliteStorage _storage = null!;

    [SetUp]
    public async Task SetUp()
    {
        _dir = Path.Combine(Path.GetTempPath(), "xmpp-writer-" + Guid.NewGuid().ToString("N"));
        _storage = new SqliteStorage(Path.Combine(_dir, "xmpp.db"));
        await _storage.MigrateAsync(CancellationToken.None);
        var creds = new[] { ScramCredential.Create(ScramHash.Sha1, "pw", 4096) };
        await Task.WhenAll(Enumerable.Range(0, 50).Select(i => _storage.Users.CreateAsync("localhost", "u" + i, creds, CancellationToken.None)));
    }

    [TearDown]
    public async Task TearDown()
    {
        await _storage.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }

    [Test]
    public async Task A_burst_of_concurrent_writes_is_all_committed()
    {
        var at = DateTimeOffset.UtcNow;
        await Task.WhenAll(Enumerable.Range(0, 50).Select(i =>
            _storage.LastActivity.SetAsync("localhost", "u" + i, new LastActivity(at, "bye " + i), CancellationToken.None))).WaitAsync(TimeSpan.FromSeconds(30));
        await Task.WhenAll(Enumerable.Range(0, 2000).Select(i =>
            _storage.Offline.StoreAsync("localhost", "u" + (i % 50), $"<message id='{i}'/>", 1000, CancellationToken.None))).WaitAsync(TimeSpan.FromSeconds(30));

        for (var i = 0; i < 50; i++)
        {
            Assert.That((await _storage.LastActivity.GetAsync("localhost", "u" + i, CancellationToken.None))?.Status, Is.EqualTo("bye " + i));
            Assert.That(await _storage.Offline.LoadAsync("localhost", "u" + i, CancellationToken.None), Has.Count.EqualTo(40));
        }
    }

    [Test]
    public async Task A_failing_write_is_rolled_back_alone()
    {
        // Queued together, so they share a batch: the middle one fails after writing a row.
        var before = _storage.Offline.StoreAsync("localhost", "u1", "<message id='a'/>", 10, CancellationToken.None);
        var failing = _storage.WriteAsync<int>(
            async (connection, tx, ct) =>
            {
                await using var cmd = connection.CreateCommand();
                cmd.Transaction = tx;
                cmd.CommandText = "INSERT INTO offline_messages (host, username, stanza, stored_at) VALUES ('localhost', 'u1', '<message id=''x''/>', 'now')";
                await cmd.ExecuteNonQueryAsync(ct);
                cmd.CommandText = "INSERT INTO no_such_table VALUES (1)";
                return await cmd.ExecuteNonQueryAsync(ct);
            },
            CancellationToken.None);
        var after = _storage.Offline.StoreAsync("localhost", "u1", "<message id='b'/>", 10, CancellationToken.None);

        Assert.That(await before, Is.True);
        Assert.ThrowsAsync<SqliteException>(async () => await failing);
        Assert.That(await after, Is.True);
        var stored = await _storage.Offline.LoadAsync("localhost", "u1", CancellationToken.None);
        Assert.That(stored.Select(m => m.Xml), Is.EqualTo(new[] { "<message id='a'/>", "<message id='b'/>" }));
    }

    [Test]
    public async Task The_offline_limit_holds_for_concurrent_stores()
    {
        var results = await Task.WhenAll(Enumerable.Range(0, 100).Select(i =>
            _storage.Offline.StoreAsync("localhost", "u2", $"<message id='{i}'/>", 30, CancellationToken.None)));
        Assert.That(results.Count(r => r), Is.EqualTo(30));
        Assert.That(await _storage.Offline.LoadAsync("localhost", "u2", CancellationToken.None), Has.Count.EqualTo(30));
    }

    [Test]
    public async Task Deleting_an_account_cascades_to_its_data()
    {
        // Readers open without foreign-key enforcement; the writer keeps it, so deletes still cascade.
        await _storage.Offline.StoreAsync("localhost", "u3", "<message/>", 10, CancellationToken.None);
        await _storage.LastActivity.SetAsync("localhost", "u3", new LastActivity(DateTimeOffset.UtcNow, null), CancellationToken.None);
        Assert.That(await _storage.Users.DeleteAsync("localhost", "u3", CancellationToken.None), Is.True);
        Assert.That(await _storage.Offline.LoadAsync("localhost", "u3", CancellationToken.None), Is.Empty);
        Assert.That(await _storage.LastActivity.GetAsync("localhost", "u3", CancellationToken.None), Is.Null);
        Assert.That(await _storage.Users.GetCredentialAsync("localhost", "u3", ScramHash.Sha1, CancellationToken.None), Is.Null);
    }

    [Test]
    public async Task Writes_after_close_are_refused()
    {
        await _storage.DisposeAsync();
        Assert.Throws<ObjectDisposedException>(() =>
            _storage.LastActivity.SetAsync("localhost", "u1", new LastActivity(DateTimeOffset.UtcNow, null), CancellationToken.None));
        _storage = new SqliteStorage(Path.Combine(_dir, "xmpp.db"));
    }
}
