using System.Net.Security;
using System.Runtime.InteropServices;
using Xmpp.Server.Tls;

namespace Xmpp.Tests.EndToEnd;

/// <summary>
/// tls-unique computed the way Python's ssl module does (CPython's _ssl get_channel_binding), straight from
/// OpenSSL, so that the tests do not check the server's <see cref="TlsUnique"/> against itself: the Finished
/// message this end sent, unless the session was resumed XOR this end is the server.
/// </summary>
internal static class OpenSslFinished
{
    public static byte[]? Compute(SslStream stream, bool isServer = false)
    {
        byte[]? result = null;
        OpenSsl.WithHandle(stream, ssl =>
        {
            var buffer = new byte[64];
            var own = (SSL_session_reused(ssl) == 1) == isServer;
            var length = own ? SSL_get_finished(ssl, buffer, (nuint)buffer.Length) : SSL_get_peer_finished(ssl, buffer, (nuint)buffer.Length);
            result = buffer[..(int)length];
            return true;
        });
        return result;
    }

    [DllImport("libssl.so.3")]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern nuint SSL_get_finished(IntPtr ssl, [Out] byte[] buffer, nuint count);

    [DllImport("libssl.so.3")]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern nuint SSL_get_peer_finished(IntPtr ssl, [Out] byte[] buffer, nuint count);

    [DllImport("libssl.so.3")]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern int SSL_session_reused(IntPtr ssl);
}
