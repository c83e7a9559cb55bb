using Microsoft.Data.Sqlite;

namespace Xmpp.Server.Storage.Sqlite;

/// <summary>
/// The embedded default: one SQLite file (WAL mode) under the data directory, schema created on first
/// start and upgraded by numbered migrations recorded in schema_version.
/// </summary>
public sealed class SqliteStorage : Sql.SqlStorage
{
    /// <summary>Migrations in order; index + 1 is the schema version each one produces. Never edit a shipped one.</summary>
    private static readonly string[] Migrations =
    [
        """
        CREATE TABLE users (
            host TEXT NOT NULL,
            username TEXT NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (host, username)
        );
        CREATE TABLE scram_credentials (
            host TEXT NOT NULL,
            username TEXT NOT NULL,
            hash TEXT NOT NULL,
            salt BLOB NOT NULL,
            iterations INTEGER NOT NULL,
            stored_key BLOB NOT NULL,
            server_key BLOB NOT NULL,
            PRIMARY KEY (host, username, hash),
            FOREIGN KEY (host, username) REFERENCES users (host, username) ON DELETE CASCADE
        );
        """,
        """
        CREATE TABLE roster_items (
            host TEXT NOT NULL,
            username TEXT NOT NULL,
            contact TEXT NOT NULL,
            name TEXT,
            subscription TEXT NOT NULL DEFAULT 'none',
            ask TEXT,
            groups TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (host, username, contact),
            FOREIGN KEY (host, username) REFERENCES users (host, username) ON DELETE CASCADE
        );
        """,
        """
        ALTER TABLE roster_items ADD COLUMN pending_in INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE roster_items ADD COLUMN pending_in_request TEXT;
        ALTER TABLE roster_items ADD COLUMN approved INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE roster_items ADD COLUMN in_roster INTEGER NOT NULL DEFAULT 1;
        CREATE TABLE roster_versions (
            host TEXT NOT NULL,
            username TEXT NOT NULL,
            version INTEGER NOT NULL,
            PRIMARY KEY (host, username),
            FOREIGN KEY (host, username) REFERENCES users (host, username) ON DELETE CASCADE
        );
        CREATE TABLE offline_messages (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            host TEXT NOT NULL,
            username TEXT NOT NULL,
            stanza TEXT NOT NULL,
            stored_at TEXT NOT NULL,
            FOREIGN KEY (host, username) REFERENCES users (host, username) ON DELETE CASCADE
        );
        CREATE INDEX offline_messages_owner ON offline_messages (host, username, id);
        CREATE TABLE last_activity (
            host TEXT NOT NULL,
            username TEXT NOT NULL,
            at TEXT NOT NULL,
            status TEXT,
            PRIMARY KEY (host, username),
            FOREIGN KEY (host, username) REFERENCES users (host, username) ON DELETE CASCADE
        );
        """,
        """
        CREATE TABLE user_documents (
            host TEXT NOT NULL,
            username TEXT NOT NULL,
            kind TEXT NOT NULL,
            key TEXT NOT NULL,
            xml TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (host, username, kind, key),
            FOREIGN KEY (host, username) REFERENCES users (host, username) ON DELETE CASCADE
        );
        """,
        """
        CREATE TABLE pubsub_nodes (
            host TEXT NOT NULL,
            username TEXT NOT NULL,
            node TEXT NOT NULL,
            config TEXT NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (host, username, node),
            FOREIGN KEY (host, username) REFERENCES users (host, username) ON DELETE CASCADE
        );
        CREATE TABLE pubsub_items (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            host TEXT NOT NULL,
            username TEXT NOT NULL,
            node TEXT NOT NULL,
            item_id TEXT NOT NULL,
            xml TEXT NOT NULL,
            publisher TEXT NOT NULL,
            published_at TEXT NOT NULL,
            UNIQUE (host, username, node, item_id),
            FOREIGN KEY (host, username, node) REFERENCES pubsub_nodes (host, username, node) ON DELETE CASCADE
        );
        CREATE INDEX pubsub_items_newest ON pubsub_items (host, username, node, id);
        """,
        """
        CREATE TABLE archive (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            host TEXT NOT NULL,
            username TEXT NOT NULL,
            stanza_id TEXT NOT NULL,
            with_bare TEXT NOT NULL,
            with_full TEXT NOT NULL,
            outgoing INTEGER NOT NULL,
            at INTEGER NOT NULL,
            xml TEXT NOT NULL,
            FOREIGN KEY (host, username) REFERENCES users (host, username) ON DELETE CASCADE
        );
        CREATE UNIQUE INDEX archive_stanza_id ON archive (host, username, stanza_id);
        CREATE INDEX archive_owner ON archive (host, username, id);
        CREATE INDEX archive_with ON archive (host, username, with_bare, id);
        CREATE INDEX archive_at ON archive (host, username, at);
        """,
        """
        CREATE TABLE host_documents (
            host TEXT NOT NULL,
            kind TEXT NOT NULL,
            key TEXT NOT NULL,
            xml TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (host, kind, key)
        );
        """,
        """
        CREATE TABLE muc_archive (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            host TEXT NOT NULL,
            username TEXT NOT NULL,
            stanza_id TEXT NOT NULL,
            with_bare TEXT NOT NULL,
            with_full TEXT NOT NULL,
            outgoing INTEGER NOT NULL,
            at INTEGER NOT NULL,
            xml TEXT NOT NULL
        );
        CREATE UNIQUE INDEX muc_archive_stanza_id ON muc_archive (host, username, stanza_id);
        CREATE INDEX muc_archive_owner ON muc_archive (host, username, id);
        CREATE INDEX muc_archive_with ON muc_archive (host, username, with_bare, id);
        CREATE INDEX muc_archive_at ON muc_archive (host, username, at);
        """,
        """
        CREATE TABLE pubsub_service_nodes (
            service TEXT NOT NULL,
            node TEXT NOT NULL,
            config TEXT NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (service, node)
        );
        CREATE TABLE pubsub_service_items (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            service TEXT NOT NULL,
            node TEXT NOT NULL,
            item_id TEXT NOT NULL,
            xml TEXT NOT NULL,
            publisher TEXT NOT NULL,
            published_at TEXT NOT NULL,
            UNIQUE (service, node, item_id),
            FOREIGN KEY (service, node) REFERENCES pubsub_service_nodes (service, node) ON DELETE CASCADE
        );
        CREATE INDEX pubsub_service_items_newest ON pubsub_service_items (service, node, id);
        CREATE TABLE pubsub_service_affiliations (
            service TEXT NOT NULL,
            node TEXT NOT NULL,
            jid TEXT NOT NULL,
            affiliation TEXT NOT NULL,
            PRIMARY KEY (service, node, jid),
            FOREIGN KEY (service, node) REFERENCES pubsub_service_nodes (service, node) ON DELETE CASCADE
        );
        CREATE TABLE pubsub_service_subscriptions (
            service TEXT NOT NULL,
            node TEXT NOT NULL,
            subid TEXT NOT NULL,
            jid TEXT NOT NULL,
            state TEXT NOT NULL,
            options TEXT NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (service, node, subid),
            FOREIGN KEY (service, node) REFERENCES pubsub_service_nodes (service, node) ON DELETE CASCADE
        );
        """,
        """
        CREATE TABLE invites (
            token TEXT NOT NULL PRIMARY KEY,
            kind TEXT NOT NULL,
            host TEXT NOT NULL,
            inviter TEXT,
            username TEXT,
            allow_registration INTEGER NOT NULL,
            subscribe INTEGER NOT NULL,
            uses_left INTEGER NOT NULL,
            expires_at TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE INDEX invites_expiry ON invites (expires_at);
        """,
        """
        ALTER TABLE archive ADD COLUMN origin_id TEXT;
        CREATE UNIQUE INDEX archive_origin_id ON archive (host, username, with_bare, outgoing, origin_id) WHERE origin_id IS NOT NULL;
        ALTER TABLE muc_archive ADD COLUMN origin_id TEXT;
        CREATE UNIQUE INDEX muc_archive_origin_id ON muc_archive (host, username, with_full, origin_id) WHERE origin_id IS NOT NULL;
        """,
    ];

