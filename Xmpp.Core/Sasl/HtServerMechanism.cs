using System.Security.Cryptography;
using System.Text;

namespace Xmpp.Core.Sasl;

/// <summary>Looks up the FAST token an account holds for the current client: the token and, while a new one is not used yet, the previous one.</summary>
public delegate ValueTask<IReadOnlyList<string>> TokenLookup(string username, CancellationToken cancellationToken);

/// <summary>
/// The HT SASL mechanisms that XEP-0484 (FAST) uses (draft-schmaus-kitten-sasl-ht): HT-SHA-256-NONE,
/// -EXPR (tls-exporter), -UNIQ (tls-unique) and -ENDP (tls-server-end-point). The client sends its username, a NUL and
/// HMAC-SHA-256(token, "Initiator" || binding data); the server, on success, answers with
/// HMAC-SHA-256(token, "Responder" || binding data). One round trip, no password.
/// </summary>
[Specification("XEP-0484", "0.3.0", Note = "FAST: tokens for a user agent requested inside SASL2 and valid 14 days, HT-SHA-256-NONE, -EXPR, -UNIQ and -ENDP, each token usable only with the mechanism it was requested for, rotation keeping the previous token until the new one is used, invalidation. The count attribute is accepted but not checked (no TLS 0-RTT here, so no replay to guard against).")]
public sealed class HtServerMechanism : ISaslServerMechanism
{
    private readonly TokenLookup _lookup;
    private readonly IChannelBindingSource? _channelBinding;
    private readonly string? _bindingType;
    private bool _done;

    public HtServerMechanism(string name, TokenLookup lookup, IChannelBindingSource? channelBinding)
    {
        Name = name;
        _lookup = lookup;
        _channelBinding = channelBinding;
        _bindingType = BindingType(name);
    }

    public string Name { get; }

    public string? Username { get; private set; }

    public string? AuthorizationId => null;

    /// <summary>The token that matched (so the caller can retire the older one).</summary>
    public string? MatchedToken { get; private set; }

    /// <summary>The names this server can offer on a channel: NONE always, the bound ones when the binding is available.</summary>
    public static IEnumerable<string> Offered(IChannelBindingSource? channelBinding)
    {
        yield return "HT-SHA-256-NONE";
        if (channelBinding?.SupportedTypes.Contains(ChannelBindingTypes.TlsExporter) == true)
        {
            yield return "HT-SHA-256-EXPR";
        }

        if (channelBinding?.SupportedTypes.Contains(ChannelBindingTypes.TlsUnique) == true)
        {
            yield return "HT-SHA-256-UNIQ";
        }

        if (channelBinding?.SupportedTypes.Contains(ChannelBindingTypes.TlsServerEndPoint) == true)
        {
            yield return "HT-SHA-256-ENDP";
        }
    }

    public static byte[] Initiator(string token, byte[] bindingData) => Hmac(token, "Initiator", bindingData);

    public static byte[] Responder(string token, byte[] bindingData) => Hmac(token, "Responder", bindingData);

    public async ValueTask<SaslStep> StepAsync(ReadOnlyMemory<byte> response, CancellationToken cancellationToken)
    {
        if (_done)
        {
            return SaslStep.Fail(SaslFailure.MalformedRequest, "the exchange is over");
        }

        _done = true;
        var data = response.Span;
        var nul = data.IndexOf((byte)0);
        if (nul <= 0 || data.Length - nul - 1 != 32)
        {
            return SaslStep.Fail(SaslFailure.MalformedRequest, "expected username, NUL and a 32-byte HMAC");
        }

        string username;
        try
        {
            username = new UTF8Encoding(false, true).GetString(data[..nul]);
        }
        catch (DecoderFallbackException)
        {
            return SaslStep.Fail(SaslFailure.MalformedRequest, "the username is not UTF-8");
        }

        if (!Addressing.Precis.TryPrepareUsernameCaseMapped(username, out var user) || !Addressing.Jid.TryPrepareLocal(user, out var prepared))
        {
            return SaslStep.Fail(SaslFailure.NotAuthorized, "invalid username");
        }

        byte[] binding = [];
        if (_bindingType is not null)
        {
            if (_channelBinding?.GetBindingData(_bindingType) is not { } b)
            {
                return SaslStep.Unsupported(SaslFailure.InvalidMechanism, $"{_bindingType} is not available on this connection");
            }

            binding = b;
        }

        // Named before the check, as SCRAM does, so that a refused token is logged and counted for its account.
        Username = prepared;
        var proof = data[(nul + 1)..].ToArray();
        foreach (var token in await _lookup(prepared, cancellationToken).ConfigureAwait(false))
        {
            if (CryptographicOperations.FixedTimeEquals(proof, Initiator(token, binding)))
            {
                MatchedToken = token;
                return SaslStep.Success(Responder(token, binding));
            }
        }

        return SaslStep.Fail(SaslFailure.NotAuthorized, "no valid token");
    }

    private static string? BindingType(string name) => name switch
    {
        "HT-SHA-256-EXPR" => ChannelBindingTypes.TlsExporter,
        "HT-SHA-256-ENDP" => ChannelBindingTypes.TlsServerEndPoint,
        "HT-SHA-256-UNIQ" => ChannelBindingTypes.TlsUnique,
        _ => null,
    };

    private static byte[] Hmac(string token, string label, byte[] bindingData)
    {
        var message = new byte[label.Length + bindingData.Length];
        Encoding.ASCII.GetBytes(label, message);
        bindingData.CopyTo(message, label.Length);
        return HMACSHA256.HashData(Encoding.UTF8.GetBytes(token), message);
    }
}
