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
}
