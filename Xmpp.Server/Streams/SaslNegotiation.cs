using Xmpp.Core;
using Xmpp.Core.Addressing;
using Xmpp.Core.Sasl;
using Xmpp.Core.Stanzas;

namespace Xmpp.Server.Streams;

/// <summary>What a SASL step came to, for the profile (RFC 6120 §6, or XEP-0388) to put into its own elements.</summary>
public enum SaslOutcomeKind
{
    Challenge,
    Success,
    Failure,
}

/// <summary>
/// A step's outcome: the challenge or success data, or the failure's condition and text. A failure that was the
/// last one the stream may have (RFC 6120 §6.4.5) ends the stream once the profile has sent it.
/// </summary>
public sealed record SaslOutcome(SaslOutcomeKind Kind, byte[]? Data = null, SaslFailure Failure = default, string? Text = null, bool EndsStream = false)
{
    /// <summary>The mechanism that succeeded (for what the profile does next, e.g. XEP-0484 token rotation).</summary>
    public ISaslServerMechanism? Mechanism { get; init; }
}

/// <summary>
/// One client stream's SASL exchanges, whichever profile carries them: the checks before a mechanism starts, the
/// steps, acceptance (authorization identity, blocked accounts), and failures with their accounting (the
/// per-stream retry limit, the per-address and per-account throttle and its delay). RFC 6120 SASL and XEP-0388
/// SASL2 differ only in the elements they wrap these in.
/// </summary>
public sealed class SaslNegotiation(C2sStateMachine stream)
{
    private int _failures;

    /// <summary>The mechanism of the exchange in progress, or null.</summary>
    public ISaslServerMechanism? Current { get; private set; }

    /// <summary>
    /// Starts an exchange with the mechanism <paramref name="create"/> makes (null: the stream's own mechanisms by
    /// name), after the checks both profiles make: TLS first when required, the mechanism offered (PLAIN without
    /// TLS is encryption-required), the client's address not blocked.
    /// </summary>
    public async ValueTask<SaslOutcome> StartAsync(string mechanism, string initialResponse, bool offered, Func<ISaslServerMechanism>? create, CancellationToken ct)
    {
        Current = null;
        if (!stream.IsSecure && stream.Context.Options.Tls.Required)
        {
            return await FailAsync(SaslFailure.EncryptionRequired, "STARTTLS first", mechanism, ct).ConfigureAwait(false);
        }

        if (!offered)
        {
            var failure = mechanism == "PLAIN" && !stream.IsSecure ? SaslFailure.EncryptionRequired : SaslFailure.InvalidMechanism;
            return await FailAsync(failure, $"mechanism '{mechanism}' is not offered", mechanism, ct).ConfigureAwait(false);
        }

        if (stream.Context.AuthFailures.IsBlocked(stream.Remote.Address))
        {
            return await FailAsync(SaslFailure.TemporaryAuthFailure, "too many failed attempts from your address; try again later", mechanism, ct).ConfigureAwait(false);
        }

        Current = create?.Invoke() ?? stream.CreateMechanism(mechanism);
        return await StepAsync(initialResponse, ct).ConfigureAwait(false);
    }

    /// <summary>Feeds the exchange one base64 message from the client.</summary>
    public async ValueTask<SaslOutcome> StepAsync(string base64, CancellationToken ct)
    {
        var mech = Current;
        if (mech is null)
        {
            return await FailAsync(SaslFailure.MalformedRequest, "no exchange in progress", null, ct).ConfigureAwait(false);
        }

        if (!TryDecode(base64, out var data))
        {
            return await FailAsync(SaslFailure.IncorrectEncoding, "bad base64", mech.Name, ct).ConfigureAwait(false);
        }

        var step = await mech.StepAsync(data, ct).ConfigureAwait(false);
        return step.Kind switch
        {
            SaslStepKind.Challenge => new SaslOutcome(SaslOutcomeKind.Challenge, step.Data),
            SaslStepKind.Success => await AcceptAsync(mech, step.Data, ct).ConfigureAwait(false),
            _ => await FailAsync(step.Failure, step.Reason ?? "failed", mech.Name, ct, mech.Username, step.IsCredentialFailure).ConfigureAwait(false),
        };
    }

    /// <summary>Forgets the exchange in progress.</summary>
    public void Reset() => Current = null;

    /// <summary>The client gave up (RFC 6120 §6.4.4): not a failed attempt.</summary>
    public ValueTask<SaslOutcome> AbortAsync(CancellationToken ct) =>
        FailAsync(SaslFailure.Aborted, "aborted by the client", Current?.Name, ct, counts: false);

