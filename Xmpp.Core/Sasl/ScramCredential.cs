using System.Security.Cryptography;

namespace Xmpp.Core.Sasl;

/// <summary>
/// What the server stores per user and hash instead of the password (RFC 5802 §3):
/// salt, iteration count, StoredKey = H(ClientKey) and ServerKey.
/// </summary>
public sealed record ScramCredential(ScramHash Hash, byte[] Salt, int Iterations, byte[] StoredKey, byte[] ServerKey)
{
    public const int MinimumIterations = 4096;

    public static ScramCredential Create(ScramHash hash, string preparedPassword, int iterations, byte[]? salt = null)
    {
        salt ??= RandomNumberGenerator.GetBytes(16);
        var salted = hash.SaltedPassword(preparedPassword, salt, iterations);
        var clientKey = hash.Hmac(salted, "Client Key"u8);
        var serverKey = hash.Hmac(salted, "Server Key"u8);
        return new ScramCredential(hash, salt, iterations, hash.Hash(clientKey), serverKey);
    }

    /// <summary>The credentials of every supported hash for a prepared password: what an account stores.</summary>
    public static List<ScramCredential> CreateAll(string preparedPassword, int iterations) =>
        ScramHashes.All.Select(h => Create(h, preparedPassword, iterations)).ToList();

    /// <summary>
    /// <see cref="CreateAll"/> on a thread-pool thread: PBKDF2 for every hash takes milliseconds, not for a
    /// socket engine's thread (<see cref="Threading.ThreadPoolHop"/>).
    /// </summary>
    public static async ValueTask<List<ScramCredential>> CreateAllAsync(string preparedPassword, int iterations)
    {
        await Threading.ThreadPoolHop.Instance;
        return CreateAll(preparedPassword, iterations);
    }

    /// <summary>Checks a plain password (SASL PLAIN) against the stored keys in constant time.</summary>
    public bool Verify(string preparedPassword)
    {
        var salted = Hash.SaltedPassword(preparedPassword, Salt, Iterations);
        var storedKey = Hash.Hash(Hash.Hmac(salted, "Client Key"u8));
        return CryptographicOperations.FixedTimeEquals(storedKey, StoredKey);
    }

    /// <summary><see cref="Verify"/> on a thread-pool thread (PBKDF2: a millisecond or more).</summary>
    public async ValueTask<bool> VerifyAsync(string preparedPassword)
    {
        await Threading.ThreadPoolHop.Instance;
        return Verify(preparedPassword);
    }
}
