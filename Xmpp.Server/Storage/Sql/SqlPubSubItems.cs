using System.Data.Common;
using System.Globalization;

namespace Xmpp.Server.Storage.Sql;

/// <summary>
/// The items of publish-subscribe nodes in one table, whatever owns the nodes: PEP's are keyed by
/// (host, username, node), a pubsub service's by (service, node). The key's values are bound, in the
/// order of the columns, as @k0, @k1, ...
/// </summary>
internal sealed class SqlPubSubItems(SqlStorage storage, string table, params string[] keyColumns)
{
    private readonly string _where = string.Join(" AND ", keyColumns.Select((c, i) => $"{c} = @k{i.ToString(CultureInfo.InvariantCulture)}"));

    /// <summary>Stores an item (replacing one with the same id, which becomes the newest) and keeps only the newest <paramref name="maxItems"/>.</summary>
    public Task PublishAsync(IReadOnlyList<string> key, PubSubItem item, int maxItems, CancellationToken cancellationToken) =>
        storage.WriteAsync(
            async (connection, tx, ct) =>
            {
                var columns = string.Join(", ", keyColumns);
                var values = string.Join(", ", keyColumns.Select((_, i) => "@k" + i.ToString(CultureInfo.InvariantCulture)));

                // Delete and insert, so that a republished id becomes the newest item.
                await using var cmd = Command(connection, tx, $"""
                    DELETE FROM {table} WHERE {_where} AND item_id = @i;
                    INSERT INTO {table} ({columns}, item_id, xml, publisher, published_at) VALUES ({values}, @i, @x, @p, @t);
                    DELETE FROM {table} WHERE {_where} AND id NOT IN
                        (SELECT id FROM {table} WHERE {_where} ORDER BY id DESC LIMIT @m);
                    """, key);
                cmd.Add("@i", item.Id);
                cmd.Add("@x", item.Xml);
                cmd.Add("@p", item.Publisher);
                cmd.Add("@t", item.Published.UtcDateTime.ToString("o", CultureInfo.InvariantCulture));
                cmd.Add("@m", maxItems);
                await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            },
            cancellationToken);

    /// <summary>Removes an item; false when there was none.</summary>
    public Task<bool> RetractAsync(IReadOnlyList<string> key, string itemId, CancellationToken cancellationToken) =>
        storage.WriteAsync<bool>(
            async (connection, tx, ct) =>
            {
                await using var cmd = Command(connection, tx, $"DELETE FROM {table} WHERE {_where} AND item_id = @i", key);
                cmd.Add("@i", itemId);
                return await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false) > 0;
            },
            cancellationToken);

    public Task PurgeAsync(IReadOnlyList<string> key, CancellationToken cancellationToken) =>
        storage.WriteAsync(
            async (connection, tx, ct) =>
            {
                await using var cmd = Command(connection, tx, $"DELETE FROM {table} WHERE {_where}", key);
                await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            },
            cancellationToken);

    /// <summary>The newest <paramref name="max"/> items (all when null), or those with the given ids; oldest first.</summary>
    public async Task<IReadOnlyList<PubSubItem>> GetItemsAsync(IReadOnlyList<string> key, int? max, IReadOnlyCollection<string>? ids, CancellationToken cancellationToken)
    {
        await using var connection = await storage.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var cmd = connection.CreateCommand();
        Bind(cmd, key);
        var where = _where;
        if (ids is not null)
        {
            var names = new List<string>();
            foreach (var id in ids)
            {
                var name = "@i" + names.Count.ToString(CultureInfo.InvariantCulture);
                names.Add(name);
                cmd.Add(name, id);
            }

            where += names.Count == 0 ? " AND 1 = 0" : $" AND item_id IN ({string.Join(", ", names)})";
        }

        cmd.CommandText = $"SELECT item_id, xml, publisher, published_at FROM (SELECT id, item_id, xml, publisher, published_at FROM {table} WHERE {where} ORDER BY id DESC LIMIT @m) AS newest ORDER BY id";
        cmd.Add("@m", max is { } m ? (long)m : long.MaxValue);
        var items = new List<PubSubItem>();
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            var when = DateTimeOffset.Parse(reader.GetString(3), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal);
            items.Add(new PubSubItem(reader.GetString(0), reader.GetString(1), reader.GetString(2), when));
        }

        return items;
    }

    private void Bind(DbCommand cmd, IReadOnlyList<string> key)
    {
        if (key.Count != keyColumns.Length)
        {
            throw new ArgumentException($"{table} items are keyed by {keyColumns.Length} values", nameof(key));
        }

        for (var i = 0; i < key.Count; i++)
        {
            cmd.Add("@k" + i.ToString(CultureInfo.InvariantCulture), key[i]);
        }
    }

    private DbCommand Command(DbConnection connection, DbTransaction tx, string sql, IReadOnlyList<string> key)
    {
        var cmd = connection.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = sql;
        Bind(cmd, key);
        return cmd;
    }
}
