using System.Security.Cryptography;
using System.Text;
using Xmpp.Core.Addressing;

namespace Xmpp.Core.Sasl;

/// <summary>
/// Server side of SCRAM-SHA-1/256/512 and their -PLUS variants (RFC 5802, RFC 7677), with channel
/// binding (RFC 5929 tls-unique and tls-server-end-point, RFC 9266 tls-exporter).
/// </summary>
[Specification("RFC 5802", "", Note = "SCRAM-SHA-1 and -PLUS, from stored keys; a missing account answers with a stable decoy salt so it cannot be told apart. The 'y' channel binding flag is refused where -PLUS was offered (§6).")]
[Specification("RFC 7677", "", Note = "SCRAM-SHA-256 and -PLUS; SCRAM-SHA-512 and -PLUS alike.")]
[Specification("RFC 9266", "", Note = "tls-exporter channel binding, on TLS 1.3.")]
[Specification("RFC 5929", "§3, §4", Note = "tls-server-end-point channel binding; tls-unique as OpenSSL computes it (the clients that ask for it do so through OpenSSL), on TLS 1.3 and on TLS 1.2 with the extended master secret.")]
public sealed class ScramServerMechanism : ISaslServerMechanism
{
    private static readonly UTF8Encoding StrictUtf8 = new(false, true);
    private readonly ScramHash _hash;
    private readonly bool _plus;
    private readonly CredentialLookup _lookup;
    private readonly IChannelBindingSource? _channelBinding;
    private readonly string _serverNonce;
    private State _state = State.Initial;
    private string _gs2Header = string.Empty;
    private string _clientFirstBare = string.Empty;
    private string _serverFirst = string.Empty;
    private string _nonce = string.Empty;
    private byte[]? _expectedBindingData;
    private readonly DecoyCredentials? _decoys;
    private ScramCredential? _credential;
    private bool _decoy;
    private readonly string? _advertised;

    /// <summary>
    /// XEP-0474 §4.1: the string whose hash the server puts into its server-first-message: the advertised
    /// mechanisms sorted (i;octet) and joined by U+001E, then, when XEP-0440 advertised channel bindings,
    /// U+001F and the sorted binding types joined by U+001E. The SCRAM signature then covers it.
    /// </summary>
    public static string DowngradeProtection(IEnumerable<string> mechanisms, IEnumerable<string>? channelBindings)
    {
        var s = string.Join('\u001E', mechanisms.Order(StringComparer.Ordinal));
        return channelBindings is null ? s : s + '\u001F' + string.Join('\u001E', channelBindings.Order(StringComparer.Ordinal));
    }

    /// <param name="channelBinding">The TLS channel, or null on a stream without TLS.</param>
    /// <param name="serverNonce">Fixed server nonce for test vectors; random when null.</param>
    /// <param name="decoys">What to answer for a username without credentials (random salts when null).</param>
    /// <param name="advertised">What the server advertised, for XEP-0474's 'h' attribute (none when null): see <see cref="DowngradeProtection"/>.</param>
    public ScramServerMechanism(ScramHash hash, bool plus, CredentialLookup lookup, IChannelBindingSource? channelBinding, string? serverNonce = null, DecoyCredentials? decoys = null, string? advertised = null)
    {
        _decoys = decoys;
        _advertised = advertised;
        _hash = hash;
        _plus = plus;
        _lookup = lookup;
        _channelBinding = channelBinding;
        _serverNonce = serverNonce ?? Convert.ToBase64String(RandomNumberGenerator.GetBytes(18));
    }

    private enum State
    {
        Initial,
        SentServerFirst,
        Done,
    }

    public string Name => _hash.MechanismName() + (_plus ? "-PLUS" : string.Empty);

    public string? Username { get; private set; }

    public string? AuthorizationId { get; private set; }

    /// <summary>The channel binding type of a -PLUS exchange (for the log), null without channel binding.</summary>
    public string? ChannelBindingType { get; private set; }

    public async ValueTask<SaslStep> StepAsync(ReadOnlyMemory<byte> response, CancellationToken cancellationToken)
    {
        string message;
        try
        {
            message = StrictUtf8.GetString(response.Span);
        }
        catch (DecoderFallbackException)
        {
            _state = State.Done;
            return SaslStep.Fail(SaslFailure.MalformedRequest, "not UTF-8");
        }

        switch (_state)
        {
            case State.Initial:
                if (message.Length == 0)
                {
                    // The client sent no initial response: ask for it (RFC 6120 §6.4.2).
                    return SaslStep.Challenge([]);
                }

                return await ClientFirstAsync(message, cancellationToken).ConfigureAwait(false);
            case State.SentServerFirst:
                _state = State.Done;
                return ClientFinal(message);
            default:
                return SaslStep.Fail(SaslFailure.MalformedRequest, "exchange already finished");
        }
    }

