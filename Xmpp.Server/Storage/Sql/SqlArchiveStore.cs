using System.Data.Common;
using System.Globalization;
using System.Text;

namespace Xmpp.Server.Storage.Sql;

/// <summary>
/// The archive table: row ids grow with arrival, so every page is a range scan of an index on
/// (owner, id) or (owner, correspondent, id), and time bounds become id bounds through the index on
/// (owner, time). No query reads more rows than the page it returns, whatever the archive's size.
/// </summary>
/// <param name="table">"archive" for accounts, "muc_archive" for multi-user chat rooms (same columns: host and username name the owner).</param>
/// <param name="ownerCheck">A query selecting a row when the owner (@h, @u) exists: appends for an owner that does not are dropped.</param>
/// <param name="originKey">The column that names the sender of a message sent again, with its origin id (the table's partial unique index on origin_id has it).</param>
internal sealed class SqlArchiveStore(SqlStorage storage, string table, string ownerCheck, string originKey) : IArchiveStore
{
    /// <summary>Accounts' archives: a message sent again is recognised by its correspondent's bare JID (the client may have a new resource after a lost session).</summary>
    public static SqlArchiveStore Accounts(SqlStorage storage) =>
        new(storage, "archive", "SELECT 1 FROM users WHERE host = @h AND username = @u", "with_bare");

    /// <summary>
    /// Rooms' archives (XEP-0313 on a room JID): a room is stored as a host document of its service. A message sent
    /// again is recognised by its occupant's room JID (every occupant's bare "with" is the room).
    /// </summary>
    public static SqlArchiveStore Rooms(SqlStorage storage) =>
        new(storage, "muc_archive", "SELECT 1 FROM host_documents WHERE host = @h AND kind = 'muc-room' AND key = @u", "with_full");