    /// <summary>
    /// The mechanism succeeded; the account may still be refused: an authorization identity other than the
    /// account's own (RFC 6120 §6.3.8), or an account blocked for failed attempts.
    /// </summary>
    private async ValueTask<SaslOutcome> AcceptAsync(ISaslServerMechanism mech, byte[]? data, CancellationToken ct)
    {
        var bare = mech.Username + "@" + stream.Host;
        if (mech.AuthorizationId is not null &&
            (!Jid.TryParse(mech.AuthorizationId, out var authz) || authz.ToString() != bare))
        {
            return await FailAsync(SaslFailure.InvalidAuthzid, "may only act as " + bare, mech.Name, ct).ConfigureAwait(false);
        }

        if (stream.Context.AuthFailures.IsBlocked(bare))
        {
            // The same answer as for a wrong password during the block, so a guess cannot be tested.
            return await FailAsync(SaslFailure.TemporaryAuthFailure, "too many failed attempts", mech.Name, ct, mech.Username).ConfigureAwait(false);
        }

        Current = null;
        if (stream.Context.Cluster is { } cluster)
        {
            // Cluster mode: the account's home comes here unless it has sessions on another node (then the session
            // bound here is bound there too, through this node).
            await cluster.ClaimAsync(Jid.Parse(bare), ct).ConfigureAwait(false);
        }

        stream.Context.AuthFailures.RecordSuccess(stream.Remote.Address, bare);
        stream.Context.Metrics.Authenticated();
        return new SaslOutcome(SaslOutcomeKind.Success, data) { Mechanism = mech };
    }

    /// <summary>
    /// A failed attempt: logged, counted for the address and the account (with the throttle's delay), turned
    /// into temporary-auth-failure for a blocked account. After max-failures on one stream, the profile's
    /// failure is followed by a stream error (RFC 6120 §6.4.5).
    /// </summary>
    public async ValueTask<SaslOutcome> FailAsync(SaslFailure failure, string reason, string? mechanism, CancellationToken ct, string? user = null, bool counts = true)
    {
        Current = null;
        var context = stream.Context;
        if (counts)
        {
            _failures++;
            context.Metrics.AuthenticationFailed();
        }

        var account = user is null ? null : user + "@" + stream.Host;
        if (counts && account is not null && context.AuthFailures.IsBlocked(account))
        {
            failure = SaslFailure.TemporaryAuthFailure;
            reason = "too many failed attempts for this account; try again later";
        }

        stream.Log.Warn("Authentication failed for {User} from {Remote} with {Mechanism}: {Condition} ({Reason})", user ?? "?", stream.Remote, mechanism ?? "?", ErrorNames.ToElementName(failure), reason);
        if (counts)
        {
            var delay = context.AuthFailures.RecordFailure(stream.Remote.Address, account);
            if (account is not null && context.Cluster is { } cluster)
            {
                // Guesses at one account spread over the nodes count together.
                var total = await cluster.AccountFailedAsync(account, ct).ConfigureAwait(false);
                var shared = context.AuthFailures.DelayFor(total);
                delay = shared > delay ? shared : delay;
            }

            if (delay > TimeSpan.Zero)
            {
                await Task.Delay(delay, ct).ConfigureAwait(false);
            }
        }

        return new SaslOutcome(SaslOutcomeKind.Failure, null, failure, reason, counts && _failures >= context.Options.Auth.MaxFailuresPerStream);
    }

    /// <summary>
    /// RFC 6120 §6.4.5: a bounded number of retries, then a stream error, which "SHOULD be &lt;policy-violation/&gt;
    /// ... although some existing implementations send &lt;not-authorized/&gt;". COMPAT: libpurple 2.14 (Pidgin)
    /// reports policy-violation as a network error and reconnects in a loop with the wrong password;
    /// not-authorized makes it report an authentication failure.
    /// </summary>
    public static XmppStreamException TooManyFailures() =>
        new(StreamErrorCondition.NotAuthorized, "too many failed authentication attempts");

    /// <summary>
    /// The failure's children: the RFC 6120 condition (always in the SASL namespace, XEP-0388 §2.6.2 too), and a
    /// text in the failure's own namespace unless it is a plain not-authorized.
    /// </summary>
    public static Core.Xml.Element Failure(SaslOutcome failure, string failureNamespace)
    {
        var element = new Core.Xml.Element("failure", failureNamespace).Add(new Core.Xml.Element(ErrorNames.ToElementName(failure.Failure), Ns.Sasl));
        if (failure.Failure != SaslFailure.NotAuthorized && failure.Text is not null)
        {
            element.Add(new Core.Xml.Element("text", failureNamespace).SetAttribute("lang", Ns.Xml, "en").AddText(failure.Text));
        }

        return element;
    }

    public static bool TryDecode(string text, out byte[] data)
    {
        text = text.Trim();
        if (text.Length == 0 || text == "=")
        {
            data = [];
            return true;
        }

        try
        {
            data = Convert.FromBase64String(text);
            return true;
        }
        catch (FormatException)
        {
            data = [];
            return false;
        }
    }

    /// <summary>Base64 of a challenge or success; "=" for empty data (RFC 6120 §6.4.2).</summary>
    public static string Encode(byte[]? data) => data is { Length: > 0 } ? Convert.ToBase64String(data) : "=";
}
