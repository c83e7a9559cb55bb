namespace Xmpp.Server.Config;

public sealed record LoggingOptions
{
    public string Level { get; init; } = "Info";

    /// <summary>"text" or "json".</summary>
    public string Format { get; init; } = "text";

    /// <summary>Optional log file (absolute); the console is always written.</summary>
    public string? File { get; init; }
}
