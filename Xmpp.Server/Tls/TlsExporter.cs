using System.Net.Security;
using System.Text;

namespace Xmpp.Server.Tls;

/// <summary>
/// Keying material exporter (RFC 5705 / RFC 8446 §7.5) for tls-exporter channel binding (RFC 9266).
/// .NET has no public API for it, so on Linux this calls SSL_export_keying_material on the OpenSSL SSL*
/// behind the SslStream (<see cref="OpenSsl"/>). If anything is not as expected it returns null, and the
/// server then offers tls-server-end-point only.
/// </summary>
public static class TlsExporter
{
    private const string Label = "EXPORTER-Channel-Binding";

    /// <summary>The 32 bytes of tls-exporter channel binding data, or null when unavailable.</summary>
    public static byte[]? ChannelBinding(SslStream stream)
    {
        var output = new byte[32];
        var label = Encoding.ASCII.GetBytes(Label);
        return OpenSsl.WithHandle(stream, ssl =>
            OpenSsl.SSL_export_keying_material(ssl, output, (nuint)output.Length, label, (nuint)label.Length, IntPtr.Zero, 0, 0) == 1)
            ? output
            : null;
    }
}