    /// <summary>
    /// RFC 5802 §5.1, §7: the client-first-message (its GS2 header, then n= and r=), answered with the
    /// server-first-message. Whatever fails ends the exchange.
    /// </summary>
    private async ValueTask<SaslStep> ClientFirstAsync(string message, CancellationToken cancellationToken)
    {
        _state = State.Done;
        if (ParseGs2Header(message, out var flag, out var authz) is { } malformed)
        {
            return malformed;
        }

        if (CheckChannelBindingFlag(flag) is { } refused)
        {
            return refused;
        }

        if (ReadAuthzid(authz) is { } badAuthzid)
        {
            return badAuthzid;
        }

        if (ParseClientFirstBare(out var user, out var clientNonce) is { } badRequest)
        {
            return badRequest;
        }

        await LookUpCredentialAsync(user, cancellationToken).ConfigureAwait(false);
        return ServerFirst(clientNonce);
    }

    /// <summary>gs2-header = gs2-cbind-flag "," [ authzid ] ","; what follows is the client-first-message-bare.</summary>
    private SaslStep? ParseGs2Header(string message, out string flag, out string authz)
    {
        var firstComma = message.IndexOf(',', StringComparison.Ordinal);
        var secondComma = firstComma < 0 ? -1 : message.IndexOf(',', firstComma + 1);
        if (secondComma < 0)
        {
            flag = authz = string.Empty;
            return SaslStep.Fail(SaslFailure.MalformedRequest, "missing GS2 header");
        }

        flag = message[..firstComma];
        authz = message[(firstComma + 1)..secondComma];
        _gs2Header = message[..(secondComma + 1)];
        _clientFirstBare = message[(secondComma + 1)..];
        return null;
    }

    /// <summary>
    /// The gs2-cbind-flag (RFC 5802 §6): "n" (no channel binding) and "y" (supported, but no -PLUS seen) only
    /// with a non-PLUS mechanism; "p=type" only with a -PLUS one, for a type this TLS channel gives.
    /// </summary>
    private SaslStep? CheckChannelBindingFlag(string flag)
    {
        if (flag == "n")
        {
            if (_plus)
            {
                return SaslStep.Fail(SaslFailure.MalformedRequest, "-PLUS mechanism requires channel binding");
            }
        }
        else if (flag == "y")
        {
            if (_plus)
            {
                return SaslStep.Fail(SaslFailure.MalformedRequest, "-PLUS mechanism requires channel binding");
            }

            // RFC 5802 §6: "y" says the client supports channel binding but saw no -PLUS mechanism. "If the flag
            // is set to 'y' and the server supports channel binding, the server MUST fail authentication":
            // someone between us removed the -PLUS mechanisms from what we advertised.
            if (_channelBinding is { SupportedTypes.Count: > 0 })
            {
                return SaslStep.Fail(SaslFailure.NotAuthorized, "channel binding downgrade: the client saw no -PLUS mechanism, but they were offered");
            }
        }
        else if (flag.StartsWith("p=", StringComparison.Ordinal))
        {
            var cbType = flag[2..];
            if (!_plus)
            {
                return SaslStep.Fail(SaslFailure.MalformedRequest, "channel binding requested with a non-PLUS mechanism");
            }

            if (_channelBinding is null || !_channelBinding.SupportedTypes.Contains(cbType))
            {
                // A type XEP-0440 did not list: no guess at a password, so the client may go on to its next
                // mechanism without this counting as a failed attempt.
                return SaslStep.Unsupported(SaslFailure.NotAuthorized, $"channel binding type {cbType} not supported");
            }

            _expectedBindingData = _channelBinding.GetBindingData(cbType);
            if (_expectedBindingData is null)
            {
                return SaslStep.Fail(SaslFailure.NotAuthorized, $"channel binding type {cbType} unavailable");
            }

            ChannelBindingType = cbType;
        }
        else
        {
            return SaslStep.Fail(SaslFailure.MalformedRequest, "bad GS2 channel binding flag");
        }

        return null;
    }

    /// <summary>The optional authzid of the GS2 header: "a=" and a saslname.</summary>
    private SaslStep? ReadAuthzid(string authz)
    {
        if (authz.Length > 0)
        {
            if (!authz.StartsWith("a=", StringComparison.Ordinal) || !SaslName.TryDecode(authz[2..], out var decodedAuthz))
            {
                return SaslStep.Fail(SaslFailure.MalformedRequest, "bad authzid");
            }

            AuthorizationId = decodedAuthz;
        }

        return null;
    }

    /// <summary>client-first-message-bare = username "," nonce ["," extensions]: the username (a valid localpart) and the client's nonce.</summary>
    private SaslStep? ParseClientFirstBare(out string user, out string clientNonce)
    {
        user = clientNonce = string.Empty;
        var attrs = ParseAttributes(_clientFirstBare);
        if (attrs is null || attrs.Count < 2 || attrs[0].Key != 'n' || attrs[1].Key != 'r')
        {
            return SaslStep.Fail(SaslFailure.MalformedRequest, "client-first-message must start with n= and r=");
        }

        if (!SaslName.TryDecode(attrs[0].Value, out var rawUser) || !Jid.TryPrepareLocal(rawUser, out var prepared))
        {
            return SaslStep.Fail(SaslFailure.NotAuthorized, "invalid username");
        }

        user = prepared;
        clientNonce = attrs[1].Value;
        if (clientNonce.Length == 0 || !IsPrintable(clientNonce))
        {
            return SaslStep.Fail(SaslFailure.MalformedRequest, "bad nonce");
        }

        return null;
    }

