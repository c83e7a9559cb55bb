namespace Xmpp.Core.Sasl;

public enum SaslStepKind
{
    Challenge,
    Success,
    Failure,
}

/// <summary>The outcome of one SASL step: a challenge to send, success (with additional data), or failure.</summary>
public readonly record struct SaslStep(SaslStepKind Kind, byte[]? Data = null, SaslFailure Failure = SaslFailure.NotAuthorized, string? Reason = null)
{
    public static SaslStep Challenge(byte[] data) => new(SaslStepKind.Challenge, data);

    public static SaslStep Success(byte[]? data = null) => new(SaslStepKind.Success, data);

    public static SaslStep Fail(SaslFailure failure, string reason) => new(SaslStepKind.Failure, null, failure, reason);
}
