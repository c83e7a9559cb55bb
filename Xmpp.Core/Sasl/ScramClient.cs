using System.Security.Cryptography;
using System.Text;

namespace Xmpp.Core.Sasl;

/// <summary>
/// Client side of SCRAM, for the test suite and the load generator. Channel binding data, when given,
/// selects the -PLUS form (gs2 flag p=TYPE).
/// </summary>
public sealed class ScramClient
{
    private readonly ScramHash _hash;
    private readonly string _username;
    private readonly string _password;
    private readonly string _clientNonce;
    private readonly string _gs2Header;
    private readonly byte[]? _bindingData;
    private readonly Func<byte[], int, byte[]>? _saltedPassword;
    private string _clientFirstBare = string.Empty;
    private byte[] _serverSignature = [];

    /// <param name="saltedPassword">
    /// Where the client keeps SaltedPassword for a (salt, iteration count): RFC 5802 §5.1 lets a client cache it
    /// for reauthentication, since the server advertises the same salt again. Null: computed every time.
    /// </param>
    /// <param name="supportsBinding">
    /// Without <paramref name="bindingType"/>: send the gs2 flag "y" (the client could bind but saw no -PLUS
    /// mechanism, RFC 5802 §6) instead of "n".
    /// </param>
    public ScramClient(ScramHash hash, string username, string password, string? clientNonce = null, string? bindingType = null, byte[]? bindingData = null, string? authzid = null, Func<byte[], int, byte[]>? saltedPassword = null, bool supportsBinding = false)
    {
        _saltedPassword = saltedPassword;
        _hash = hash;
        _username = username;
        _password = password;
        _clientNonce = clientNonce ?? Convert.ToBase64String(RandomNumberGenerator.GetBytes(18));
        var flag = bindingType is not null ? "p=" + bindingType : supportsBinding ? "y" : "n";
        _gs2Header = flag + "," + (authzid is null ? string.Empty : "a=" + SaslName.Encode(authzid)) + ",";
        _bindingData = bindingData;
    }

    public string ClientFirst()
    {
        _clientFirstBare = $"n={SaslName.Encode(_username)},r={_clientNonce}";
        return _gs2Header + _clientFirstBare;
    }

    /// <summary>Answers the server-first-message with the client-final-message.</summary>
    public string ClientFinal(string serverFirst)
    {
        var attrs = ScramServerMechanism.ParseAttributes(serverFirst)
            ?? throw new FormatException("bad server-first-message");
        var nonce = attrs.First(a => a.Key == 'r').Value;
        if (!nonce.StartsWith(_clientNonce, StringComparison.Ordinal))
        {
            throw new FormatException("server nonce does not extend ours");
        }

        var salt = Convert.FromBase64String(attrs.First(a => a.Key == 's').Value);
        var iterations = int.Parse(attrs.First(a => a.Key == 'i').Value, System.Globalization.CultureInfo.InvariantCulture);
        var gs2 = Encoding.UTF8.GetBytes(_gs2Header);
        byte[] cbind = _bindingData is null ? gs2 : [.. gs2, .. _bindingData];
        var withoutProof = $"c={Convert.ToBase64String(cbind)},r={nonce}";
        var authMessage = Encoding.UTF8.GetBytes($"{_clientFirstBare},{serverFirst},{withoutProof}");
        var salted = _saltedPassword?.Invoke(salt, iterations) ?? _hash.SaltedPassword(_password, salt, iterations);
        var clientKey = _hash.Hmac(salted, "Client Key"u8);
        var storedKey = _hash.Hash(clientKey);
        var signature = _hash.Hmac(storedKey, authMessage);
        var proof = new byte[clientKey.Length];
        for (var i = 0; i < proof.Length; i++)
        {
            proof[i] = (byte)(clientKey[i] ^ signature[i]);
        }

        _serverSignature = _hash.Hmac(_hash.Hmac(salted, "Server Key"u8), authMessage);
        return $"{withoutProof},p={Convert.ToBase64String(proof)}";
    }

    /// <summary>Checks the server-final-message (v=...), proving the server knew our credentials.</summary>
    public bool VerifyServerFinal(string serverFinal) =>
        serverFinal.StartsWith("v=", StringComparison.Ordinal) &&
        CryptographicOperations.FixedTimeEquals(Convert.FromBase64String(serverFinal[2..]), _serverSignature);
}
