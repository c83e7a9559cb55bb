using System.Data.Common;
using System.Globalization;

namespace Xmpp.Server.Storage.Sql;

internal sealed class SqlPubSubServiceStore(SqlStorage storage) : IPubSubServiceStore
{
    private readonly SqlPubSubItems _items = new(storage, "pubsub_service_items", "service", "node");

    public async Task<ServiceState> LoadAsync(string service, CancellationToken cancellationToken)
    {
        await using var connection = await storage.OpenAsync(cancellationToken).ConfigureAwait(false);
        var nodes = await ReadAsync(connection, "SELECT node, config FROM pubsub_service_nodes WHERE service = @s ORDER BY node", service, r => new ServiceNodeRecord(r.GetString(0), r.GetString(1)), cancellationToken).ConfigureAwait(false);
        var affiliations = await ReadAsync(connection, "SELECT node, jid, affiliation FROM pubsub_service_affiliations WHERE service = @s ORDER BY node, jid", service, r => new ServiceAffiliationRecord(r.GetString(0), r.GetString(1), r.GetString(2)), cancellationToken).ConfigureAwait(false);
        var subscriptions = await ReadAsync(connection, "SELECT node, subid, jid, state, options FROM pubsub_service_subscriptions WHERE service = @s ORDER BY node, created_at, subid", service, r => new ServiceSubscriptionRecord(r.GetString(0), r.GetString(1), r.GetString(2), r.GetString(3), r.GetString(4)), cancellationToken).ConfigureAwait(false);
        return new ServiceState(nodes, affiliations, subscriptions);
    }

    public Task<bool> CreateNodeAsync(string service, string node, string config, string owner, CancellationToken cancellationToken) =>
        storage.WriteAsync<bool>(
            async (connection, tx, ct) =>
            {
                await using var cmd = Command(connection, tx, "INSERT INTO pubsub_service_nodes (service, node, config, created_at) VALUES (@s, @n, @c, @t) ON CONFLICT (service, node) DO NOTHING", service, node);
                cmd.Add("@c", config);
                cmd.Add("@t", Now());
                if (await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false) == 0)
                {
                    return false;
                }

                await using var affiliation = Command(connection, tx, "INSERT INTO pubsub_service_affiliations (service, node, jid, affiliation) VALUES (@s, @n, @j, 'owner')", service, node);
                affiliation.Add("@j", owner);
                await affiliation.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
                return true;
            },
            cancellationToken);

    public Task SetConfigAsync(string service, string node, string config, CancellationToken cancellationToken) =>
        storage.WriteAsync(
            async (connection, tx, ct) =>
            {
                await using var cmd = Command(connection, tx, "UPDATE pubsub_service_nodes SET config = @c WHERE service = @s AND node = @n", service, node);
                cmd.Add("@c", config);
                await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            },
            cancellationToken);

    public Task<bool> DeleteNodeAsync(string service, string node, CancellationToken cancellationToken) =>
        storage.WriteAsync<bool>(
            async (connection, tx, ct) =>
            {
                await using var cmd = Command(connection, tx, "DELETE FROM pubsub_service_nodes WHERE service = @s AND node = @n", service, node);
                return await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false) > 0;
            },
            cancellationToken);

    public Task SetAffiliationAsync(string service, string node, string jid, string affiliation, CancellationToken cancellationToken) =>
        storage.WriteAsync(
            async (connection, tx, ct) =>
            {
                await using var cmd = Command(
                    connection,
                    tx,
                    affiliation == "none"
                        ? "DELETE FROM pubsub_service_affiliations WHERE service = @s AND node = @n AND jid = @j"
                        : """
                          INSERT INTO pubsub_service_affiliations (service, node, jid, affiliation)
                          SELECT @s, @n, @j, @a WHERE EXISTS (SELECT 1 FROM pubsub_service_nodes WHERE service = @s AND node = @n)
                          ON CONFLICT (service, node, jid) DO UPDATE SET affiliation = excluded.affiliation
                          """,
                    service,
                    node);
                cmd.Add("@j", jid);
                cmd.Add("@a", affiliation);
                await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            },
            cancellationToken);

    public Task SetSubscriptionAsync(string service, ServiceSubscriptionRecord subscription, CancellationToken cancellationToken) =>
        storage.WriteAsync(
            async (connection, tx, ct) =>
            {
                await using var cmd = Command(connection, tx, """
                    INSERT INTO pubsub_service_subscriptions (service, node, subid, jid, state, options, created_at)
                    SELECT @s, @n, @i, @j, @st, @o, @t WHERE EXISTS (SELECT 1 FROM pubsub_service_nodes WHERE service = @s AND node = @n)
                    ON CONFLICT (service, node, subid) DO UPDATE SET jid = excluded.jid, state = excluded.state, options = excluded.options
                    """, service, subscription.Node);
                cmd.Add("@i", subscription.SubId);
                cmd.Add("@j", subscription.Jid);
                cmd.Add("@st", subscription.State);
                cmd.Add("@o", subscription.Options);
                cmd.Add("@t", Now());
                await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            },
            cancellationToken);

    public Task<bool> RemoveSubscriptionAsync(string service, string node, string subId, CancellationToken cancellationToken) =>
        storage.WriteAsync<bool>(
            async (connection, tx, ct) =>
            {
                await using var cmd = Command(connection, tx, "DELETE FROM pubsub_service_subscriptions WHERE service = @s AND node = @n AND subid = @i", service, node);
                cmd.Add("@i", subId);
                return await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false) > 0;
            },
            cancellationToken);

    public Task PublishAsync(string service, string node, PubSubItem item, int maxItems, CancellationToken cancellationToken) =>
        _items.PublishAsync([service, node], item, maxItems, cancellationToken);

    public Task<bool> RetractAsync(string service, string node, string itemId, CancellationToken cancellationToken) =>
        _items.RetractAsync([service, node], itemId, cancellationToken);

    public Task PurgeAsync(string service, string node, CancellationToken cancellationToken) =>
        _items.PurgeAsync([service, node], cancellationToken);

    public Task<IReadOnlyList<PubSubItem>> GetItemsAsync(string service, string node, int? max, IReadOnlyCollection<string>? ids, CancellationToken cancellationToken) =>
        _items.GetItemsAsync([service, node], max, ids, cancellationToken);

    private static async Task<List<T>> ReadAsync<T>(DbConnection connection, string sql, string service, Func<DbDataReader, T> row, CancellationToken ct)
    {
        await using var cmd = connection.CreateCommand();
        cmd.CommandText = sql;
        cmd.Add("@s", service);
        var list = new List<T>();
        await using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await reader.ReadAsync(ct).ConfigureAwait(false))
        {
            list.Add(row(reader));
        }

        return list;
    }

    private static string Now() => DateTime.UtcNow.ToString("o", CultureInfo.InvariantCulture);

    private static DbCommand Command(DbConnection connection, DbTransaction tx, string sql, string service, string node)
    {
        var cmd = connection.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = sql;
        cmd.Add("@s", service);
        cmd.Add("@n", node);
        return cmd;
    }
}
