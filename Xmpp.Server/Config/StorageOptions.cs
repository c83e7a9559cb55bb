namespace Xmpp.Server.Config;

public sealed record StorageOptions
{
    /// <summary>"sqlite" (embedded, the default) or "postgresql".</summary>
    public string Provider { get; init; } = "sqlite";

    /// <summary>The SQLite database file (absolute); defaults to xmpp.db in the data directory.</summary>
    public string? File { get; init; }

    /// <summary>The PostgreSQL connection string (Npgsql's keywords: Host, Port, Database, Username, Password, ...).</summary>
    public string? ConnectionString { get; init; }
}