    private readonly string _connectionString;
    private readonly string _readConnectionString;
    private readonly SqliteWriter _writer;

    private readonly Hosting.ServerMetrics? _metrics;

    public SqliteStorage(string file, Hosting.ServerMetrics? metrics = null)
    {
        _metrics = metrics;
        File = file;
        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = file,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Cache = SqliteCacheMode.Default,
            Pooling = true,
            ForeignKeys = true,
            DefaultTimeout = 30,
        }.ToString();

        // Readers need no foreign-key enforcement, and with it every open, pooled or not, runs a PRAGMA.
        _readConnectionString = new SqliteConnectionStringBuilder(_connectionString) { ForeignKeys = null }.ToString();
        _writer = new SqliteWriter(OpenWriterAsync);
    }

    public string File { get; }

    public static int LatestVersion => Migrations.Length;

    public override string Describe() => $"sqlite {File}";

    /// <summary>A pooled connection for reads; every write goes through <see cref="WriteAsync"/>.</summary>
    internal override bool OrdersByCodePoint => true;

    internal override async Task<System.Data.Common.DbConnection> OpenAsync(CancellationToken cancellationToken)
    {
        // SQLite's API is synchronous (Microsoft.Data.Sqlite's async methods run to completion before they
        // return), and a read of a large archive can take milliseconds. With socket completions inline
        // (DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=1, README "Benchmark"), stanza handling starts on the
        // socket engine's threads, which serve every other connection's reads too: a read leaves them for the
        // thread pool before it touches the file. On a thread-pool thread (the default) this costs nothing.
        await Xmpp.Core.Threading.ThreadPoolHop.Instance;

        var connection = new SqliteConnection(_readConnectionString);
        await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
        return connection;
    }

    /// <summary>A connection with foreign keys enforced (cascading deletes), for the writer and migrations.</summary>
    private async Task<SqliteConnection> OpenWriterAsync(CancellationToken cancellationToken)
    {
        var connection = new SqliteConnection(_connectionString);
        await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
        return connection;
    }

    /// <summary>Runs a write on the single writer connection, inside a transaction committed with others (<see cref="SqliteWriter"/>).</summary>
    internal override Task<T> WriteAsync<T>(Func<System.Data.Common.DbConnection, System.Data.Common.DbTransaction, CancellationToken, Task<T>> work, CancellationToken cancellationToken) =>
        _metrics is null ? _writer.WriteAsync(work, cancellationToken) : TimedWriteAsync(work, cancellationToken);

    private async Task<T> TimedWriteAsync<T>(Func<System.Data.Common.DbConnection, System.Data.Common.DbTransaction, CancellationToken, Task<T>> work, CancellationToken cancellationToken)
    {
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        try
        {
            return await _writer.WriteAsync(work, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _metrics!.StorageWrite(System.Diagnostics.Stopwatch.GetTimestamp() - started);
        }
    }

    public override async Task<int> MigrateAsync(CancellationToken cancellationToken)
    {
        var dir = Path.GetDirectoryName(File);
        if (!string.IsNullOrEmpty(dir))
        {
            Hosting.PrivateFiles.EnsureDirectory(dir);
        }

        Hosting.PrivateFiles.Touch(File);

        await using var connection = await OpenWriterAsync(cancellationToken).ConfigureAwait(false);
        await ExecAsync(connection, null, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", cancellationToken).ConfigureAwait(false);
        await ExecAsync(connection, null, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied_at TEXT NOT NULL);", cancellationToken).ConfigureAwait(false);
        int current;
        await using (var cmd = connection.CreateCommand())
        {
            cmd.CommandText = "SELECT COALESCE(MAX(version), 0) FROM schema_version";
            current = Convert.ToInt32(await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), System.Globalization.CultureInfo.InvariantCulture);
        }

        if (current > Migrations.Length)
        {
            throw new InvalidOperationException($"database {File} has schema version {current}, newer than this server knows ({Migrations.Length}); refusing to run");
        }

        for (var v = current; v < Migrations.Length; v++)
        {
            await using var tx = (SqliteTransaction)await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
            await ExecAsync(connection, tx, Migrations[v], cancellationToken).ConfigureAwait(false);
            await using (var cmd = connection.CreateCommand())
            {
                cmd.Transaction = tx;
                cmd.CommandText = "INSERT INTO schema_version (version, applied_at) VALUES ($v, $t)";
                cmd.Parameters.AddWithValue("$v", v + 1);
                cmd.Parameters.AddWithValue("$t", DateTime.UtcNow.ToString("o", System.Globalization.CultureInfo.InvariantCulture));
                await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }

            await tx.CommitAsync(cancellationToken).ConfigureAwait(false);
        }

        return Migrations.Length;
    }

    private static async Task ExecAsync(SqliteConnection connection, SqliteTransaction? tx, string sql, CancellationToken cancellationToken)
    {
        await using var cmd = connection.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = sql;
        await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    public override async ValueTask DisposeAsync()
    {
        // Queued writes finish first; then pooled connections, which hold the file open, are released so the
        // WAL is checkpointed and the file closed.
        await _writer.DisposeAsync().ConfigureAwait(false);
        SqliteConnection.ClearAllPools();
    }
}