    /// <summary>The user's stored salt, iteration count and keys for this hash; for an unknown user, a decoy.</summary>
    private async ValueTask LookUpCredentialAsync(string user, CancellationToken cancellationToken)
    {
        _credential = await _lookup(user, _hash, cancellationToken).ConfigureAwait(false);
        Username = user;

        // An unknown user gets the same kind of challenge as a real one, and then the same work, so the
        // exchange does not reveal which accounts exist (see DecoyCredentials).
        if (_credential is null)
        {
            _decoy = true;
            _credential = _decoys?.For(user, _hash) ?? new DecoyCredentials(RandomNumberGenerator.GetBytes(32), ScramCredential.MinimumIterations).For(user, _hash);
        }
    }

    /// <summary>server-first-message = nonce (the client's and ours) "," salt "," iteration-count, and XEP-0474's h=.</summary>
    private SaslStep ServerFirst(string clientNonce)
    {
        _nonce = clientNonce + _serverNonce;
        _serverFirst = $"r={_nonce},s={Convert.ToBase64String(_credential!.Salt)},i={_credential.Iterations}";
        if (_advertised is not null)
        {
            // XEP-0474: an extension attribute (RFC 5802 §5.1), signed with the rest of the AuthMessage.
            _serverFirst += ",h=" + Convert.ToBase64String(_hash.Hash(Encoding.UTF8.GetBytes(_advertised)));
        }

        _state = State.SentServerFirst;
        return SaslStep.Challenge(Encoding.UTF8.GetBytes(_serverFirst));
    }

    private SaslStep ClientFinal(string message)
    {
        var proofIndex = message.LastIndexOf(",p=", StringComparison.Ordinal);
        if (proofIndex < 0)
        {
            return SaslStep.Fail(SaslFailure.MalformedRequest, "missing proof");
        }

        var withoutProof = message[..proofIndex];
        var attrs = ParseAttributes(message);
        if (attrs is null || attrs.Count < 3 || attrs[0].Key != 'c' || attrs[1].Key != 'r' || attrs[^1].Key != 'p')
        {
            return SaslStep.Fail(SaslFailure.MalformedRequest, "client-final-message must be c=,r=,...,p=");
        }

        byte[] cbind, proof;
        try
        {
            cbind = Convert.FromBase64String(attrs[0].Value);
            proof = Convert.FromBase64String(attrs[^1].Value);
        }
        catch (FormatException)
        {
            return SaslStep.Fail(SaslFailure.IncorrectEncoding, "bad base64 in client-final-message");
        }

        var gs2 = Encoding.UTF8.GetBytes(_gs2Header);
        var expectedCbind = _expectedBindingData is null ? gs2 : [.. gs2, .. _expectedBindingData];
        if (!CryptographicOperations.FixedTimeEquals(cbind, expectedCbind))
        {
            return SaslStep.Fail(SaslFailure.NotAuthorized, "channel binding mismatch");
        }

        if (attrs[1].Value != _nonce)
        {
            return SaslStep.Fail(SaslFailure.NotAuthorized, "nonce mismatch");
        }

        if (_credential is null || proof.Length != _hash.Size())
        {
            return SaslStep.Fail(SaslFailure.NotAuthorized, "wrong username or password");
        }

        var authMessage = Encoding.UTF8.GetBytes($"{_clientFirstBare},{_serverFirst},{withoutProof}");
        var clientSignature = _hash.Hmac(_credential.StoredKey, authMessage);
        var clientKey = new byte[proof.Length];
        for (var i = 0; i < proof.Length; i++)
        {
            clientKey[i] = (byte)(proof[i] ^ clientSignature[i]);
        }

        if (!CryptographicOperations.FixedTimeEquals(_hash.Hash(clientKey), _credential.StoredKey) | _decoy)
        {
            return SaslStep.Fail(SaslFailure.NotAuthorized, "wrong username or password");
        }

        var serverSignature = _hash.Hmac(_credential.ServerKey, authMessage);
        return SaslStep.Success(Encoding.UTF8.GetBytes("v=" + Convert.ToBase64String(serverSignature)));
    }

    internal static List<KeyValuePair<char, string>>? ParseAttributes(string s)
    {
        var list = new List<KeyValuePair<char, string>>();
        foreach (var part in s.Split(','))
        {
            if (part.Length < 2 || part[1] != '=' || !char.IsAsciiLetter(part[0]))
            {
                return null;
            }

            list.Add(new KeyValuePair<char, string>(part[0], part[2..]));
        }

        return list;
    }

    private static bool IsPrintable(string s)
    {
        foreach (var c in s)
        {
            if (c < 0x21 || c > 0x7E || c == ',')
            {
                return false;
            }
        }

        return true;
    }
}
