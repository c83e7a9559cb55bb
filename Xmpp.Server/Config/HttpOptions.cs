namespace Xmpp.Server.Config;

/// <summary>The HTTPS listener's CORS settings: which web origins may call the WebSocket, BOSH, upload and host-meta endpoints.</summary>
public sealed record HttpOptions
{
    /// <summary>"*" (any origin, the default: web clients are served from anywhere) or exact origins.</summary>
    public IReadOnlyList<string> CorsOrigins { get; init; } = ["*"];

    /// <summary>The Access-Control-Allow-Origin answer for a request's Origin, or null when that origin is not allowed.</summary>
    public string? AllowOrigin(string? origin) =>
        CorsOrigins.Contains("*") ? "*" : origin is not null && CorsOrigins.Contains(origin) ? origin : null;

    public bool Equals(HttpOptions? other) => other is not null && CorsOrigins.SequenceEqual(other.CorsOrigins);

    public override int GetHashCode() => string.Join(' ', CorsOrigins).GetHashCode(StringComparison.Ordinal);
}
