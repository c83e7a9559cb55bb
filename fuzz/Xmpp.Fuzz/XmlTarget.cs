using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;

namespace Xmpp.Fuzz;

/// <summary>
/// The XML front end: the stream reader over the input, delivered in chunks whose size the first byte
/// picks (so element boundaries fall anywhere in a read). Every element it returns must serialise and
/// parse back to the same XML, since routing forwards what it parsed.
/// </summary>
public static class XmlTarget
{
    public static void Run(byte[] input)
    {
        if (input.Length == 0)
        {
            return;
        }

        var chunk = 1 + (input[0] % 64);
        var limits = new XmlReaderLimits { MaxStanzaBytes = 64 * 1024, MaxDepth = 32, MaxAttributes = 32, ContentNamespace = (input[0] & 0x80) != 0 ? Xmpp.Core.Ns.Server : null };
        using var reader = new XmppStreamReader(new ChunkedStream(input.AsMemory(1), chunk), limits);
        try
        {
            for (var n = 0; n < 10_000; n++)
            {
                var ev = reader.ReadAsync(CancellationToken.None).AsTask().GetAwaiter().GetResult();
                if (ev.Kind is XmppStreamEventKind.Eof or XmppStreamEventKind.End)
                {
                    return;
                }

                if (ev.Element is { } element)
                {
                    RoundTrip(element);
                }
            }
        }
        catch (XmppStreamException)
        {
            // Rejected with a stream error: the expected outcome for most inputs.
        }
    }

    private static void RoundTrip(Element element)
    {
        var xml = ElementWriter.ToXml(element, null);
        Element again;
        try
        {
            again = ElementParser.Parse(xml);
        }
        catch (Exception ex) when (ex is XmppStreamException or System.Xml.XmlException)
        {
            throw new FuzzFindingException($"the reader accepted an element whose serialisation does not parse: {ex.Message}\n{xml}");
        }

        var xml2 = ElementWriter.ToXml(again, null);
        if (xml2 != xml)
        {
            throw new FuzzFindingException($"serialisation is not stable:\n{xml}\n{xml2}");
        }
    }
}

/// <summary>A read-only stream returning at most <c>chunk</c> bytes per read.</summary>
internal sealed class ChunkedStream(ReadOnlyMemory<byte> data, int chunk) : Stream
{
    private int _position;

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => data.Length;

    public override long Position
    {
        get => _position;
        set => throw new NotSupportedException();
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        var n = Math.Min(Math.Min(chunk, buffer.Length), data.Length - _position);
        data.Span.Slice(_position, n).CopyTo(buffer);
        _position += n;
        return n;
    }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult(Read(buffer.Span));

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        Task.FromResult(Read(buffer.AsSpan(offset, count)));

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
