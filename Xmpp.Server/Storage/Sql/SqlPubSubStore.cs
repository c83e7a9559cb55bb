using System.Data.Common;
using System.Globalization;

namespace Xmpp.Server.Storage.Sql;

internal sealed class SqlPubSubStore(SqlStorage storage) : IPubSubStore
{
    private readonly SqlPubSubItems _items = new(storage, "pubsub_items", "host", "username", "node");

    public async Task<PubSubNode?> GetNodeAsync(string host, string username, string node, CancellationToken cancellationToken)
    {
        await using var connection = await storage.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var cmd = connection.CreateCommand();
        cmd.CommandText = "SELECT config FROM pubsub_nodes WHERE host = @h AND username = @u AND node = @n";
        Bind(cmd, host, username, node);
        return await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is string config ? new PubSubNode(node, config) : null;
    }

    public async Task<IReadOnlyList<PubSubNode>> ListNodesAsync(string host, string username, CancellationToken cancellationToken)
    {
        await using var connection = await storage.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var cmd = connection.CreateCommand();
        cmd.CommandText = "SELECT node, config FROM pubsub_nodes WHERE host = @h AND username = @u ORDER BY node";
        cmd.Add("@h", host);
        cmd.Add("@u", username);
        var nodes = new List<PubSubNode>();
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            nodes.Add(new PubSubNode(reader.GetString(0), reader.GetString(1)));
        }

        return nodes;
    }

    public Task<bool> CreateNodeAsync(string host, string username, string node, string config, CancellationToken cancellationToken) =>
        storage.WriteAsync<bool>(
            async (connection, tx, ct) =>
            {
                await using var cmd = Command(connection, tx, """
                    INSERT INTO pubsub_nodes (host, username, node, config, created_at)
                    SELECT @h, @u, @n, @c, @t WHERE EXISTS (SELECT 1 FROM users WHERE host = @h AND username = @u)
                    ON CONFLICT (host, username, node) DO NOTHING
                    """, host, username, node);
                cmd.Add("@c", config);
                cmd.Add("@t", Now());
                return await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false) > 0;
            },
            cancellationToken);

    public Task SetConfigAsync(string host, string username, string node, string config, CancellationToken cancellationToken) =>
        storage.WriteAsync(
            async (connection, tx, ct) =>
            {
                await using var cmd = Command(connection, tx, "UPDATE pubsub_nodes SET config = @c WHERE host = @h AND username = @u AND node = @n", host, username, node);
                cmd.Add("@c", config);
                await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            },
            cancellationToken);

    public Task<bool> DeleteNodeAsync(string host, string username, string node, CancellationToken cancellationToken) =>
        storage.WriteAsync<bool>(
            async (connection, tx, ct) =>
            {
                await using var cmd = Command(connection, tx, "DELETE FROM pubsub_nodes WHERE host = @h AND username = @u AND node = @n", host, username, node);
                return await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false) > 0;
            },
            cancellationToken);

    public Task PublishAsync(string host, string username, string node, PubSubItem item, int maxItems, CancellationToken cancellationToken) =>
        _items.PublishAsync([host, username, node], item, maxItems, cancellationToken);

    public Task<bool> RetractAsync(string host, string username, string node, string itemId, CancellationToken cancellationToken) =>
        _items.RetractAsync([host, username, node], itemId, cancellationToken);

    public Task PurgeAsync(string host, string username, string node, CancellationToken cancellationToken) =>
        _items.PurgeAsync([host, username, node], cancellationToken);

    public Task<IReadOnlyList<PubSubItem>> GetItemsAsync(string host, string username, string node, int? max, IReadOnlyCollection<string>? ids, CancellationToken cancellationToken) =>
        _items.GetItemsAsync([host, username, node], max, ids, cancellationToken);

    private static string Now() => DateTime.UtcNow.ToString("o", CultureInfo.InvariantCulture);

    private static void Bind(DbCommand cmd, string host, string username, string node)
    {
        cmd.Add("@h", host);
        cmd.Add("@u", username);
        cmd.Add("@n", node);
    }

    private static DbCommand Command(DbConnection connection, DbTransaction tx, string sql, string host, string username, string node)
    {
        var cmd = connection.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = sql;
        Bind(cmd, host, username, node);
        return cmd;
    }
}
