using System.Data.Common;
using System.Globalization;
using System.Text;

namespace Xmpp.Server.Storage.Sql;

internal sealed class SqlOfflineStore(SqlStorage storage) : IOfflineStore
{
    public Task<bool> StoreAsync(string host, string username, string xml, int limit, CancellationToken cancellationToken)
    {
        return storage.WriteAsync<bool>(
            async (connection, tx, ct) =>
            {
                await using var cmd = connection.CreateCommand();
                cmd.Transaction = tx;

                // One statement: the count check and the insert cannot interleave with another writer.
                cmd.CommandText = """
                    INSERT INTO offline_messages (host, username, stanza, stored_at)
                    SELECT @h, @u, @x, @t WHERE (SELECT COUNT(*) FROM offline_messages WHERE host = @h AND username = @u) < @l
                    """;
                cmd.Add("@h", host);
                cmd.Add("@u", username);
                cmd.Add("@x", xml);
                cmd.Add("@t", DateTime.UtcNow.ToString("o", CultureInfo.InvariantCulture));
                cmd.Add("@l", limit);
                return await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false) > 0;
            },
            cancellationToken);
    }

    public async Task<IReadOnlyList<OfflineMessage>> LoadAsync(string host, string username, CancellationToken cancellationToken)
    {
        await using var connection = await storage.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var cmd = connection.CreateCommand();
        cmd.CommandText = "SELECT id, stanza FROM offline_messages WHERE host = @h AND username = @u ORDER BY id";
        cmd.Add("@h", host);
        cmd.Add("@u", username);
        var list = new List<OfflineMessage>();
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            list.Add(new OfflineMessage(reader.GetInt64(0), reader.GetString(1)));
        }

        return list;
    }

    public Task DeleteAsync(string host, string username, IReadOnlyCollection<long> ids, CancellationToken cancellationToken)
    {
        if (ids.Count == 0)
        {
            return Task.CompletedTask;
        }

        return storage.WriteAsync(
            async (connection, tx, ct) =>
            {
                foreach (var chunk in ids.Chunk(500))
                {
                    await using var cmd = connection.CreateCommand();
                    cmd.Transaction = tx;
                    var sql = new StringBuilder("DELETE FROM offline_messages WHERE host = @h AND username = @u AND id IN (");
                    for (var i = 0; i < chunk.Length; i++)
                    {
                        sql.Append(i == 0 ? "@i" : ",@i").Append(i.ToString(CultureInfo.InvariantCulture));
                        cmd.Add("@i" + i.ToString(CultureInfo.InvariantCulture), chunk[i]);
                    }

                    cmd.CommandText = sql.Append(')').ToString();
                    cmd.Add("@h", host);
                    cmd.Add("@u", username);
                    await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
                }
            },
            cancellationToken);
    }
}
