using Npgsql;

namespace Xmpp.Server.Cluster;

/// <summary>
/// The tables and queries of Orleans' ADO.NET membership provider (Microsoft.Orleans.Clustering.AdoNet 10.4),
/// which the package does not ship: the provider reads its queries by key from <c>orleansquery</c> and binds
/// parameters by name (@DeploymentId, @Address, ...), so these are the contract, written here for PostgreSQL.
/// Version 2 adds the crash ledger: the sessions bound on each silo, which the survivors of a node read when it dies.
/// Version 3 adds the sessions parked for resumption on another node while they move (a drain), read when a
/// client resumes one that did not arrive with its account's home.
/// Version 4 adds the checkpoints of live entities (a room with its occupants and history), written by their home
/// node soon after each change and read by the node that takes the entity over when that one dies; and the
/// directed presence each session sent (RFC 6121 §4.6), whose targets hear it went when its node dies.
/// Version 5 adds the nodes draining, which other drains do not send their sessions to.
/// Version 6 marks the ledger's rows of sessions whose connections are on the node but that are bound on their
/// account's home, another node (an edge session): when the node dies, rooms remove them with 333 and their home,
/// not the clean-up, tells their contacts.
/// Versioned apart from the storage migrations (which SQLite shares), under an advisory lock of its own, so
/// nodes starting together create them once.
/// </summary>
/// <remarks>
/// The membership protocol needs each write to be conditional on the table version it read: a row changes
/// only together with the version row, in one statement, and the statement answers whether it did.
/// </remarks>
public static class ClusterSchema
{
    /// <summary>The key of the advisory lock held while creating them ("xmppcls").</summary>
    private const long SchemaLock = 0x786d7070636c73;

