namespace Xmpp.Core.Sasl;

/// <summary>Channel binding types (RFC 5056 registry) this server can offer over TLS.</summary>
public static class ChannelBindingTypes
{
    /// <summary>RFC 9266, the one for TLS 1.3.</summary>
    public const string TlsExporter = "tls-exporter";

    /// <summary>RFC 5929 §3: the first Finished message of the handshake, as OpenSSL gives it (see the server's TlsUnique).</summary>
    public const string TlsUnique = "tls-unique";

    /// <summary>RFC 5929 §4: hash of the server's certificate.</summary>
    public const string TlsServerEndPoint = "tls-server-end-point";
}

/// <summary>
/// What a SCRAM-PLUS exchange needs from the transport: the channel binding types the server offers on
/// it, and the binding data for a type (null when it cannot be computed). A stream has one exactly when
/// the -PLUS mechanisms are offered on it (TLS that the server terminates itself: not WebSocket or BOSH).
/// </summary>
public interface IChannelBindingSource
{
    IReadOnlyList<string> SupportedTypes { get; }

    byte[]? GetBindingData(string type);
}
