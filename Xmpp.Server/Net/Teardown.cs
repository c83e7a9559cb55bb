using System.Net.Sockets;
using NLog;

namespace Xmpp.Server.Net;

/// <summary>The end of every connection, client or server: let the writer finish, then release the transport.</summary>
internal static class Teardown
{
    /// <summary>
    /// Waits up to <paramref name="closeTimeout"/> for the writer to send what is queued (the closing tag
    /// included), cancels the connection's work, and disposes the stream and the socket. With
    /// <paramref name="drain"/> (a stream error was sent to a peer that may still be sending, a flood for
    /// example), what arrives is read and discarded for up to a second first: closing a socket with unread
    /// data makes it send a reset, and the reset can destroy the stream error before the peer reads it.
    /// </summary>
    public static async Task ReleaseAsync(Task writer, TimeSpan closeTimeout, CancellationTokenSource cts, Stream? stream, Socket? socket, Logger log, bool drain = false)
    {
        try
        {
            await writer.WaitAsync(closeTimeout).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            log.Debug("Writer did not finish in time");
        }

        if (drain && stream is not null)
        {
            await DrainAsync(stream).ConfigureAwait(false);
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

    private static async Task DrainAsync(Stream stream)
    {
        using var budget = new CancellationTokenSource(TimeSpan.FromSeconds(1));
        var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(8192);
        try
        {
            while (await stream.ReadAsync(buffer, budget.Token).ConfigureAwait(false) > 0)
            {
            }
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException or OperationCanceledException or InvalidOperationException or NotSupportedException)
        {
            // The peer closed, reset, or kept sending past the budget: nothing more to do.
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
