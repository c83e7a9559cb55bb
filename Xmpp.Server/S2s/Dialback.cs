using System.Security.Cryptography;
using System.Text;

namespace Xmpp.Server.S2s;

/// <summary>
/// Server Dialback keys (XEP-0220 with XEP-0185's recommended generation):
/// key = HMAC-SHA256(hex(SHA256(secret)), receiving + " " + originating + " " + stream id), as lowercase hex.
/// The secret is drawn once and kept in the database (<see cref="LoadSharedAsync"/>), so that keys this server
/// issued still verify after a restart, and every node of servers sharing one database (a cluster) checks the
/// keys of the others: a remote server's db:verify may reach any of them.
/// </summary>
[Specification("XEP-0220", "1.1.1", Note = "Server Dialback in both roles, with db:verify answered as the authoritative server.")]
[Specification("XEP-0185", "1.0", Note = "Dialback keys by the recommended HMAC-SHA256 construction.")]
[Specification("XEP-0344", "1.1", Note = "Dialback accepted at once from peers with a valid certificate.")]
public sealed class Dialback
{
    private readonly byte[] _hmacKey;

    public Dialback(byte[] secret)
    {
        _hmacKey = Encoding.ASCII.GetBytes(Convert.ToHexStringLower(SHA256.HashData(secret)));
    }

    /// <summary>Where the secret is stored: a host document of no host (the server itself).</summary>
    internal const string SecretKind = "dialback-secret";

    public static Dialback CreateRandom() => new(RandomNumberGenerator.GetBytes(32));

    /// <summary>
    /// The server-wide secret from storage, drawn and stored by whichever server (or node) asks first. A stored value
    /// that is not a 32-byte hex secret (edited by hand) is an error, not silently replaced.
    /// </summary>
    public static async Task<Dialback> LoadSharedAsync(Storage.IUserDocumentStore documents, CancellationToken cancellationToken)
    {
        var drawn = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));
        var stored = await documents.AddOrGetHostAsync(string.Empty, SecretKind, string.Empty, drawn, cancellationToken).ConfigureAwait(false);
        byte[] secret;
        try
        {
            secret = Convert.FromHexString(stored.Trim());
        }
        catch (FormatException)
        {
            throw new Config.ConfigException("the stored dialback secret is not hexadecimal (host_documents, kind 'dialback-secret'): delete that row to draw a new one");
        }

        return secret.Length >= 16
            ? new Dialback(secret)
            : throw new Config.ConfigException("the stored dialback secret is shorter than 16 bytes (host_documents, kind 'dialback-secret'): delete that row to draw a new one");
    }

    public string Key(string receiving, string originating, string streamId) =>
        Convert.ToHexStringLower(HMACSHA256.HashData(_hmacKey, Encoding.UTF8.GetBytes(receiving + " " + originating + " " + streamId)));

    public bool Verify(string receiving, string originating, string streamId, string key)
    {
        var expected = Encoding.ASCII.GetBytes(Key(receiving, originating, streamId));
        var given = Encoding.ASCII.GetBytes(key.Trim());
        return CryptographicOperations.FixedTimeEquals(expected, given);
    }
}
