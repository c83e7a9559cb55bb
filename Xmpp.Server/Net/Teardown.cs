using System.Net.Sockets;
using NLog;

namespace Xmpp.Server.Net;

/// <summary>The end of every connection, client or server: let the writer finish, then release the transport.</summary>
internal static class Teardown
{
    /// <summary>
    /// Waits up to <paramref name="closeTimeout"/> for the writer to send what is queued (the closing tag
    /// included), cancels the connection's work, and disposes the stream and the socket.
    /// </summary>
    public static async Task ReleaseAsync(Task writer, TimeSpan closeTimeout, CancellationTokenSource cts, Stream? stream, Socket? socket, Logger log)
    {
        try
        {
            await writer.WaitAsync(closeTimeout).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            log.Debug("Writer did not finish in time");
        }

        await cts.CancelAsync().ConfigureAwait(false);
        try
        {
            if (stream is not null)
            {
                await stream.DisposeAsync().ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException)
        {
            log.Debug("Error disposing stream: {Reason}", ex.Message);
        }

        socket?.Dispose();
    }
}
