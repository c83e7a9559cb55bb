using System.Net.Security;
using System.Reflection;
using System.Runtime.InteropServices;

namespace Xmpp.Server.Tls;

/// <summary>
/// The OpenSSL SSL* behind an SslStream on Linux, for what .NET has no API for: the keying material
/// exporter (<see cref="TlsExporter"/>), the extended master secret flag (<see cref="TlsUnique"/>),
/// releasing idle record buffers, and the SSL_CTX a connection was made from with its cipher suites
/// (<see cref="TlsContexts"/>). Found by reflection on the runtime's SafeSslHandle; when anything is not
/// as expected the callers fall back to doing without.
/// </summary>
internal static partial class OpenSsl
{
    private const string LibSsl = "libssl.so.3";
    private const string LibCrypto = "libcrypto.so.3";

    // ssl.h: SSL_set_mode(ssl, m) is SSL_ctrl(ssl, SSL_CTRL_MODE, m, NULL).
    private const int SslCtrlMode = 33;
    private const long SslModeReleaseBuffers = 0x10;

    // ssl.h: SSL_get_extms_support(ssl) is SSL_ctrl(ssl, SSL_CTRL_GET_EXTMS_SUPPORT, 0, NULL): 1 when negotiated.
    private const int SslCtrlGetExtmsSupport = 122;

    private const BindingFlags Instance = BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.Public;

    /// <summary>SslStream's SafeHandle fields, looked up once (reflection per connection would be wasted).</summary>
    private static readonly FieldInfo[] HandleFields =
        [.. typeof(SslStream).GetFields(Instance).Where(f => typeof(SafeHandle).IsAssignableFrom(f.FieldType))];

    /// <summary>
    /// Sets SSL_MODE_RELEASE_BUFFERS: OpenSSL frees a connection's record read and write buffers (about
    /// 34 KB together) whenever they are empty instead of keeping them for the life of the connection,
    /// which is most of an idle TLS session's native memory. nginx sets the same mode on every connection.
    /// </summary>
    public static bool ReleaseBuffersWhenIdle(SslStream stream) =>
        WithHandle(stream, ssl => (SSL_ctrl(ssl, SslCtrlMode, SslModeReleaseBuffers, IntPtr.Zero) & SslModeReleaseBuffers) != 0);

    /// <summary>Whether a TLS 1.2 handshake negotiated the extended master secret (RFC 7627); false when unknown.</summary>
    public static bool HasExtendedMasterSecret(SslStream stream) =>
        WithHandle(stream, ssl => SSL_ctrl(ssl, SslCtrlGetExtmsSupport, 0, IntPtr.Zero) == 1);

    /// <summary>The SSL_CTX a connection was made from (SSL_get_SSL_CTX); zero when unknown.</summary>
    public static IntPtr ContextOf(SslStream stream)
    {
        var context = IntPtr.Zero;
        WithHandle(stream, ssl => (context = SSL_get_SSL_CTX(ssl)) != IntPtr.Zero);
        return context;
    }

    /// <summary>
    /// The suites a connection may negotiate, as IANA numbers (SSL_get_ciphers: its own list, else its
    /// context's; TLS 1.3's and TLS 1.2's together); null when unknown.
    /// </summary>
    public static TlsCipherSuite[]? CipherSuitesOf(SslStream stream)
    {
        TlsCipherSuite[]? suites = null;
        WithHandle(stream, ssl => (suites = Numbers(SSL_get_ciphers(ssl))) is not null);
        return suites;
    }

    /// <summary>The suites of an SSL_CTX (SSL_CTX_get_ciphers), as IANA numbers; null when unknown.</summary>
    public static TlsCipherSuite[]? CipherSuitesOfContext(IntPtr context) => Guarded(() => Numbers(SSL_CTX_get_ciphers(context)), null);

    /// <summary>
    /// Sets an SSL_CTX's TLS 1.2 cipher list and TLS 1.3 suites (OpenSSL names). Connections made from it
    /// afterwards offer and accept those only. Not safe while another thread makes a connection from it.
    /// </summary>
    public static bool RestrictContext(IntPtr context, string cipherList, string cipherSuites) => Guarded(
        () =>
        {
            if (SSL_CTX_set_cipher_list(context, cipherList) == 1 && SSL_CTX_set_ciphersuites(context, cipherSuites) == 1)
            {
                return true;
            }

            ERR_clear_error();
            return false;
        },
        false);

