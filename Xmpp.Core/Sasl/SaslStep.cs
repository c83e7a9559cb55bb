namespace Xmpp.Core.Sasl;

public enum SaslStepKind
{
    Challenge,
    Success,
    Failure,
}

/// <summary>The outcome of one SASL step: a challenge to send, success (with additional data), or failure.</summary>
/// <param name="IsCredentialFailure">
/// False for failures that are no guess at a password (an unsupported channel binding type): the
/// stream does not count or delay them, so a client can fall back to its next mechanism.
/// </param>
public readonly record struct SaslStep(SaslStepKind Kind, byte[]? Data = null, SaslFailure Failure = SaslFailure.NotAuthorized, string? Reason = null, bool IsCredentialFailure = true)
{
    public static SaslStep Challenge(byte[] data) => new(SaslStepKind.Challenge, data);

    public static SaslStep Success(byte[]? data = null) => new(SaslStepKind.Success, data);

    public static SaslStep Fail(SaslFailure failure, string reason) => new(SaslStepKind.Failure, null, failure, reason);

    public static SaslStep Unsupported(SaslFailure failure, string reason) => new(SaslStepKind.Failure, null, failure, reason, IsCredentialFailure: false);
}
