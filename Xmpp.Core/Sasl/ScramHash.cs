using System.Security.Cryptography;

namespace Xmpp.Core.Sasl;

/// <summary>The hash functions SCRAM is used with here (RFC 5802, RFC 7677, and SCRAM-SHA-512).</summary>
public enum ScramHash
{
    Sha1,
    Sha256,
    Sha512,
}

// SCRAM-SHA-1 is required by RFC 6120 §13.8.3 interop and used by every peer server; SHA-1 here is HMAC/PBKDF2 keyed use.
#pragma warning disable CA5350
public static class ScramHashes
{
    public static IReadOnlyList<ScramHash> All { get; } = [ScramHash.Sha1, ScramHash.Sha256, ScramHash.Sha512];

    public static string MechanismName(this ScramHash hash) => hash switch
    {
        ScramHash.Sha1 => "SCRAM-SHA-1",
        ScramHash.Sha256 => "SCRAM-SHA-256",
        _ => "SCRAM-SHA-512",
    };

    public static string StorageName(this ScramHash hash) => hash switch
    {
        ScramHash.Sha1 => "sha1",
        ScramHash.Sha256 => "sha256",
        _ => "sha512",
    };

    public static HashAlgorithmName AlgorithmName(this ScramHash hash) => hash switch
    {
        ScramHash.Sha1 => HashAlgorithmName.SHA1,
        ScramHash.Sha256 => HashAlgorithmName.SHA256,
        _ => HashAlgorithmName.SHA512,
    };

    public static int Size(this ScramHash hash) => hash switch
    {
        ScramHash.Sha1 => 20,
        ScramHash.Sha256 => 32,
        _ => 64,
    };

    public static byte[] Hash(this ScramHash hash, ReadOnlySpan<byte> data) => hash switch
    {
        ScramHash.Sha1 => SHA1.HashData(data),
        ScramHash.Sha256 => SHA256.HashData(data),
        _ => SHA512.HashData(data),
    };

    public static byte[] Hmac(this ScramHash hash, ReadOnlySpan<byte> key, ReadOnlySpan<byte> data) => hash switch
    {
        ScramHash.Sha1 => HMACSHA1.HashData(key, data),
        ScramHash.Sha256 => HMACSHA256.HashData(key, data),
        _ => HMACSHA512.HashData(key, data),
    };

    /// <summary>Hi() of RFC 5802 §2.2, which is PBKDF2 with the HMAC of the hash.</summary>
    public static byte[] SaltedPassword(this ScramHash hash, string preparedPassword, byte[] salt, int iterations) =>
        Rfc2898DeriveBytes.Pbkdf2(System.Text.Encoding.UTF8.GetBytes(preparedPassword), salt, iterations, hash.AlgorithmName(), hash.Size());
}
#pragma warning restore CA5350
