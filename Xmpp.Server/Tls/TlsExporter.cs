using System.Net.Security;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text;

namespace Xmpp.Server.Tls;

/// <summary>
/// Keying material exporter (RFC 5705 / RFC 8446 §7.5) for tls-exporter channel binding (RFC 9266).
/// .NET has no public API for it, so on Linux this finds the OpenSSL SSL* behind an SslStream and calls
/// SSL_export_keying_material in the libssl the runtime already loaded. If anything is not as expected it
/// returns null, and the server then offers tls-server-end-point only.
/// </summary>
public static partial class TlsExporter
{
    private const string Label = "EXPORTER-Channel-Binding";

    /// <summary>The 32 bytes of tls-exporter channel binding data, or null when unavailable.</summary>
    public static byte[]? ChannelBinding(SslStream stream)
    {
        if (!OperatingSystem.IsLinux())
        {
            return null;
        }

        try
        {
            var handle = FindSslHandle(stream);
            if (handle is null)
            {
                return null;
            }

            var added = false;
            try
            {
                handle.DangerousAddRef(ref added);
                var output = new byte[32];
                var label = Encoding.ASCII.GetBytes(Label);
                var rc = SSL_export_keying_material(handle.DangerousGetHandle(), output, (nuint)output.Length, label, (nuint)label.Length, IntPtr.Zero, 0, 0);
                return rc == 1 ? output : null;
            }
            finally
            {
                if (added)
                {
                    handle.DangerousRelease();
                }
            }
        }
        catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException or MemberAccessException or InvalidCastException or TargetException)
        {
            return null;
        }
    }

    private static SafeHandle? FindSslHandle(SslStream stream)
    {
        const BindingFlags Flags = BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.Public;
        foreach (var field in typeof(SslStream).GetFields(Flags))
        {
            if (!typeof(SafeHandle).IsAssignableFrom(field.FieldType))
            {
                continue;
            }

            var value = field.GetValue(stream);
            if (value is null)
            {
                continue;
            }

            if (value.GetType().Name == "SafeSslHandle")
            {
                return (SafeHandle)value;
            }

            // SafeDeleteSslContext wraps the SafeSslHandle.
            foreach (var inner in value.GetType().GetFields(Flags))
            {
                if (inner.FieldType.Name == "SafeSslHandle")
                {
                    return inner.GetValue(value) as SafeHandle;
                }
            }
        }

        return null;
    }

    [LibraryImport("libssl.so.3")]
    private static partial int SSL_export_keying_material(IntPtr ssl, [Out] byte[] output, nuint outputLength, byte[] label, nuint labelLength, IntPtr context, nuint contextLength, int useContext);
}
