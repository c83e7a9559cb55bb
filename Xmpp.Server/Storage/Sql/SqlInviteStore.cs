using System.Data.Common;
using System.Globalization;

namespace Xmpp.Server.Storage.Sql;

internal sealed class SqlInviteStore(SqlStorage storage) : IInviteStore
{
    private const string Columns = "token, kind, host, inviter, username, allow_registration, subscribe, uses_left, expires_at, created_at";

    public Task CreateAsync(Invite invite, CancellationToken cancellationToken)
    {
        return storage.WriteAsync(
            async (connection, tx, ct) =>
            {
                await using var cmd = connection.CreateCommand();
                cmd.Transaction = tx;
                cmd.CommandText = $"INSERT INTO invites ({Columns}) VALUES (@t, @k, @h, @i, @u, @r, @s, @n, @e, @c)";
                cmd.Add("@t", invite.Token);
                cmd.Add("@k", invite.Kind == InviteKind.Register ? "register" : "roster");
                cmd.Add("@h", invite.Host);
                cmd.Add("@i", invite.Inviter);
                cmd.Add("@u", invite.Username);
                cmd.Add("@r", invite.AllowRegistration ? 1 : 0);
                cmd.Add("@s", invite.Subscribe ? 1 : 0);
                cmd.Add("@n", invite.UsesLeft);
                cmd.Add("@e", Time(invite.Expires));
                cmd.Add("@c", Time(invite.Created));
                await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            },
            cancellationToken);
    }

    public async Task<Invite?> GetAsync(string token, CancellationToken cancellationToken)
    {
        await using var connection = await storage.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var cmd = connection.CreateCommand();
        cmd.CommandText = $"SELECT {Columns} FROM invites WHERE token = @t";
        cmd.Add("@t", token);
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        return await reader.ReadAsync(cancellationToken).ConfigureAwait(false) ? Read(reader) : null;
    }

    public Task<bool> TryUseAsync(string token, CancellationToken cancellationToken) =>
        UpdateAsync("UPDATE invites SET uses_left = uses_left - 1 WHERE token = @t AND uses_left > 0", token, cancellationToken);

    public Task ReturnUseAsync(string token, CancellationToken cancellationToken) =>
        UpdateAsync("UPDATE invites SET uses_left = uses_left + 1 WHERE token = @t", token, cancellationToken);

    public Task<bool> DeleteAsync(string token, CancellationToken cancellationToken) =>
        UpdateAsync("DELETE FROM invites WHERE token = @t", token, cancellationToken);

    public async Task<IReadOnlyList<Invite>> ListAsync(string? host, CancellationToken cancellationToken)
    {
        await using var connection = await storage.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var cmd = connection.CreateCommand();
        cmd.CommandText = $"SELECT {Columns} FROM invites WHERE @h IS NULL OR host = @h ORDER BY created_at DESC, token";
        cmd.Add("@h", host);
        var list = new List<Invite>();
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            list.Add(Read(reader));
        }

        return list;
    }

    public Task<int> DeleteExpiredAsync(DateTimeOffset cutoff, CancellationToken cancellationToken)
    {
        return storage.WriteAsync<int>(
            async (connection, tx, ct) =>
            {
                await using var cmd = connection.CreateCommand();
                cmd.Transaction = tx;

                // The times are ISO 8601 in UTC with seven fractional digits: as text, they sort as times.
                cmd.CommandText = "DELETE FROM invites WHERE expires_at < @c";
                cmd.Add("@c", Time(cutoff));
                return await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            },
            cancellationToken);
    }

    private Task<bool> UpdateAsync(string sql, string token, CancellationToken cancellationToken)
    {
        return storage.WriteAsync<bool>(
            async (connection, tx, ct) =>
            {
                await using var cmd = connection.CreateCommand();
                cmd.Transaction = tx;
                cmd.CommandText = sql;
                cmd.Add("@t", token);
                return await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false) > 0;
            },
            cancellationToken);
    }

    private static string Time(DateTimeOffset t) => t.UtcDateTime.ToString("o", CultureInfo.InvariantCulture);

    private static DateTimeOffset ParseTime(string s) =>
        DateTimeOffset.Parse(s, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal);

    private static Invite Read(DbDataReader r) => new(
        r.GetString(0),
        r.GetString(1) == "register" ? InviteKind.Register : InviteKind.Roster,
        r.GetString(2),
        r.IsDBNull(3) ? null : r.GetString(3),
        r.IsDBNull(4) ? null : r.GetString(4),
        Convert.ToInt64(r.GetValue(5), CultureInfo.InvariantCulture) != 0,
        Convert.ToInt64(r.GetValue(6), CultureInfo.InvariantCulture) != 0,
        Convert.ToInt32(r.GetValue(7), CultureInfo.InvariantCulture),
        ParseTime(r.GetString(8)),
        ParseTime(r.GetString(9)));
}