    private static readonly string[] Migrations =
    [
        """
        CREATE TABLE orleansquery (
            querykey VARCHAR(64) NOT NULL PRIMARY KEY,
            querytext VARCHAR(8000) NOT NULL
        );
        CREATE TABLE orleansmembershipversiontable (
            deploymentid VARCHAR(150) NOT NULL PRIMARY KEY,
            timestamp TIMESTAMPTZ(3) NOT NULL DEFAULT now(),
            version INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE orleansmembershiptable (
            deploymentid VARCHAR(150) NOT NULL REFERENCES orleansmembershipversiontable (deploymentid),
            address VARCHAR(45) NOT NULL,
            port INTEGER NOT NULL,
            generation INTEGER NOT NULL,
            siloname VARCHAR(150) NOT NULL,
            hostname VARCHAR(150) NOT NULL,
            status INTEGER NOT NULL,
            proxyport INTEGER NULL,
            suspecttimes VARCHAR(8000) NULL,
            starttime TIMESTAMPTZ(3) NOT NULL,
            iamalivetime TIMESTAMPTZ(3) NOT NULL,
            PRIMARY KEY (deploymentid, address, port, generation)
        );
        INSERT INTO orleansquery (querykey, querytext) VALUES
        ('InsertMembershipVersionKey', $q$
            WITH inserted AS (
                INSERT INTO orleansmembershipversiontable (deploymentid) VALUES (@DeploymentId)
                ON CONFLICT (deploymentid) DO NOTHING RETURNING 1)
            SELECT count(*) > 0 FROM inserted
        $q$),
        ('InsertMembershipKey', $q$
            WITH bumped AS (
                UPDATE orleansmembershipversiontable SET version = version + 1, timestamp = now()
                WHERE deploymentid = @DeploymentId AND version = @Version
                  AND NOT EXISTS (SELECT 1 FROM orleansmembershiptable
                                  WHERE deploymentid = @DeploymentId AND address = @Address AND port = @Port AND generation = @Generation)
                RETURNING 1),
            inserted AS (
                INSERT INTO orleansmembershiptable (deploymentid, address, port, generation, siloname, hostname, status, proxyport, starttime, iamalivetime)
                SELECT @DeploymentId, @Address, @Port, @Generation, @SiloName, @HostName, @Status, @ProxyPort, @StartTime, @IAmAliveTime
                FROM bumped
                RETURNING 1)
            SELECT count(*) > 0 FROM inserted
        $q$),
        ('UpdateMembershipKey', $q$
            WITH bumped AS (
                UPDATE orleansmembershipversiontable SET version = version + 1, timestamp = now()
                WHERE deploymentid = @DeploymentId AND version = @Version
                  AND EXISTS (SELECT 1 FROM orleansmembershiptable
                              WHERE deploymentid = @DeploymentId AND address = @Address AND port = @Port AND generation = @Generation)
                RETURNING 1),
            updated AS (
                UPDATE orleansmembershiptable
                SET status = @Status, suspecttimes = @SuspectTimes, iamalivetime = GREATEST(iamalivetime, @IAmAliveTime)
                WHERE deploymentid = @DeploymentId AND address = @Address AND port = @Port AND generation = @Generation
                  AND EXISTS (SELECT 1 FROM bumped)
                RETURNING 1)
            SELECT count(*) > 0 FROM updated
        $q$),
        ('UpdateIAmAlivetimeKey', $q$
            UPDATE orleansmembershiptable SET iamalivetime = GREATEST(iamalivetime, @IAmAliveTime)
            WHERE deploymentid = @DeploymentId AND address = @Address AND port = @Port AND generation = @Generation
        $q$),
        ('MembershipReadRowKey', $q$
            SELECT v.deploymentid, m.address, m.port, m.generation, m.siloname, m.hostname, m.status, m.proxyport,
                   m.suspecttimes, m.starttime, m.iamalivetime, v.version
            FROM orleansmembershipversiontable v
            LEFT JOIN orleansmembershiptable m ON m.deploymentid = v.deploymentid
                 AND m.address = @Address AND m.port = @Port AND m.generation = @Generation
            WHERE v.deploymentid = @DeploymentId
        $q$),
        ('MembershipReadAllKey', $q$
            SELECT v.deploymentid, m.address, m.port, m.generation, m.siloname, m.hostname, m.status, m.proxyport,
                   m.suspecttimes, m.starttime, m.iamalivetime, v.version
            FROM orleansmembershipversiontable v
            LEFT JOIN orleansmembershiptable m ON m.deploymentid = v.deploymentid
            WHERE v.deploymentid = @DeploymentId
        $q$),
        ('DeleteMembershipTableEntriesKey', $q$
            DELETE FROM orleansmembershiptable WHERE deploymentid = @DeploymentId;
            DELETE FROM orleansmembershipversiontable WHERE deploymentid = @DeploymentId
        $q$),
        ('GatewaysQueryKey', $q$
            SELECT address, proxyport, generation FROM orleansmembershiptable
            WHERE deploymentid = @DeploymentId AND status = @Status AND proxyport > 0
        $q$),
        ('CleanupDefunctSiloEntriesKey', $q$
            DELETE FROM orleansmembershiptable
            WHERE deploymentid = @DeploymentId AND iamalivetime < @IAmAliveTime AND starttime < @IAmAliveTime
              AND COALESCE(suspecttimes, '') = '' AND status = 6
        $q$),
        ('CleanupDefunctSiloEntryKey', $q$
            DELETE FROM orleansmembershiptable
            WHERE deploymentid = @DeploymentId AND status = 6 AND address = @Address AND port = @Port
              AND generation = @Generation AND iamalivetime = @IAmAliveTime AND starttime = @StartTime
              AND COALESCE(suspecttimes, '') = COALESCE(@SuspectTimes, '')
        $q$);
        """,
        """
        CREATE TABLE cluster_sessions (
            silo TEXT NOT NULL,
            jid TEXT NOT NULL,
            cleaned_at TIMESTAMPTZ NULL,
            PRIMARY KEY (silo, jid)
        );
        """,
        """
        CREATE TABLE cluster_parked (
            resume_id TEXT PRIMARY KEY,
            jid TEXT NOT NULL,
            snapshot TEXT NOT NULL,
            parked_at TIMESTAMPTZ NOT NULL DEFAULT now()
        );
        """,
        """
        CREATE TABLE cluster_checkpoints (
            jid TEXT PRIMARY KEY,
            silo TEXT NOT NULL,
            snapshot TEXT NOT NULL,
            saved_at TIMESTAMPTZ NOT NULL DEFAULT now()
        );
        CREATE INDEX cluster_checkpoints_silo ON cluster_checkpoints (silo);
        CREATE TABLE cluster_directed (
            silo TEXT NOT NULL,
            jid TEXT NOT NULL,
            target TEXT NOT NULL,
            PRIMARY KEY (silo, jid, target)
        );
        """,
        """
        CREATE TABLE cluster_draining (
            silo TEXT PRIMARY KEY,
            since TIMESTAMPTZ NOT NULL DEFAULT now()
        );
        """,
        """
        ALTER TABLE cluster_sessions ADD COLUMN edge BOOLEAN NOT NULL DEFAULT false;
        """,
        """
        ALTER TABLE cluster_sessions ADD COLUMN via TEXT NULL;
        """,
    ];

