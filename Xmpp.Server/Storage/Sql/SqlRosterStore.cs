using System.Data.Common;

namespace Xmpp.Server.Storage.Sql;

internal sealed class SqlRosterStore(SqlStorage storage) : IRosterStore
{
    public async Task<StoredRoster> LoadAsync(string host, string username, CancellationToken cancellationToken)
    {
        await using var connection = await storage.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var cmd = connection.CreateCommand();
        cmd.CommandText = """
            SELECT contact, name, subscription, ask, groups, pending_in, pending_in_request, approved, in_roster
            FROM roster_items WHERE host = @h AND username = @u ORDER BY contact;
            SELECT version FROM roster_versions WHERE host = @h AND username = @u;
            """;
        cmd.Add("@h", host);
        cmd.Add("@u", username);
        var list = new List<RosterItem>();
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            list.Add(Read(reader));
        }

        long version = 0;
        if (await reader.NextResultAsync(cancellationToken).ConfigureAwait(false) && await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            version = reader.GetInt64(0);
        }

        return new StoredRoster(list, version);
    }

    public async Task<RosterItem?> GetItemAsync(string host, string username, string contact, CancellationToken cancellationToken)
    {
        await using var connection = await storage.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var cmd = connection.CreateCommand();
        cmd.CommandText = """
            SELECT contact, name, subscription, ask, groups, pending_in, pending_in_request, approved, in_roster
            FROM roster_items WHERE host = @h AND username = @u AND contact = @c
            """;
        cmd.Add("@h", host);
        cmd.Add("@u", username);
        cmd.Add("@c", contact);
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        return await reader.ReadAsync(cancellationToken).ConfigureAwait(false) ? Read(reader) : null;
    }

    public Task SaveAsync(string host, string username, RosterItem item, long version, CancellationToken cancellationToken)
    {
        return storage.WriteAsync(
            async (connection, tx, ct) =>
            {
                await using (var cmd = connection.CreateCommand())
                {
                    cmd.Transaction = tx;
                    cmd.CommandText = """
                        INSERT INTO roster_items (host, username, contact, name, subscription, ask, groups, pending_in, pending_in_request, approved, in_roster)
                        VALUES (@h, @u, @c, @n, @s, @a, @g, @pi, @pr, @ap, @ir)
                        ON CONFLICT (host, username, contact) DO UPDATE SET name = @n, subscription = @s, ask = @a, groups = @g,
                            pending_in = @pi, pending_in_request = @pr, approved = @ap, in_roster = @ir
                        """;
                    cmd.Add("@h", host);
                    cmd.Add("@u", username);
                    cmd.Add("@c", item.Jid);
                    cmd.Add("@n", (object?)item.Name ?? DBNull.Value);
                    cmd.Add("@s", item.Subscription.Name());
                    cmd.Add("@a", item.PendingOut ? "subscribe" : DBNull.Value);
                    cmd.Add("@g", string.Join('\n', item.Groups));
                    cmd.Add("@pi", item.PendingIn ? 1 : 0);
                    cmd.Add("@pr", (object?)item.PendingInRequest ?? DBNull.Value);
                    cmd.Add("@ap", item.Approved ? 1 : 0);
                    cmd.Add("@ir", item.InRoster ? 1 : 0);
                    await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
                }

                await SetVersionAsync(connection, tx, host, username, version, ct).ConfigureAwait(false);
            },
            cancellationToken);
    }

    public Task RemoveAsync(string host, string username, string contact, long version, CancellationToken cancellationToken)
    {
        return storage.WriteAsync(
            async (connection, tx, ct) =>
            {
                await using (var cmd = connection.CreateCommand())
                {
                    cmd.Transaction = tx;
                    cmd.CommandText = "DELETE FROM roster_items WHERE host = @h AND username = @u AND contact = @c";
                    cmd.Add("@h", host);
                    cmd.Add("@u", username);
                    cmd.Add("@c", contact);
                    await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
                }

                await SetVersionAsync(connection, tx, host, username, version, ct).ConfigureAwait(false);
            },
            cancellationToken);
    }

    private static async Task SetVersionAsync(DbConnection connection, DbTransaction tx, string host, string username, long version, CancellationToken cancellationToken)
    {
        await using var cmd = connection.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = """
            INSERT INTO roster_versions (host, username, version) VALUES (@h, @u, @v)
            ON CONFLICT (host, username) DO UPDATE SET version = @v
            """;
        cmd.Add("@h", host);
        cmd.Add("@u", username);
        cmd.Add("@v", version);
        await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    private static RosterItem Read(DbDataReader r)
    {
        var groups = r.GetString(4);
        return new RosterItem(
            r.GetString(0),
            r.IsDBNull(1) ? null : r.GetString(1),
            Subscriptions.Parse(r.GetString(2)),
            !r.IsDBNull(3),
            r.GetInt64(5) != 0,
            r.GetInt64(7) != 0,
            groups.Length == 0 ? [] : groups.Split('\n'),
            r.GetInt64(8) != 0,
            r.IsDBNull(6) ? null : r.GetString(6));
    }
}
