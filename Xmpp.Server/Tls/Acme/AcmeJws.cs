using System.Buffers;
using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Xmpp.Server.Tls.Acme;

/// <summary>
/// The ACME account key (ECDSA P-256) and the JSON Web Signatures made with it (RFC 8555 §6.2: ES256,
/// RFC 7515 flattened JSON serialization, RFC 7518 §3.4: the signature is R || S, 32 bytes each).
/// </summary>
internal sealed class AcmeJws : IDisposable
{
    private readonly ECDsa _key;

    public AcmeJws(ECDsa key)
    {
        if (key.KeySize != 256)
        {
            throw new ArgumentException("the ACME account key must be ECDSA P-256", nameof(key));
        }

        _key = key;
        var q = key.ExportParameters(includePrivateParameters: false).Q;
        X = Base64Url.EncodeToString(q.X);
        Y = Base64Url.EncodeToString(q.Y);
        Thumbprint = JwkThumbprint([new("crv", "P-256"), new("kty", "EC"), new("x", X), new("y", Y)]);
    }

    /// <summary>The public key's x coordinate, base64url.</summary>
    public string X { get; }

    /// <summary>The public key's y coordinate, base64url.</summary>
    public string Y { get; }

    /// <summary>RFC 7638 thumbprint of the public key (SHA-256, base64url): the second half of every key authorization (RFC 8555 §8.1).</summary>
    public string Thumbprint { get; }

    public static AcmeJws Create() => new(ECDsa.Create(ECCurve.NamedCurves.nistP256));

    /// <summary>The key from PKCS#8 PEM.</summary>
    public static AcmeJws FromPem(string pem)
    {
        var key = ECDsa.Create();
        try
        {
            key.ImportFromPem(pem);
            return new AcmeJws(key);
        }
        catch
        {
            key.Dispose();
            throw;
        }
    }

    /// <summary>The private key as PKCS#8 PEM (for an owner-only file; never logged).</summary>
    public string ExportPem() => _key.ExportPkcs8PrivateKeyPem();

    /// <summary>The key authorization of a challenge token (RFC 8555 §8.1).</summary>
    public string KeyAuthorization(string token) => token + "." + Thumbprint;

    /// <summary>
    /// RFC 7638 §3: SHA-256 over the JSON object of the key's required members, in lexicographic order of
    /// their names, without white space; base64url without padding.
    /// </summary>
    public static string JwkThumbprint(IEnumerable<KeyValuePair<string, string>> requiredMembers)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            foreach (var (name, value) in requiredMembers.OrderBy(m => m.Key, StringComparer.Ordinal))
            {
                w.WriteString(name, value);
            }

            w.WriteEndObject();
        }

        return Base64Url.EncodeToString(SHA256.HashData(buffer.WrittenSpan));
    }

    /// <summary>
    /// A request body (RFC 8555 §6.2): the protected header carries alg, nonce, url and either the
    /// public key (<c>jwk</c>, for newAccount) or the account URL (<c>kid</c>, everything after it).
    /// With <paramref name="postAsGet"/>, a POST-as-GET (§6.3: the payload is the empty string).
    /// </summary>
    public byte[] Sign(Uri url, string nonce, string? kid, ReadOnlySpan<byte> payload, bool postAsGet = false)
    {
        var header = new ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(header))
        {
            w.WriteStartObject();
            w.WriteString("alg", "ES256");
            if (kid is null)
            {
                w.WriteStartObject("jwk");
                w.WriteString("crv", "P-256");
                w.WriteString("kty", "EC");
                w.WriteString("x", X);
                w.WriteString("y", Y);
                w.WriteEndObject();
            }
            else
            {
                w.WriteString("kid", kid);
            }

            w.WriteString("nonce", nonce);
            w.WriteString("url", url.AbsoluteUri);
            w.WriteEndObject();
        }

        var protectedB64 = Base64Url.EncodeToString(header.WrittenSpan);
        var payloadB64 = postAsGet ? string.Empty : Base64Url.EncodeToString(payload);
        var signingInput = Encoding.ASCII.GetBytes(protectedB64 + "." + payloadB64);

        // IEEE P1363 (R || S) is .NET's default format for ECDsa.SignData, and what JWS wants (RFC 7518 §3.4).
        var signature = _key.SignData(signingInput, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
        var body = new ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(body))
        {
            w.WriteStartObject();
            w.WriteString("protected", protectedB64);
            w.WriteString("payload", payloadB64);
            w.WriteString("signature", Base64Url.EncodeToString(signature));
            w.WriteEndObject();
        }

        return body.WrittenSpan.ToArray();
    }

    public void Dispose() => _key.Dispose();
}
