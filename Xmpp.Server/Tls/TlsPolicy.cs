using System.Net.Security;
using System.Security.Authentication;

namespace Xmpp.Server.Tls;

/// <summary>
/// The TLS versions and cipher suites of every stream, client or server, incoming or outgoing: TLS 1.2 and
/// 1.3 only, and for TLS 1.2 only ECDHE key exchange with AEAD ciphers (Mozilla's "intermediate" profile,
/// which every maintained XMPP client and server supports; RFC 9325 §4.2). No CBC, no RSA key exchange, no
/// SHA-1 MACs. <see cref="TlsContexts"/> applies it.
/// </summary>
public static class TlsPolicy
{
    public const SslProtocols Protocols = SslProtocols.Tls12 | SslProtocols.Tls13;

    /// <summary>
    /// The same suites in OpenSSL's names, for SSL_CTX_set_cipher_list (TLS 1.2) and SSL_CTX_set_ciphersuites
    /// (TLS 1.3), in <see cref="Suites"/>' order (the server's preference).
    /// </summary>
    public const string OpenSslCipherList =
        "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:" +
        "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

    /// <inheritdoc cref="OpenSslCipherList"/>
    public const string OpenSslCipherSuites = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";

    /// <summary>The allowed suites, TLS 1.3's first, in the server's order of preference.</summary>
    public static IReadOnlyList<TlsCipherSuite> Suites { get; } =
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
    ];

    /// <summary>The allowed suites as a policy; null where the platform does not let them be chosen (Windows: the system's policy applies).</summary>
    public static CipherSuitesPolicy? CipherSuites { get; } = OperatingSystem.IsLinux() || OperatingSystem.IsMacOS()
        ? new CipherSuitesPolicy(Suites)
        : null;

    /// <summary>Whether a suite (by its IANA number, which is what <see cref="TlsCipherSuite"/> holds) is allowed.</summary>
    public static bool Allows(TlsCipherSuite suite) => Suites.Contains(suite);
}
