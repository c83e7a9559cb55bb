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

    public async Task<IReadOnlyList<string>> PageAsync(string host, string prefix, string? after, int limit, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(limit);
        await using var connection = await storage.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var cmd = connection.CreateCommand();
        var sql = new System.Text.StringBuilder("SELECT username FROM users WHERE host = @h");
        cmd.Add("@h", host);
        if (after is not null)
        {
            sql.Append(" AND username > @a");
            cmd.Add("@a", after);
        }

        if (prefix.Length > 0)
        {
            // A range on the key, so that the index finds the first match (a string sorts after its prefixes in
            // every collation), and the exact test: substr counts characters (code points) in SQLite and
            // PostgreSQL alike. The end of the range, where the scan stops, only where the order is by code
            // point: a PostgreSQL database with a linguistic collation may sort "a-z" after "a.".
            sql.Append(" AND username >= @p AND substr(username, 1, @n) = @p");
            cmd.Add("@p", prefix);
            cmd.Add("@n", prefix.EnumerateRunes().Count());
            if (storage.OrdersByCodePoint && UpperBound(prefix) is { } upper)
            {
                sql.Append(" AND username < @q");
                cmd.Add("@q", upper);
            }
        }

        sql.Append(" ORDER BY username LIMIT @l");
        cmd.Add("@l", limit);
        cmd.CommandText = sql.ToString();
        var list = new List<string>();
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            list.Add(reader.GetString(0));
        }

        return list;
    }

    public async Task<long> CountAsync(string? host, CancellationToken cancellationToken)
    {
        await using var connection = await storage.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var cmd = connection.CreateCommand();
        cmd.CommandText = host is null ? "SELECT COUNT(*) FROM users" : "SELECT COUNT(*) FROM users WHERE host = @h";
        if (host is not null)
        {
            cmd.Add("@h", host);
        }

        return Convert.ToInt64(await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// The smallest string above every string that starts with <paramref name="prefix"/>, in code point order
    /// (SQLite's BINARY collation, PostgreSQL's C collation): the prefix with its last character one higher.
    /// Null when there is none to give (the last character is the highest of its plane).
    /// </summary>
    private static string? UpperBound(string prefix)
    {
        var runes = prefix.EnumerateRunes().ToList();
        var last = runes[^1].Value + 1;
        if (last is >= 0xD800 and <= 0xDFFF)
        {
            last = 0xE000;
        }

        if (last > 0x10FFFF)
        {
            return null;
        }

        runes[^1] = new System.Text.Rune(last);
        return string.Concat(runes.Select(r => r.ToString()));
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
