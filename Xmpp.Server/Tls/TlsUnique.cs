using System.Buffers.Binary;
using System.Net.Security;
using System.Runtime.InteropServices;
using System.Security.Authentication;
using System.Security.Authentication.ExtendedProtection;

namespace Xmpp.Server.Tls;

/// <summary>
/// tls-unique channel binding data (RFC 5929 §3) as OpenSSL defines it, which is what the clients that ask
/// for it compute: the client's Finished message of a full handshake (the server's of a resumed one). On
/// TLS 1.3, which RFC 9266 §1 leaves without a tls-unique definition, OpenSSL, Python's ssl module, pyOpenSSL
/// and ejabberd's TLS layer keep the same rule, and the TLS 1.3 Finished covers the whole transcript.
/// </summary>
public static class TlsUnique
{
    private static ReadOnlySpan<byte> Prefix => "tls-unique:"u8;

    /// <summary>
    /// The tls-unique data of a connection, from either end (an SslStream answers with what its own side
    /// computes, and both sides agree), or null when unavailable. On TLS 1.2 it is given only with the
    /// extended master secret (RFC 7627 §1: without it two connections can share a tls-unique value).
    /// </summary>
    public static byte[]? ChannelBinding(SslStream stream)
    {
        if (stream.SslProtocol != SslProtocols.Tls13 && !OpenSsl.HasExtendedMasterSecret(stream))
        {
            return null;
        }

        using var binding = stream.TransportContext?.GetChannelBinding(ChannelBindingKind.Unique);
        return binding is null ? null : ApplicationData(binding);
    }

    /// <summary>
    /// .NET hands channel bindings over as a SEC_CHANNEL_BINDINGS structure (eight 32-bit fields, the last two
    /// the application data's length and offset) whose application data is "tls-unique:" and the binding.
    /// </summary>
    private static byte[]? ApplicationData(ChannelBinding binding)
    {
        const int header = 8 * sizeof(int);
        if (binding.IsInvalid || binding.Size < header)
        {
            return null;
        }

        var added = false;
        try
        {
            binding.DangerousAddRef(ref added);
            var raw = new byte[binding.Size];
            Marshal.Copy(binding.DangerousGetHandle(), raw, 0, raw.Length);
            var length = BinaryPrimitives.ReadInt32LittleEndian(raw.AsSpan(6 * sizeof(int)));
            var offset = BinaryPrimitives.ReadInt32LittleEndian(raw.AsSpan(7 * sizeof(int)));
            if (offset < header || length <= Prefix.Length || (long)offset + length > raw.Length)
            {
                return null;
            }

            var data = raw.AsSpan(offset, length);
            return data.StartsWith(Prefix) ? data[Prefix.Length..].ToArray() : null;
        }
        finally
        {
            if (added)
            {
                binding.DangerousRelease();
            }
        }
    }
}
