using System.Buffers;

namespace Xmpp.Core.Xml;

/// <summary>
/// An <see cref="IBufferWriter{T}"/> of bytes over an array rented from the shared pool: output is serialised
/// straight into it and written from it. <see cref="Release"/> gives the array back (an idle connection holds none).
/// </summary>
public sealed class PooledBufferWriter : IBufferWriter<byte>
{
    private byte[]? _buffer;
    private int _written;

    public ReadOnlyMemory<byte> WrittenMemory => _buffer is null ? ReadOnlyMemory<byte>.Empty : _buffer.AsMemory(0, _written);

    public ReadOnlySpan<byte> WrittenSpan => WrittenMemory.Span;

    public int WrittenCount => _written;

    /// <summary>Starts over, keeping the array.</summary>
    public void Clear() => _written = 0;

    /// <summary>Gives the array back to the pool.</summary>
    public void Release()
    {
        if (_buffer is not null)
        {
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = null;
        }

        _written = 0;
    }

    public void Advance(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        if (_buffer is null || _written + count > _buffer.Length)
        {
            throw new InvalidOperationException("advanced past the buffer");
        }

        _written += count;
    }

    public Memory<byte> GetMemory(int sizeHint = 0)
    {
        Ensure(sizeHint);
        return _buffer.AsMemory(_written);
    }

    public Span<byte> GetSpan(int sizeHint = 0)
    {
        Ensure(sizeHint);
        return _buffer.AsSpan(_written);
    }

    [System.Diagnostics.CodeAnalysis.MemberNotNull(nameof(_buffer))]
    private void Ensure(int sizeHint)
    {
        var needed = _written + Math.Max(sizeHint, 1);
        if (_buffer is not null && needed <= _buffer.Length)
        {
            return;
        }

        var bigger = ArrayPool<byte>.Shared.Rent(Math.Max(needed, _buffer is null ? 1024 : _buffer.Length * 2));
        if (_buffer is not null)
        {
            _buffer.AsSpan(0, _written).CopyTo(bigger);
            ArrayPool<byte>.Shared.Return(_buffer);
        }

        _buffer = bigger;
    }
}
