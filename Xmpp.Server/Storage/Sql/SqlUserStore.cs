using System.Data.Common;
using Xmpp.Core.Sasl;

namespace Xmpp.Server.Storage.Sql;

internal sealed class SqlUserStore(SqlStorage storage) : IUserStore
{
    public Task<bool> CreateAsync(string host, string username, IReadOnlyList<ScramCredential> credentials, CancellationToken cancellationToken)
    {
        return storage.WriteAsync<bool>(
            async (connection, tx, ct) =>
            {
                await using (var cmd = connection.CreateCommand())
                {
                    cmd.Transaction = tx;
                    cmd.CommandText = "INSERT INTO users (host, username, created_at) VALUES (@h, @u, @t) ON CONFLICT (host, username) DO NOTHING";
                    cmd.Add("@h", host);
                    cmd.Add("@u", username);
                    cmd.Add("@t", DateTime.UtcNow.ToString("o", System.Globalization.CultureInfo.InvariantCulture));
                    if (await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false) == 0)
                    {
                        return false;
                    }
                }

                await WriteCredentialsAsync(connection, tx, host, username, credentials, ct).ConfigureAwait(false);
                return true;
            },
            cancellationToken);
    }

    public Task<bool> SetCredentialsAsync(string host, string username, IReadOnlyList<ScramCredential> credentials, CancellationToken cancellationToken)
    {
        return storage.WriteAsync<bool>(
            async (connection, tx, ct) =>
            {
                if (!await ExistsAsync(connection, tx, host, username, ct).ConfigureAwait(false))
                {
                    return false;
                }

                await using (var cmd = connection.CreateCommand())
                {
                    cmd.Transaction = tx;
                    cmd.CommandText = "DELETE FROM scram_credentials WHERE host = @h AND username = @u";
                    cmd.Add("@h", host);
                    cmd.Add("@u", username);
                    await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
                }

                await WriteCredentialsAsync(connection, tx, host, username, credentials, ct).ConfigureAwait(false);
                return true;
            },
            cancellationToken);
    }

    public Task<bool> DeleteAsync(string host, string username, CancellationToken cancellationToken)
    {
        return storage.WriteAsync<bool>(
            async (connection, tx, ct) =>
            {
                await using var cmd = connection.CreateCommand();
                cmd.Transaction = tx;
                cmd.CommandText = "DELETE FROM users WHERE host = @h AND username = @u";
                cmd.Add("@h", host);
                cmd.Add("@u", username);
                return await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false) > 0;
            },
            cancellationToken);
    }

    public async Task<bool> ExistsAsync(string host, string username, CancellationToken cancellationToken)
    {
        await using var connection = await storage.OpenAsync(cancellationToken).ConfigureAwait(false);
        return await ExistsAsync(connection, null, host, username, cancellationToken).ConfigureAwait(false);
    }

    public async Task<ScramCredential?> GetCredentialAsync(string host, string username, ScramHash hash, CancellationToken cancellationToken)
    {
        await using var connection = await storage.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var cmd = connection.CreateCommand();
        cmd.CommandText = "SELECT salt, iterations, stored_key, server_key FROM scram_credentials WHERE host = @h AND username = @u AND hash = @x";
        cmd.Add("@h", host);
        cmd.Add("@u", username);
        cmd.Add("@x", hash.StorageName());
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        if (!await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            return null;
        }

        return new ScramCredential(hash, (byte[])reader[0], reader.GetInt32(1), (byte[])reader[2], (byte[])reader[3]);
    }

    public async Task<bool> AnyAsync(CancellationToken cancellationToken)
    {
        await using var connection = await storage.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var cmd = connection.CreateCommand();
        cmd.CommandText = "SELECT 1 FROM users LIMIT 1";
        return await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is not null and not DBNull;
    }

    public async Task<IReadOnlyList<(string Host, string Username)>> ListAsync(string? host, CancellationToken cancellationToken)
    {
        await using var connection = await storage.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var cmd = connection.CreateCommand();
        cmd.CommandText = host is null
            ? "SELECT host, username FROM users ORDER BY host, username"
            : "SELECT host, username FROM users WHERE host = @h ORDER BY username";
        if (host is not null)
        {
            cmd.Add("@h", host);
        }

        var list = new List<(string, string)>();
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            list.Add((reader.GetString(0), reader.GetString(1)));
        }

        return list;
    }

    private static async Task<bool> ExistsAsync(DbConnection connection, DbTransaction? tx, string host, string username, CancellationToken cancellationToken)
    {
        await using var cmd = connection.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = "SELECT 1 FROM users WHERE host = @h AND username = @u";
        cmd.Add("@h", host);
        cmd.Add("@u", username);
        return await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is not null;
    }

    private static async Task WriteCredentialsAsync(DbConnection connection, DbTransaction tx, string host, string username, IReadOnlyList<ScramCredential> credentials, CancellationToken cancellationToken)
    {
        foreach (var c in credentials)
        {
            await using var cmd = connection.CreateCommand();
            cmd.Transaction = tx;
            cmd.CommandText = "INSERT INTO scram_credentials (host, username, hash, salt, iterations, stored_key, server_key) VALUES (@h, @u, @x, @s, @i, @k, @v)";
            cmd.Add("@h", host);
            cmd.Add("@u", username);
            cmd.Add("@x", c.Hash.StorageName());
            cmd.Add("@s", c.Salt);
            cmd.Add("@i", c.Iterations);
            cmd.Add("@k", c.StoredKey);
            cmd.Add("@v", c.ServerKey);
            await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
    }
}
