using Xmpp.Core.Stanzas;

namespace Xmpp.Core.Xml;

/// <summary>
/// Read-only wrapper between the socket and XmlReader. It counts bytes since the last stanza boundary so
/// that a single huge token (a 100 MB attribute) is refused before XmlReader buffers it, and it carries the
/// cancellation token XmlReader.ReadAsync cannot take.
/// </summary>
internal sealed class MeteredStream : Stream
{
    // XmlReader reads ahead by at most a buffer or two; the boundary check allows for that.
    private const int ReadChunk = 4096;
    private const int Slack = 4 * ReadChunk;

    private readonly Stream _inner;
    private readonly long _limit;
    private long _sinceBoundary;

    public MeteredStream(Stream inner, int maxStanzaBytes)
    {
        _inner = inner;
        _limit = (long)maxStanzaBytes + Slack;
    }

    public CancellationToken Token { get; set; }

    /// <summary>Whether the connection has ended (a read returned 0).</summary>
    public bool SawEof { get; private set; }

    public void MarkBoundary() => _sinceBoundary = 0;

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override int Read(byte[] buffer, int offset, int count) =>
        throw new NotSupportedException("synchronous reads are not used on network streams");

    public override async Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        await ReadAsync(buffer.AsMemory(offset, count), cancellationToken).ConfigureAwait(false);

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_sinceBoundary > _limit)
        {
            throw new XmppStreamException(StreamErrorCondition.PolicyViolation, "stanza too large");
        }

        // A zero-byte read first waits for data without a buffer: while a connection is idle, neither the
        // socket read nor SslStream (which returns its read buffer to the pool during zero-byte reads)
        // holds memory. This is what makes idle sessions cheap (Kestrel does the same).
        await _inner.ReadAsync(Memory<byte>.Empty, Token).ConfigureAwait(false);
        var n = await _inner.ReadAsync(buffer[..Math.Min(buffer.Length, ReadChunk)], Token).ConfigureAwait(false);
        _sinceBoundary += n;
        if (n == 0)
        {
            SawEof = true;
        }

        return n;
    }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
