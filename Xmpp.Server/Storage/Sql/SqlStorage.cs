using System.Data.Common;

namespace Xmpp.Server.Storage.Sql;

/// <summary>
/// The stores written once in SQL that SQLite and PostgreSQL both speak (parameters as @name, upserts
/// with ON CONFLICT, no engine-specific functions), over ADO.NET. A back end supplies connections for
/// reads, a way to run writes in a transaction, and its own schema migrations.
/// </summary>
public abstract class SqlStorage : IStorage
{
    protected SqlStorage()
    {
        Users = new SqlUserStore(this);
        Roster = new SqlRosterStore(this);
        Offline = new SqlOfflineStore(this);
        LastActivity = new SqlLastActivityStore(this);
        Documents = new SqlUserDocumentStore(this);
        PubSub = new SqlPubSubStore(this);
        PubSubServices = new SqlPubSubServiceStore(this);
        Archive = SqlArchiveStore.Accounts(this);
        RoomArchive = SqlArchiveStore.Rooms(this);
        Invites = new SqlInviteStore(this);
    }

    public IUserStore Users { get; }

    public IRosterStore Roster { get; }

    public IOfflineStore Offline { get; }

    public ILastActivityStore LastActivity { get; }

    public IUserDocumentStore Documents { get; }

    public IPubSubStore PubSub { get; }

    public IPubSubServiceStore PubSubServices { get; }

    public IArchiveStore Archive { get; }

    public IArchiveStore RoomArchive { get; }

    public IInviteStore Invites { get; }

    /// <summary>Whether text columns compare by code point (SQLite's BINARY collation), so that a prefix's range can be bounded above.</summary>
    internal virtual bool OrdersByCodePoint => false;

    /// <summary>An open connection for reads (the caller disposes it).</summary>
    internal abstract Task<DbConnection> OpenAsync(CancellationToken cancellationToken);

    /// <summary>Runs a write inside a transaction; completes once it is committed (durable).</summary>
    internal abstract Task<T> WriteAsync<T>(Func<DbConnection, DbTransaction, CancellationToken, Task<T>> work, CancellationToken cancellationToken);

    /// <summary>A write with no result.</summary>
    internal Task WriteAsync(Func<DbConnection, DbTransaction, CancellationToken, Task> work, CancellationToken cancellationToken) =>
        WriteAsync<bool>(
            async (connection, tx, ct) =>
            {
                await work(connection, tx, ct).ConfigureAwait(false);
                return true;
            },
            cancellationToken);

    public abstract Task<int> MigrateAsync(CancellationToken cancellationToken);

    public abstract string Describe();

    public abstract ValueTask DisposeAsync();
}

internal static class DbCommandExtensions
{
    /// <summary>Adds a parameter (null as SQL NULL).</summary>
    public static void Add(this DbCommand command, string name, object? value)
    {
        var p = command.CreateParameter();
        p.ParameterName = name;
        p.Value = value ?? DBNull.Value;
        if (value is null or DBNull)
        {
            // Every nullable column is text; PostgreSQL cannot infer the type of a bare NULL in a SELECT list.
            p.DbType = System.Data.DbType.String;
        }

        command.Parameters.Add(p);
    }
}
