using System.Data.Common;
using System.Globalization;

namespace Xmpp.Server.Storage.Sql;

internal sealed class SqlLastActivityStore(SqlStorage storage) : ILastActivityStore
{
    public Task SetAsync(string host, string username, LastActivity activity, CancellationToken cancellationToken)
    {
        return storage.WriteAsync(
            async (connection, tx, ct) =>
            {
                await using var cmd = connection.CreateCommand();
                cmd.Transaction = tx;
                cmd.CommandText = """
                    INSERT INTO last_activity (host, username, at, status)
                    SELECT @h, @u, @t, @s WHERE EXISTS (SELECT 1 FROM users WHERE host = @h AND username = @u)
                    ON CONFLICT (host, username) DO UPDATE SET at = @t, status = @s
                    """;
                cmd.Add("@h", host);
                cmd.Add("@u", username);
                cmd.Add("@t", activity.When.UtcDateTime.ToString("o", CultureInfo.InvariantCulture));
                cmd.Add("@s", (object?)activity.Status ?? DBNull.Value);
                await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            },
            cancellationToken);
    }

    public async Task<LastActivity?> GetAsync(string host, string username, CancellationToken cancellationToken)
    {
        await using var connection = await storage.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var cmd = connection.CreateCommand();
        cmd.CommandText = "SELECT at, status FROM last_activity WHERE host = @h AND username = @u";
        cmd.Add("@h", host);
        cmd.Add("@u", username);
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        if (!await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            return null;
        }

        var when = DateTimeOffset.Parse(reader.GetString(0), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal);
        return new LastActivity(when, reader.IsDBNull(1) ? null : reader.GetString(1));
    }
}
