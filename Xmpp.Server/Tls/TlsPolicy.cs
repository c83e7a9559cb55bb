using System.Net.Security;
using System.Security.Authentication;

namespace Xmpp.Server.Tls;

/// <summary>
/// The TLS versions and cipher suites of every stream, client or server, incoming or outgoing: TLS 1.2 and
/// 1.3 only, and for TLS 1.2 only ECDHE key exchange with AEAD ciphers (Mozilla's "intermediate" profile,
/// which every maintained XMPP client and server supports; RFC 9325 §4.2). No CBC, no RSA key exchange, no
/// SHA-1 MACs.
/// </summary>
public static class TlsPolicy
{
    public const SslProtocols Protocols = SslProtocols.Tls12 | SslProtocols.Tls13;

    /// <summary>The allowed suites; null where the platform does not let them be chosen (Windows: the system's policy applies).</summary>
    public static CipherSuitesPolicy? CipherSuites { get; } = OperatingSystem.IsLinux() || OperatingSystem.IsMacOS()
        ? new CipherSuitesPolicy(
        [
            TlsCipherSuite.TLS_AES_128_GCM_SHA256,
            TlsCipherSuite.TLS_AES_256_GCM_SHA384,
            TlsCipherSuite.TLS_CHACHA20_POLY1305_SHA256,
            TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
            TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
            TlsCipherSuite.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        ])
        : null;
}
