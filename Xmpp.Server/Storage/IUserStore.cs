using Xmpp.Core.Sasl;

namespace Xmpp.Server.Storage;

/// <summary>Accounts and their SCRAM credentials. Usernames are prepared localparts, hosts prepared domains.</summary>
public interface IUserStore
{
    /// <summary>Creates the account; false when it exists already.</summary>
    Task<bool> CreateAsync(string host, string username, IReadOnlyList<ScramCredential> credentials, CancellationToken cancellationToken);

    /// <summary>Replaces all credentials of an account; false when there is no such account.</summary>
    Task<bool> SetCredentialsAsync(string host, string username, IReadOnlyList<ScramCredential> credentials, CancellationToken cancellationToken);

    Task<bool> DeleteAsync(string host, string username, CancellationToken cancellationToken);

    Task<bool> ExistsAsync(string host, string username, CancellationToken cancellationToken);

    Task<ScramCredential?> GetCredentialAsync(string host, string username, ScramHash hash, CancellationToken cancellationToken);

    /// <summary>Whether any account exists, on any host (without reading them all).</summary>
    Task<bool> AnyAsync(CancellationToken cancellationToken);

    /// <summary>All accounts as (host, username), ordered; of one host when given.</summary>
    Task<IReadOnlyList<(string Host, string Username)>> ListAsync(string? host, CancellationToken cancellationToken);

    /// <summary>
    /// One page of a host's usernames in order: those starting with <paramref name="prefix"/> (empty: all) and
    /// after <paramref name="after"/> (keyset paging; null: from the start), at most <paramref name="limit"/>.
    /// Reads only the page from the primary key's index, however many accounts there are.
    /// </summary>
    Task<IReadOnlyList<string>> PageAsync(string host, string prefix, string? after, int limit, CancellationToken cancellationToken);

    /// <summary>How many accounts there are, of one host when given.</summary>
    Task<long> CountAsync(string? host, CancellationToken cancellationToken);
}
