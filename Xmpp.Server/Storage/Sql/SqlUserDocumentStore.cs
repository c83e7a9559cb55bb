using System.Data.Common;
using System.Globalization;

namespace Xmpp.Server.Storage.Sql;

internal sealed class SqlUserDocumentStore(SqlStorage storage) : IUserDocumentStore
{
    public async Task<string?> GetAsync(string host, string username, string kind, string key, CancellationToken cancellationToken)
    {
        await using var connection = await storage.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var cmd = connection.CreateCommand();
        cmd.CommandText = "SELECT xml FROM user_documents WHERE host = @h AND username = @u AND kind = @k AND key = @key";
        cmd.Add("@h", host);
        cmd.Add("@u", username);
        cmd.Add("@k", kind);
        cmd.Add("@key", key);
        return await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) as string;
    }

    public Task<bool> SetAsync(string host, string username, string kind, string key, string? xml, CancellationToken cancellationToken)
    {
        return storage.WriteAsync<bool>(
            async (connection, tx, ct) =>
            {
                await using var cmd = connection.CreateCommand();
                cmd.Transaction = tx;
                cmd.Add("@h", host);
                cmd.Add("@u", username);
                cmd.Add("@k", kind);
                cmd.Add("@key", key);
                if (xml is null)
                {
                    cmd.CommandText = "DELETE FROM user_documents WHERE host = @h AND username = @u AND kind = @k AND key = @key";
                    await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
                    cmd.CommandText = "SELECT COUNT(*) FROM users WHERE host = @h AND username = @u";
                    return Convert.ToInt64(await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false), CultureInfo.InvariantCulture) > 0;
                }

                // Inserted or updated: one row; no such account: none.
                cmd.CommandText = """
                    INSERT INTO user_documents (host, username, kind, key, xml, updated_at)
                    SELECT @h, @u, @k, @key, @x, @t WHERE EXISTS (SELECT 1 FROM users WHERE host = @h AND username = @u)
                    ON CONFLICT (host, username, kind, key) DO UPDATE SET xml = @x, updated_at = @t
                    """;
                cmd.Add("@x", xml);
                cmd.Add("@t", DateTime.UtcNow.ToString("o", CultureInfo.InvariantCulture));
                return await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false) > 0;
            },
            cancellationToken);
    }

    public Task<string> AddOrGetHostAsync(string host, string kind, string key, string xml, CancellationToken cancellationToken)
    {
        return storage.WriteAsync<string>(
            async (connection, tx, ct) =>
            {
                // A concurrent insert of the same key waits for the other transaction and then does nothing
                // (PostgreSQL); the SELECT, a statement of its own, then sees the row that was committed first.
                await using var cmd = connection.CreateCommand();
                cmd.Transaction = tx;
                cmd.CommandText = """
                    INSERT INTO host_documents (host, kind, key, xml, updated_at) VALUES (@h, @k, @key, @x, @t)
                    ON CONFLICT (host, kind, key) DO NOTHING
                    """;
                cmd.Add("@h", host);
                cmd.Add("@k", kind);
                cmd.Add("@key", key);
                cmd.Add("@x", xml);
                cmd.Add("@t", DateTime.UtcNow.ToString("o", CultureInfo.InvariantCulture));
                await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
                cmd.CommandText = "SELECT xml FROM host_documents WHERE host = @h AND kind = @k AND key = @key";
                return (string)(await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false))!;
            },
            cancellationToken);
    }

    public async Task<string?> GetHostAsync(string host, string kind, string key, CancellationToken cancellationToken)
    {
        await using var connection = await storage.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var cmd = connection.CreateCommand();
        cmd.CommandText = "SELECT xml FROM host_documents WHERE host = @h AND kind = @k AND key = @key";
        cmd.Add("@h", host);
        cmd.Add("@k", kind);
        cmd.Add("@key", key);
        return await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) as string;
    }

    public Task SetHostAsync(string host, string kind, string key, string? xml, CancellationToken cancellationToken)
    {
        return storage.WriteAsync(
            async (connection, tx, ct) =>
            {
                await using var cmd = connection.CreateCommand();
                cmd.Transaction = tx;
                cmd.CommandText = xml is null
                    ? "DELETE FROM host_documents WHERE host = @h AND kind = @k AND key = @key"
                    : """
                      INSERT INTO host_documents (host, kind, key, xml, updated_at) VALUES (@h, @k, @key, @x, @t)
                      ON CONFLICT (host, kind, key) DO UPDATE SET xml = @x, updated_at = @t
                      """;
                cmd.Add("@h", host);
                cmd.Add("@k", kind);
                cmd.Add("@key", key);
                cmd.Add("@x", (object?)xml ?? DBNull.Value);
                cmd.Add("@t", DateTime.UtcNow.ToString("o", CultureInfo.InvariantCulture));
                await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            },
            cancellationToken);
    }

    public async Task<IReadOnlyDictionary<string, string>> ListAsync(string host, string username, string kind, CancellationToken cancellationToken)
    {
        await using var connection = await storage.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var cmd = connection.CreateCommand();
        cmd.CommandText = "SELECT key, xml FROM user_documents WHERE host = @h AND username = @u AND kind = @k ORDER BY key";
        cmd.Add("@h", host);
        cmd.Add("@u", username);
        cmd.Add("@k", kind);
        return await KeyedAsync(cmd, cancellationToken).ConfigureAwait(false);
    }

    public async Task<IReadOnlyDictionary<string, string>> ListHostAsync(string host, string kind, CancellationToken cancellationToken)
    {
        await using var connection = await storage.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var cmd = connection.CreateCommand();
        cmd.CommandText = "SELECT key, xml FROM host_documents WHERE host = @h AND kind = @k ORDER BY key";
        cmd.Add("@h", host);
        cmd.Add("@k", kind);
        return await KeyedAsync(cmd, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The (key, xml) rows a query selects, by key.</summary>
    private static async Task<IReadOnlyDictionary<string, string>> KeyedAsync(System.Data.Common.DbCommand cmd, CancellationToken cancellationToken)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            result[reader.GetString(0)] = reader.GetString(1);
        }

        return result;
    }
}