    public Task<string?> AppendAsync(string host, string username, ArchivedMessage message, CancellationToken cancellationToken) =>
        storage.WriteAsync(
            async (connection, tx, ct) =>
            {
                var slash = message.With.IndexOf('/', StringComparison.Ordinal);
                var withBare = slash < 0 ? message.With : message.With[..slash];
                await using var cmd = connection.CreateCommand();
                cmd.Transaction = tx;
                // No conflict target: a row with the same stanza id, or (through the partial unique index on
                // origin_id) the same message sent again, is kept once.
                cmd.CommandText = $"""
                    INSERT INTO {table} (host, username, stanza_id, with_bare, with_full, outgoing, at, xml, origin_id)
                    SELECT @h, @u, @i, @wb, @wf, @o, @t, @x, @g WHERE EXISTS ({ownerCheck})
                    ON CONFLICT DO NOTHING
                    """;
                cmd.Add("@h", host);
                cmd.Add("@u", username);
                cmd.Add("@i", message.Id);
                cmd.Add("@wb", withBare);
                cmd.Add("@wf", message.With);
                cmd.Add("@o", message.Outgoing ? 1 : 0);
                cmd.Add("@t", message.At.ToUnixTimeMilliseconds());
                cmd.Add("@x", message.Xml);
                cmd.Add("@g", message.OriginId);
                if (await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false) == 1)
                {
                    return message.Id;
                }

                // Not added: the owner does not exist, or the message is archived already (which id has it?).
                await using var earlier = connection.CreateCommand();
                earlier.Transaction = tx;
                earlier.CommandText = message.OriginId is null
                    ? $"SELECT stanza_id FROM {table} WHERE host = @h AND username = @u AND stanza_id = @i"
                    : $"SELECT stanza_id FROM {table} WHERE host = @h AND username = @u AND (stanza_id = @i OR ({originKey} = @w AND outgoing = @o AND origin_id = @g)) LIMIT 1";
                earlier.Add("@h", host);
                earlier.Add("@u", username);
                earlier.Add("@i", message.Id);
                if (message.OriginId is not null)
                {
                    earlier.Add("@w", originKey == "with_bare" ? withBare : message.With);
                    earlier.Add("@o", message.Outgoing ? 1 : 0);
                    earlier.Add("@g", message.OriginId);
                }

                return await earlier.ExecuteScalarAsync(ct).ConfigureAwait(false) as string;
            },
            cancellationToken);

    public async Task<ArchivePage?> QueryAsync(string host, string username, ArchiveQuery query, CancellationToken cancellationToken)
    {
        await using var connection = await storage.OpenAsync(cancellationToken).ConfigureAwait(false);
        long? after = null, before = null;
        if (query.AfterId is not null && (after = await RowIdAsync(connection, host, username, query.AfterId, cancellationToken).ConfigureAwait(false)) is null)
        {
            return null;
        }

        if (query.BeforeId is not null && (before = await RowIdAsync(connection, host, username, query.BeforeId, cancellationToken).ConfigureAwait(false)) is null)
        {
            return null;
        }

        await using var cmd = connection.CreateCommand();
        cmd.Add("@h", host);
        cmd.Add("@u", username);
        var where = new StringBuilder("host = @h AND username = @u");
        if (query.With is not null)
        {
            var slash = query.With.IndexOf('/', StringComparison.Ordinal);
            where.Append(" AND with_bare = @wb");
            cmd.Add("@wb", slash < 0 ? query.With : query.With[..slash]);
            if (query.WithIsFull)
            {
                where.Append(" AND with_full = @wf");
                cmd.Add("@wf", query.With);
            }
        }

        if (query.Start is { } start)
        {
            // The first row at or after the start bounds the id range; rows arrive in time order.
            where.Append(CultureInfo.InvariantCulture, $" AND at >= @s AND id >= (SELECT id FROM {table} WHERE host = @h AND username = @u AND at >= @s ORDER BY at, id LIMIT 1)");
            cmd.Add("@s", start.ToUnixTimeMilliseconds());
        }

        if (query.End is { } end)
        {
            where.Append(CultureInfo.InvariantCulture, $" AND at <= @e AND id <= (SELECT id FROM {table} WHERE host = @h AND username = @u AND at <= @e ORDER BY at DESC, id DESC LIMIT 1)");
            cmd.Add("@e", end.ToUnixTimeMilliseconds());
        }

        if (after is not null)
        {
            where.Append(" AND id > @after");
            cmd.Add("@after", after.Value);
        }

        if (before is not null)
        {
            where.Append(" AND id < @before");
            cmd.Add("@before", before.Value);
        }

        if (query.Ids is not null)
        {
            var names = new List<string>();
            foreach (var id in query.Ids)
            {
                var name = "@id" + names.Count.ToString(CultureInfo.InvariantCulture);
                names.Add(name);
                cmd.Add(name, id);
            }

            where.Append(names.Count == 0 ? " AND 1 = 0" : $" AND stanza_id IN ({string.Join(", ", names)})");
        }

        var backward = before is not null || query.Last;
        cmd.CommandText = $"SELECT stanza_id, with_full, outgoing, at, xml FROM {table} WHERE {where} ORDER BY id {(backward ? "DESC" : "ASC")} LIMIT @max";
        cmd.Add("@max", query.Max + 1);
        var messages = new List<ArchivedMessage>();
        await using (var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                messages.Add(Read(reader));
            }
        }

        var complete = messages.Count <= query.Max;
        if (!complete)
        {
            messages.RemoveAt(messages.Count - 1);
        }

        if (backward)
        {
            messages.Reverse();
        }

        return new ArchivePage(messages, complete);
    }

    public async Task<(ArchivedMessage First, ArchivedMessage Last)?> BoundsAsync(string host, string username, CancellationToken cancellationToken)
    {
        await using var connection = await storage.OpenAsync(cancellationToken).ConfigureAwait(false);
        ArchivedMessage? first = null, last = null;
        foreach (var order in new[] { "ASC", "DESC" })
        {
            await using var cmd = connection.CreateCommand();
            cmd.CommandText = $"SELECT stanza_id, with_full, outgoing, at, xml FROM {table} WHERE host = @h AND username = @u ORDER BY id {order} LIMIT 1";
            cmd.Add("@h", host);
            cmd.Add("@u", username);
            await using var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            if (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                (order == "ASC" ? ref first : ref last) = Read(reader);
            }
        }

        return first is null || last is null ? null : (first, last);
    }

    public Task ClearAsync(string host, string username, CancellationToken cancellationToken) =>
        storage.WriteAsync(
            async (connection, tx, ct) =>
            {
                await using var cmd = connection.CreateCommand();
                cmd.Transaction = tx;
                cmd.CommandText = $"DELETE FROM {table} WHERE host = @h AND username = @u";
                cmd.Add("@h", host);
                cmd.Add("@u", username);
                await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            },
            cancellationToken);

    public Task<int> ExpireAsync(DateTimeOffset? before, int keepPerAccount, CancellationToken cancellationToken) =>
        storage.WriteAsync<int>(
            async (connection, tx, ct) =>
            {
                var removed = 0;
                if (before is { } cutoff)
                {
                    await using var cmd = connection.CreateCommand();
                    cmd.Transaction = tx;
                    cmd.CommandText = $"DELETE FROM {table} WHERE at < @t";
                    cmd.Add("@t", cutoff.ToUnixTimeMilliseconds());
                    removed += await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
                }

                if (keepPerAccount > 0)
                {
                    await using var cmd = connection.CreateCommand();
                    cmd.Transaction = tx;
                    cmd.CommandText = $"""
                        DELETE FROM {table} WHERE id IN (
                            SELECT a.id FROM (SELECT host, username FROM {table} GROUP BY host, username HAVING COUNT(*) > @k) o
                            JOIN {table} a ON a.host = o.host AND a.username = o.username
                            WHERE a.id < (SELECT id FROM {table} b WHERE b.host = o.host AND b.username = o.username ORDER BY id DESC LIMIT 1 OFFSET @k - 1))
                        """;
                    cmd.Add("@k", keepPerAccount);
                    removed += await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
                }

                return removed;
            },
            cancellationToken);

    private async Task<long?> RowIdAsync(DbConnection connection, string host, string username, string stanzaId, CancellationToken ct)
    {
        await using var cmd = connection.CreateCommand();
        cmd.CommandText = $"SELECT id FROM {table} WHERE host = @h AND username = @u AND stanza_id = @i";
        cmd.Add("@h", host);
        cmd.Add("@u", username);
        cmd.Add("@i", stanzaId);
        return await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false) is long id ? id : null;
    }

    private static ArchivedMessage Read(DbDataReader reader) =>
        new(reader.GetString(0), reader.GetString(1), reader.GetInt64(2) != 0, DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(3)), reader.GetString(4));
}
