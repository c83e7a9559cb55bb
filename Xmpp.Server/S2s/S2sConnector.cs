using System.Net;
using System.Net.Sockets;
using NLog;
using Xmpp.Server.Hosting;
using Xmpp.Server.Streams;

namespace Xmpp.Server.S2s;

/// <summary>
/// The connect phase of an outgoing server-to-server stream, before the connection core runs it: RFC 6120 §3.2,
/// SRV targets in order (XEP-0368 direct TLS first at equal priority), each address within the connect timeout.
/// The first TCP connection made is the stream's, whatever comes of it (the remaining targets are not tried).
/// </summary>
public static class S2sConnector
{
    /// <summary>A transport on the first address that accepts, with whether it speaks TLS from the first byte; or null and why not.</summary>
    public static async Task<(IStreamTransport? Transport, bool DirectTls, string Reason)> ConnectAsync(ServerContext ctx, SrvResolver resolver, string remote, Logger log, CancellationToken ct)
    {
        var reason = "no usable target";
        foreach (var target in await resolver.ResolveAsync(remote, ct).ConfigureAwait(false))
        {
            var addresses = await resolver.AddressesAsync(target.Host, ct).ConfigureAwait(false);
            if (addresses.Count == 0)
            {
                reason = $"{target.Host} has no address";
                continue;
            }

            foreach (var address in addresses)
            {
                var endpoint = new IPEndPoint(address, target.Port);
                var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                try
                {
                    using var connect = CancellationTokenSource.CreateLinkedTokenSource(ct);
                    connect.CancelAfter(ctx.Options.S2s.ConnectTimeout);
                    await socket.ConnectAsync(endpoint, connect.Token).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is SocketException || (ex is OperationCanceledException && !ct.IsCancellationRequested))
                {
                    socket.Dispose();
                    reason = $"cannot connect to {endpoint}: {(ex is SocketException se ? se.SocketErrorCode.ToString() : "timeout")}";
                    log.Info("s2s to {Remote}: {Reason}", remote, reason);
                    continue;
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }

                log.Info("s2s connected to {Remote} at {Endpoint}{Mode}", remote, endpoint, target.DirectTls ? " (direct TLS)" : string.Empty);
                return (S2sTls.Transport(ctx, socket, target.DirectTls), target.DirectTls, string.Empty);
            }
        }

        return (null, false, reason);
    }
}
