using System.Text;
using Xmpp.Core.Addressing;

namespace Xmpp.Core.Sasl;

/// <summary>SASL PLAIN (RFC 4616), checked against the stored SCRAM keys. Offered only over TLS.</summary>
[Specification("RFC 4616", "", Note = "PLAIN, over TLS only and when allowed.")]
public sealed class PlainServerMechanism : ISaslServerMechanism
{
    private readonly CredentialLookup _lookup;
    private readonly DecoyCredentials? _decoys;
    private readonly Func<string, string, CancellationToken, ValueTask>? _upgrade;
    private bool _done;

    /// <param name="decoys">A missing account is checked against a decoy, so it takes as long as a wrong password.</param>
    /// <param name="upgrade">
    /// Called with the username and prepared password after a login verified against SCRAM-SHA-1 keys alone
    /// (an account imported from Prosody or ejabberd), so the server can store the stronger hashes it lacks.
    /// </param>
    public PlainServerMechanism(CredentialLookup lookup, DecoyCredentials? decoys = null, Func<string, string, CancellationToken, ValueTask>? upgrade = null)
    {
        _lookup = lookup;
        _decoys = decoys;
        _upgrade = upgrade;
    }

    public string Name => "PLAIN";

    public string? Username { get; private set; }

    public string? AuthorizationId { get; private set; }

    public async ValueTask<SaslStep> StepAsync(ReadOnlyMemory<byte> response, CancellationToken cancellationToken)
    {
        if (_done)
        {
            return SaslStep.Fail(SaslFailure.MalformedRequest, "unexpected response");
        }

        if (response.Length == 0)
        {
            // No initial response: ask for it with an empty challenge (RFC 6120 §6.4.2).
            _done = false;
            return SaslStep.Challenge([]);
        }

        _done = true;
        string message;
        try
        {
            message = new UTF8Encoding(false, true).GetString(response.Span);
        }
        catch (DecoderFallbackException)
        {
            return SaslStep.Fail(SaslFailure.MalformedRequest, "not UTF-8");
        }

        var parts = message.Split('\0');
        if (parts.Length != 3 || parts[1].Length == 0)
        {
            return SaslStep.Fail(SaslFailure.MalformedRequest, "PLAIN message must be authzid NUL authcid NUL passwd");
        }

        if (!Precis.TryPrepareUsernameCaseMapped(parts[1], out var user) || !Jid.TryPrepareLocal(user, out var local))
        {
            return SaslStep.Fail(SaslFailure.NotAuthorized, "invalid username");
        }

        if (!Precis.TryPrepareOpaqueString(parts[2], out var password))
        {
            return SaslStep.Fail(SaslFailure.NotAuthorized, "invalid password");
        }

        var strong = await _lookup(local, ScramHash.Sha256, cancellationToken).ConfigureAwait(false);
        var credential = strong ?? await _lookup(local, ScramHash.Sha1, cancellationToken).ConfigureAwait(false);
        if (credential is null)
        {
            if (_decoys is not null)
            {
                await _decoys.Plain.VerifyAsync(password).ConfigureAwait(false);
            }

            return SaslStep.Fail(SaslFailure.NotAuthorized, "wrong username or password");
        }

        if (!await credential.VerifyAsync(password).ConfigureAwait(false))
        {
            return SaslStep.Fail(SaslFailure.NotAuthorized, "wrong username or password");
        }

        Username = local;
        AuthorizationId = parts[0].Length == 0 ? null : parts[0];
        if (strong is null && _upgrade is not null)
        {
            await _upgrade(local, password, cancellationToken).ConfigureAwait(false);
        }

        return SaslStep.Success();
    }
}
