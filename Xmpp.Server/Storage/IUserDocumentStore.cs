namespace Xmpp.Server.Storage;

/// <summary>
/// Small XML documents an account keeps on the server, each named by a kind and a key: private XML
/// storage (XEP-0049, kind "private", key the child's namespace), vcard-temp (XEP-0054, kind "vcard",
/// empty key). Stored as the serialised element.
/// </summary>
public interface IUserDocumentStore
{
    Task<string?> GetAsync(string host, string username, string kind, string key, CancellationToken cancellationToken);

    /// <summary>Stores or replaces a document; a null <paramref name="xml"/> deletes it. False when the account does not exist.</summary>
    Task<bool> SetAsync(string host, string username, string kind, string key, string? xml, CancellationToken cancellationToken);

    /// <summary>A document of a virtual host rather than an account (the message of the day).</summary>
    Task<string?> GetHostAsync(string host, string kind, string key, CancellationToken cancellationToken);

    /// <summary>Stores, replaces or (with a null <paramref name="xml"/>) deletes a document of a virtual host.</summary>
    Task SetHostAsync(string host, string kind, string key, string? xml, CancellationToken cancellationToken);

    /// <summary>
    /// Stores a document of a virtual host unless one is there already, and returns the one stored: the first writer
    /// wins, also when several server nodes sharing one database do this at once (the server-wide dialback secret).
    /// </summary>
    Task<string> AddOrGetHostAsync(string host, string kind, string key, string xml, CancellationToken cancellationToken);

    /// <summary>Every document of a kind for a virtual host or service, by key (the rooms of a multi-user chat service).</summary>
    Task<IReadOnlyDictionary<string, string>> ListHostAsync(string host, string kind, CancellationToken cancellationToken);

    /// <summary>Every document of a kind for an account, by key (for export).</summary>
    Task<IReadOnlyDictionary<string, string>> ListAsync(string host, string username, string kind, CancellationToken cancellationToken);
}
