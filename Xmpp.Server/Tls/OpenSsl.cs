using System.Net.Security;
using System.Reflection;
using System.Runtime.InteropServices;

namespace Xmpp.Server.Tls;

/// <summary>
/// The OpenSSL SSL* behind an SslStream on Linux, for what .NET has no API for: the keying material
/// exporter (<see cref="TlsExporter"/>), the extended master secret flag (<see cref="TlsUnique"/>) and
/// releasing idle record buffers. Found by reflection on the runtime's SafeSslHandle; when anything is not
/// as expected the callers fall back to doing without.
/// </summary>
internal static partial class OpenSsl
{
    private const string LibSsl = "libssl.so.3";

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
}
