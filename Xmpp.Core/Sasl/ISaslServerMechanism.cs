namespace Xmpp.Core.Sasl;

/// <summary>
/// One server-side SASL exchange. No I/O: the stream feeds client responses (already base64-decoded)
/// and sends what each step returns. After success, <see cref="Username"/> holds the prepared localpart.
/// </summary>
public interface ISaslServerMechanism
{
    string Name { get; }

    string? Username { get; }

    /// <summary>The authorization identity the client asked for, if any (checked by the caller).</summary>
    string? AuthorizationId { get; }

    ValueTask<SaslStep> StepAsync(ReadOnlyMemory<byte> response, CancellationToken cancellationToken);
}