    /// <summary>Creates or updates the tables; returns the schema version.</summary>
    public static async Task<int> EnsureAsync(string connectionString, CancellationToken cancellationToken)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var tx = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        await ExecAsync(connection, tx, $"SELECT pg_advisory_xact_lock({SchemaLock})", cancellationToken).ConfigureAwait(false);
        await ExecAsync(connection, tx, "CREATE TABLE IF NOT EXISTS cluster_schema_version (version INTEGER NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())", cancellationToken).ConfigureAwait(false);
        int current;
        await using (var cmd = new NpgsqlCommand("SELECT COALESCE(MAX(version), 0) FROM cluster_schema_version", connection, tx))
        {
            current = Convert.ToInt32(await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), System.Globalization.CultureInfo.InvariantCulture);
        }

        if (current > Migrations.Length)
        {
            throw new InvalidOperationException($"the cluster tables have version {current}, newer than this server knows ({Migrations.Length})");
        }

        for (var v = current; v < Migrations.Length; v++)
        {
            await ExecAsync(connection, tx, Migrations[v], cancellationToken).ConfigureAwait(false);
            await ExecAsync(connection, tx, $"INSERT INTO cluster_schema_version (version) VALUES ({v + 1})", cancellationToken).ConfigureAwait(false);
        }

        await tx.CommitAsync(cancellationToken).ConfigureAwait(false);
        return Migrations.Length;
    }

    /// <summary>The members recorded in the membership table for a cluster, newest first (for <c>xmppserver check</c>).</summary>
    public static async Task<IReadOnlyList<string>> DescribeMembersAsync(string connectionString, string clusterId, CancellationToken cancellationToken)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var cmd = new NpgsqlCommand(
            "SELECT siloname, address, port, generation, status, starttime, iamalivetime FROM orleansmembershiptable WHERE deploymentid = $1 ORDER BY status = 6, siloname, generation DESC LIMIT 50",
            connection)
        {
            Parameters = { new() { Value = clusterId } },
        };
        var members = new List<string>();
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            members.Add(string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"{reader.GetString(0)} at {reader.GetString(1)}:{reader.GetInt32(2)} (epoch {reader.GetInt32(3)}) {StatusName(reader.GetInt32(4))}, started {reader.GetDateTime(5):yyyy-MM-dd HH:mm:ss}Z, last alive {reader.GetDateTime(6):yyyy-MM-dd HH:mm:ss}Z"));
        }

        return members;
    }

    /// <summary>Orleans' SiloStatus values as the membership table stores them.</summary>
    private static string StatusName(int status) => status switch
    {
        1 => "created",
        2 => "joining",
        3 => "active",
        4 => "shutting down",
        5 => "stopping",
        6 => "dead",
        _ => "status " + status.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    private static async Task ExecAsync(NpgsqlConnection connection, NpgsqlTransaction tx, string sql, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(sql, connection, tx);
        await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }
}
