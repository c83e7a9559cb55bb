using System.Security.Cryptography;
using System.Text;

namespace Xmpp.Server.S2s;

/// <summary>
/// Server Dialback keys (XEP-0220 with XEP-0185's recommended generation):
/// key = HMAC-SHA256(hex(SHA256(secret)), receiving + " " + originating + " " + stream id), as lowercase hex.
/// The secret is random per server process; only this server ever checks its own keys.
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

    public static Dialback CreateRandom() => new(RandomNumberGenerator.GetBytes(32));

    public string Key(string receiving, string originating, string streamId) =>
        Convert.ToHexStringLower(HMACSHA256.HashData(_hmacKey, Encoding.UTF8.GetBytes(receiving + " " + originating + " " + streamId)));

    public bool Verify(string receiving, string originating, string streamId, string key)
    {
        var expected = Encoding.ASCII.GetBytes(Key(receiving, originating, streamId));
        var given = Encoding.ASCII.GetBytes(key.Trim());
        return CryptographicOperations.FixedTimeEquals(expected, given);
    }
}