    private static TlsCipherSuite[]? Numbers(IntPtr stack)
    {
        if (stack == IntPtr.Zero)
        {
            return null;
        }

        var count = OPENSSL_sk_num(stack);
        if (count < 0)
        {
            return null;
        }

        var suites = new TlsCipherSuite[count];
        for (var i = 0; i < count; i++)
        {
            suites[i] = (TlsCipherSuite)SSL_CIPHER_get_protocol_id(OPENSSL_sk_value(stack, i));
        }

        return suites;
    }

    private static T Guarded<T>(Func<T> call, T fallback)
    {
        if (!OperatingSystem.IsLinux())
        {
            return fallback;
        }

        try
        {
            return call();
        }
        catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException)
        {
            return fallback;
        }
    }

    /// <summary>Runs <paramref name="action"/> on the SSL*; false when the handle cannot be found or called.</summary>
    public static bool WithHandle(SslStream stream, Func<IntPtr, bool> action)
    {
        if (!OperatingSystem.IsLinux())
        {
            return false;
        }

        try
        {
            var handle = FindSslHandle(stream);
            if (handle is null)
            {
                return false;
            }

            var added = false;
            try
            {
                handle.DangerousAddRef(ref added);
                return action(handle.DangerousGetHandle());
            }
            finally
            {
                if (added)
                {
                    handle.DangerousRelease();
                }
            }
        }
        catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException or MemberAccessException or InvalidCastException or TargetException or ObjectDisposedException)
        {
            return false;
        }
    }

    // On .NET 10 the SslStream field holds the SafeSslHandle itself (the first test below). The wrapper case is
    // for other runtime versions; its type's fields are kept for reflection so that it also works trimmed.
    [System.Diagnostics.CodeAnalysis.DynamicDependency(System.Diagnostics.CodeAnalysis.DynamicallyAccessedMemberTypes.PublicFields | System.Diagnostics.CodeAnalysis.DynamicallyAccessedMemberTypes.NonPublicFields, "System.Net.Security.SafeDeleteSslContext", "System.Net.Security")]
    [System.Diagnostics.CodeAnalysis.UnconditionalSuppressMessage("Trimming", "IL2075", Justification = "The only wrapper type is SafeDeleteSslContext, whose fields DynamicDependency keeps; when they are missing, the handle is not found and the callers do without.")]
    private static SafeHandle? FindSslHandle(SslStream stream)
    {
        foreach (var field in HandleFields)
        {
            var value = field.GetValue(stream);
            if (value is null)
            {
                continue;
            }

            if (value.GetType().Name == "SafeSslHandle")
            {
                return (SafeHandle)value;
            }

            // Other runtime versions wrap the SafeSslHandle in a SafeDeleteSslContext.
            foreach (var inner in value.GetType().GetFields(Instance))
            {
                if (inner.FieldType.Name == "SafeSslHandle")
                {
                    return inner.GetValue(value) as SafeHandle;
                }
            }
        }

        return null;
    }

    [LibraryImport(LibSsl)]
    internal static partial int SSL_export_keying_material(IntPtr ssl, [Out] byte[] output, nuint outputLength, byte[] label, nuint labelLength, IntPtr context, nuint contextLength, int useContext);

    [LibraryImport(LibSsl)]
    private static partial long SSL_ctrl(IntPtr ssl, int cmd, long larg, IntPtr parg);

    [LibraryImport(LibSsl)]
    private static partial IntPtr SSL_get_SSL_CTX(IntPtr ssl);

    [LibraryImport(LibSsl)]
    private static partial IntPtr SSL_get_ciphers(IntPtr ssl);

    [LibraryImport(LibSsl)]
    private static partial IntPtr SSL_CTX_get_ciphers(IntPtr ctx);

    [LibraryImport(LibSsl, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int SSL_CTX_set_cipher_list(IntPtr ctx, string list);

    [LibraryImport(LibSsl, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int SSL_CTX_set_ciphersuites(IntPtr ctx, string list);

    [LibraryImport(LibSsl)]
    private static partial ushort SSL_CIPHER_get_protocol_id(IntPtr cipher);

    [LibraryImport(LibCrypto)]
    private static partial int OPENSSL_sk_num(IntPtr stack);

    [LibraryImport(LibCrypto)]
    private static partial IntPtr OPENSSL_sk_value(IntPtr stack, int index);

    [LibraryImport(LibCrypto)]
    private static partial void ERR_clear_error();
}
