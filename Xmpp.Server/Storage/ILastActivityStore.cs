namespace Xmpp.Server.Storage;

/// <summary>When an account last went offline and the status it left with (RFC 6121 §4.3.2, XEP-0012).</summary>
public sealed record LastActivity(DateTimeOffset When, string? Status);

public interface ILastActivityStore
{
    Task SetAsync(string host, string username, LastActivity activity, CancellationToken cancellationToken);

    Task<LastActivity?> GetAsync(string host, string username, CancellationToken cancellationToken);
}
