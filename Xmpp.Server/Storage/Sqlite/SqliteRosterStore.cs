using Microsoft.Data.Sqlite;

namespace Xmpp.Server.Storage.Sqlite;

internal sealed class SqliteRosterStore(SqliteStorage storage) : IRosterStore
{
    public async Task<IReadOnlyList<RosterItem>> GetAsync(string host, string username, CancellationToken cancellationToken)
    {
        await using var connection = await storage.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var cmd = connection.CreateCommand();
        cmd.CommandText = "SELECT contact, name, subscription, ask, groups FROM roster_items WHERE host = $h AND username = $u ORDER BY contact";
        cmd.Parameters.AddWithValue("$h", host);
        cmd.Parameters.AddWithValue("$u", username);
        var list = new List<RosterItem>();
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            list.Add(Read(reader));
        }

        return list;
    }

    public async Task<RosterItem?> FindAsync(string host, string username, string contact, CancellationToken cancellationToken)
    {
        await using var connection = await storage.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var cmd = connection.CreateCommand();
        cmd.CommandText = "SELECT contact, name, subscription, ask, groups FROM roster_items WHERE host = $h AND username = $u AND contact = $c";
        cmd.Parameters.AddWithValue("$h", host);
        cmd.Parameters.AddWithValue("$u", username);
        cmd.Parameters.AddWithValue("$c", contact);
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        return await reader.ReadAsync(cancellationToken).ConfigureAwait(false) ? Read(reader) : null;
    }

    public async Task SetAsync(string host, string username, RosterItem item, CancellationToken cancellationToken)
    {
        await using var connection = await storage.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var cmd = connection.CreateCommand();
        cmd.CommandText = """
            INSERT INTO roster_items (host, username, contact, name, subscription, ask, groups)
            VALUES ($h, $u, $c, $n, $s, $a, $g)
            ON CONFLICT (host, username, contact) DO UPDATE SET name = $n, subscription = $s, ask = $a, groups = $g
            """;
        cmd.Parameters.AddWithValue("$h", host);
        cmd.Parameters.AddWithValue("$u", username);
        cmd.Parameters.AddWithValue("$c", item.Jid);
        cmd.Parameters.AddWithValue("$n", (object?)item.Name ?? DBNull.Value);
        cmd.Parameters.AddWithValue("$s", item.Subscription);
        cmd.Parameters.AddWithValue("$a", (object?)item.Ask ?? DBNull.Value);
        cmd.Parameters.AddWithValue("$g", string.Join('\n', item.Groups));
        await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    public async Task<bool> RemoveAsync(string host, string username, string contact, CancellationToken cancellationToken)
    {
        await using var connection = await storage.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var cmd = connection.CreateCommand();
        cmd.CommandText = "DELETE FROM roster_items WHERE host = $h AND username = $u AND contact = $c";
        cmd.Parameters.AddWithValue("$h", host);
        cmd.Parameters.AddWithValue("$u", username);
        cmd.Parameters.AddWithValue("$c", contact);
        return await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) > 0;
    }

    private static RosterItem Read(SqliteDataReader r)
    {
        var groups = r.GetString(4);
        return new RosterItem(
            r.GetString(0),
            r.IsDBNull(1) ? null : r.GetString(1),
            r.GetString(2),
            r.IsDBNull(3) ? null : r.GetString(3),
            groups.Length == 0 ? [] : groups.Split('\n'));
    }
}
