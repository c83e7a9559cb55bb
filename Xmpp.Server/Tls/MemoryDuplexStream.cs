using System.IO.Pipelines;

namespace Xmpp.Server.Tls;

/// <summary>One end of an in-memory connection: what one end writes, the other reads (for TLS handshakes with ourselves).</summary>
internal sealed class MemoryDuplexStream : Stream
{
    private readonly Stream _input;
    private readonly Stream _output;

    private MemoryDuplexStream(Stream input, Stream output)
    {
        _input = input;
        _output = output;
    }

    /// <summary>Two connected ends.</summary>
    public static (Stream A, Stream B) CreatePair()
    {
        var toB = new Pipe();
        var toA = new Pipe();
        return (new MemoryDuplexStream(toA.Reader.AsStream(), toB.Writer.AsStream()), new MemoryDuplexStream(toB.Reader.AsStream(), toA.Writer.AsStream()));
    }

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override int Read(byte[] buffer, int offset, int count) => _input.Read(buffer, offset, count);

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => _input.ReadAsync(buffer, cancellationToken);

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => _input.ReadAsync(buffer, offset, count, cancellationToken);

    public override void Write(byte[] buffer, int offset, int count) => _output.Write(buffer, offset, count);

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) => _output.WriteAsync(buffer, cancellationToken);

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => _output.WriteAsync(buffer, offset, count, cancellationToken);

    public override void Flush() => _output.Flush();

    public override Task FlushAsync(CancellationToken cancellationToken) => _output.FlushAsync(cancellationToken);

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _input.Dispose();
            _output.Dispose();
        }

        base.Dispose(disposing);
    }
}
