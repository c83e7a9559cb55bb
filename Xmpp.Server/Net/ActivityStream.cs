using System.Net.Sockets;

namespace Xmpp.Server.Net;

/// <summary>
/// The socket stream with the time of the last successful read, under TLS, so that every byte from the
/// peer (stanzas, whitespace keepalives, TLS records) counts as a sign of life for the idle timeout.
/// Over a socket, writes go to the socket without waiting first (see <see cref="WriteAsync(ReadOnlyMemory{byte}, CancellationToken)"/>).
/// </summary>
public sealed class ActivityStream : Stream
{
    private readonly Stream _inner;
    private readonly Socket? _socket;
    private long _lastRead = Environment.TickCount64;
    private IOException? _writeFailure;

    public ActivityStream(Stream inner)
    {
        _inner = inner;
        if (inner is NetworkStream { Socket: { } socket })
        {
            try
            {
                // Synchronous calls on the socket return WouldBlock instead of waiting; asynchronous ones are
                // unchanged (the descriptor is non-blocking underneath for them anyway).
                socket.Blocking = false;
                _socket = socket;
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
            {
                // Closed already: writes go through the stream and fail there.
            }
        }
    }

    /// <summary>Why a send to the socket failed (the peer is gone); null while sends succeed. Writes after it are discarded.</summary>
    public IOException? WriteFailure => Volatile.Read(ref _writeFailure);

    /// <summary>Environment.TickCount64 at the last read that returned data.</summary>
    public long LastRead => Volatile.Read(ref _lastRead);

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var n = await _inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        if (n > 0)
        {
            Volatile.Write(ref _lastRead, Environment.TickCount64);
        }

        return n;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException("reads are asynchronous");

    /// <summary>
    /// Over a socket: sends what the socket takes now, and waits (asynchronously, through the stream) only for
    /// the rest. A send to a peer that has gone (EPIPE, ECONNRESET: a client that closes its socket right after
    /// its closing tag, a phone that lost its network) does not fail the write: the failure is kept in
    /// <see cref="WriteFailure"/>, and this write and every later one are discarded. Whoever writes through TLS
    /// looks there after each write (<see cref="Streams.Transports.ByteStreamTransport"/>). Failing the write
    /// instead made SslStream and the awaits above it throw the failure again at every level, four exceptions
    /// per such logout, each capturing a stack trace (bench/README, 2026-12-06); before that, the socket
    /// stream's own exception formatted its stack trace, about a tenth of a login's CPU (2026-12-05).
    /// </summary>
    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_socket is null)
        {
            return _inner.WriteAsync(buffer, cancellationToken);
        }

        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled(cancellationToken);
        }

        if (WriteFailure is not null)
        {
            return ValueTask.CompletedTask;
        }

        var sent = 0;
        while (sent < buffer.Length)
        {
            int n;
            SocketError error;
            try
            {
                n = _socket.Send(buffer.Span[sent..], SocketFlags.None, out error);
            }
            catch (ObjectDisposedException ex)
            {
                return ValueTask.FromException(ex);
            }

            if (error == SocketError.Success)
            {
                sent += n;
            }
            else if (error == SocketError.WouldBlock)
            {
                // The send buffer is full (a slow reader): the rest waits for the socket to drain, cancellably.
                return _inner.WriteAsync(buffer[sent..], cancellationToken);
            }
            else
            {
                var cause = new SocketException((int)error);
                Interlocked.CompareExchange(ref _writeFailure, new IOException($"Unable to write data to the transport connection: {cause.Message}.", cause), null);
                return ValueTask.CompletedTask;
            }
        }

        return ValueTask.CompletedTask;
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException("writes are asynchronous");

    public override Task FlushAsync(CancellationToken cancellationToken) => _inner.FlushAsync(cancellationToken);

    public override void Flush() => _inner.Flush();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _inner.Dispose();
        }

        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        await _inner.DisposeAsync().ConfigureAwait(false);
        await base.DisposeAsync().ConfigureAwait(false);
    }
}
