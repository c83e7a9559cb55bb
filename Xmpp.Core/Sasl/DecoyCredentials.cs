using System.Security.Cryptography;
using System.Text;

namespace Xmpp.Core.Sasl;

/// <summary>
/// Stand-ins for credentials that do not exist, so that SASL cannot tell a missing account from an
/// existing one (RFC 5802 §9 and RFC 7677 §4 ask servers not to reveal which usernames exist):
/// <list type="bullet">
/// <item>SCRAM: the same salt for the same username every time (derived from the server secret, so it does
/// not change across restarts either) and the configured iteration count, as a real account would show;
/// the proof is then checked against random keys, so the work done is the same.</item>
/// <item>PLAIN: the password is checked against a decoy with the configured iteration count, so a missing
/// account costs the same PBKDF2 time as a wrong password.</item>
/// </list>
/// </summary>
public sealed class DecoyCredentials(byte[] secret, int iterations)
{
    private readonly Lazy<ScramCredential> _plain = new(() =>
        ScramCredential.Create(ScramHash.Sha256, Convert.ToBase64String(RandomNumberGenerator.GetBytes(24)), iterations));

    public ScramCredential For(string username, ScramHash hash)
    {
        var salt = HMACSHA256.HashData(secret, Encoding.UTF8.GetBytes("scram-decoy-salt\0" + hash.MechanismName() + "\0" + username))[..16];
        return new ScramCredential(hash, salt, iterations, RandomNumberGenerator.GetBytes(hash.Size()), RandomNumberGenerator.GetBytes(hash.Size()));
    }

    /// <summary>A credential no password matches, for PLAIN.</summary>
    public ScramCredential Plain => _plain.Value;
}
