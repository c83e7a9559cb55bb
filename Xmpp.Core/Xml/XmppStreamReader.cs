using System.Buffers;
using System.Text;
using Xmpp.Core.Stanzas;

namespace Xmpp.Core.Xml;

/// <summary>
/// <see cref="IXmppStreamReader"/>: a tokenizer for the restricted XML of RFC 6120 §11 working directly on
/// UTF-8 bytes from a pooled buffer. It replaces System.Xml's XmlReader, whose async mode holds a 32 KiB byte
/// buffer and a 32K-char buffer per reader for the life of the connection (most of an idle session's memory).
/// Here a connection with no partial stanza pending holds no buffer at all: reads first wait with a zero-byte
/// read, then rent a buffer, and give it back as soon as every byte in it has been parsed.
/// Restricted XML (§11.1): comments, processing instructions, DTDs and entity references other than the five
/// predefined ones and character references are refused, with restricted-xml where the RFC names it and
/// not-well-formed for everything XML 1.0 and Namespaces in XML 1.0 forbid. Only UTF-8 (§11.6).
/// Create a new instance on every stream restart (after STARTTLS and after SASL success).
/// </summary>
public sealed partial class XmppStreamReader : IXmppStreamReader
{
    private const int ReadSize = 4096;

    private readonly Stream _input;
    private readonly XmlReaderLimits _limits;
    private readonly List<Frame> _open = [];
    private readonly List<(string Prefix, string Uri)> _bindings = [(XmlNames.XmlPrefix, Ns.Xml)];
    private readonly List<RawAttribute> _attrs = [];
    private byte[]? _buf;
    private int _start;
    private int _end;
    private int _scan;
    private byte _quote;
    private bool _eof;
    private bool _anyToken;
    private bool _bom;
    private bool _headerSeen;
    private string _rootPrefix = string.Empty;
    private string _rootLocal = string.Empty;
    private long _stanzaBytes;
    private bool _atBoundary;

    public XmppStreamReader(Stream input, XmlReaderLimits? limits = null)
    {
        _input = input;
        _limits = limits ?? new XmlReaderLimits();
    }

    /// <summary>Whether the reader holds a buffer now (false whenever no partial token is pending).</summary>
    internal bool HoldsBuffer => _buf is not null;

    public async ValueTask<XmppStreamEvent> ReadAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            if (TryParse(out var ev))
            {
                return ev;
            }

            if (_eof)
            {
                // The connection ended, possibly mid-stanza: a dropped connection, not malformed XML.
                return new XmppStreamEvent(XmppStreamEventKind.Eof);
            }

            await FillAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private async ValueTask FillAsync(CancellationToken cancellationToken)
    {
        var pending = _end - _start;

        // Everything pending belongs to the stanza being read: refuse it before buffering more than the limit
        // (and a read) of it, so a single huge token never grows the buffer without bound.
        if (_headerSeen && _stanzaBytes + pending > _limits.MaxStanzaBytes)
        {
            throw new XmppStreamException(StreamErrorCondition.PolicyViolation, "stanza too large");
        }

        if (!_headerSeen && pending > _limits.MaxStanzaBytes)
        {
            throw new XmppStreamException(StreamErrorCondition.PolicyViolation, "stream header too large");
        }

        if (_buf is null)
        {
            // Wait for data without a buffer: an idle connection holds none (SslStream also returns its
            // own read buffer to the pool during a zero-byte read; Kestrel does the same).
            await _input.ReadAsync(Memory<byte>.Empty, cancellationToken).ConfigureAwait(false);
            _buf = ArrayPool<byte>.Shared.Rent(ReadSize);
            _start = _end = 0;
        }
        else
        {
            if (_start > 0)
            {
                Buffer.BlockCopy(_buf, _start, _buf, 0, pending);
                _start = 0;
                _end = pending;
            }

            if (_buf.Length - _end < ReadSize / 2)
            {
                var bigger = ArrayPool<byte>.Shared.Rent(Math.Max(_buf.Length * 2, _end + ReadSize));
                Buffer.BlockCopy(_buf, 0, bigger, 0, _end);
                ArrayPool<byte>.Shared.Return(_buf);
                _buf = bigger;
            }
        }

        var n = await _input.ReadAsync(_buf.AsMemory(_end), cancellationToken).ConfigureAwait(false);
        if (n == 0)
        {
            _eof = true;
        }

        _end += n;
    }

    /// <summary>Parses complete tokens from the buffer until one of them completes an event.</summary>
    private bool TryParse(out XmppStreamEvent ev)
    {
        ev = default;
        try
        {
            while (_buf is not null && _start < _end)
            {
                var data = new ReadOnlySpan<byte>(_buf, _start, _end - _start);
                int used;
                bool done;
                if (data[0] == (byte)'<')
                {
                    used = Markup(data, out done, out ev);
                }
                else
                {
                    used = CharacterData(data);
                    done = false;
                }

                if (used == 0)
                {
                    return false;
                }

                Consume(used);
                if (done)
                {
                    return true;
                }
            }

            return false;
        }
        finally
        {
            if (_buf is not null && _start == _end)
            {
                ArrayPool<byte>.Shared.Return(_buf);
                _buf = null;
                _start = _end = 0;
            }
        }
    }

    private void Consume(int count)
    {
        _start += count;
        _stanzaBytes = _atBoundary ? 0 : _stanzaBytes + count;
        _atBoundary = false;
        _scan = 0;
        _quote = 0;
        _anyToken |= !_bom; // A byte order mark does not count: the XML declaration may follow it.
        _bom = false;
    }

    /// <summary>The token being consumed ends a stanza (or is whitespace between stanzas): the next one counts from zero.</summary>
    private void Boundary() => _atBoundary = true;

    /// <summary>Text up to the next '&lt;'; returns the bytes used (0: the text is not complete yet).</summary>
    private int CharacterData(ReadOnlySpan<byte> data)
    {
        if (_open.Count == 0)
        {
            // Between stanzas (and before the header) only whitespace: keepalives (RFC 6120 §4.6.1) are
            // consumed at once, so they never hold a buffer.
            var ws = data.IndexOfAnyExcept(XmlNames.Whitespace);
            if (ws == 0)
            {
                if (!_anyToken && XmlNames.Utf8Bom.StartsWith(data[..Math.Min(data.Length, 3)]))
                {
                    // A byte order mark may start the stream; wait for all of it.
                    _bom = true;
                    return data.Length < 3 ? 0 : 3;
                }

                throw _headerSeen
                    ? new XmppStreamException(StreamErrorCondition.BadFormat, "character data outside a stanza")
                    : new XmppStreamException(StreamErrorCondition.NotWellFormed, "character data before the stream header");
            }

            Boundary();
            return ws < 0 ? data.Length : ws;
        }

        var lt = data[_scan..].IndexOf((byte)'<');
        if (lt < 0)
        {
            _scan = data.Length;
            return 0;
        }

        lt += _scan;
        var raw = data[..lt];
        if (raw.IndexOf("]]>"u8) >= 0)
        {
            throw NotWellFormed("']]>' in character data");
        }

        _open[^1].Element.AddText(XmlText.Decode(raw, attribute: false));
        return lt;
    }

    private int Markup(ReadOnlySpan<byte> data, out bool done, out XmppStreamEvent ev)
    {
        done = false;
        ev = default;
        if (data.Length < 2)
        {
            return 0;
        }

        switch (data[1])
        {
            case (byte)'/':
                {
                    var gt = Find(data, (byte)'>');
                    if (gt < 0)
                    {
                        return 0;
                    }

                    done = EndTag(data[2..gt], out ev);
                    return gt + 1;
                }

            case (byte)'?':
                return ProcessingInstruction(data);

            case (byte)'!':
                return Declaration(data);

            default:
                {
                    var gt = FindTagEnd(data);
                    if (gt < 0)
                    {
                        return 0;
                    }

                    done = StartTag(data[1..gt], out ev);
                    return gt + 1;
                }
        }
    }

    private int Find(ReadOnlySpan<byte> data, byte value)
    {
        var i = data[_scan..].IndexOf(value);
        if (i < 0)
        {
            _scan = data.Length;
            return -1;
        }

        return i + _scan;
    }

    private int Find(ReadOnlySpan<byte> data, ReadOnlySpan<byte> value, int start = 0)
    {
        var from = Math.Max(start, _scan - value.Length + 1);
        var i = data[from..].IndexOf(value);
        if (i < 0)
        {
            _scan = data.Length;
            return -1;
        }

        return i + from;
    }

    /// <summary>The '&gt;' that ends a start tag, outside attribute quotes; -1 if not received yet.</summary>
    private int FindTagEnd(ReadOnlySpan<byte> data)
    {
        var i = Math.Max(_scan, 1);
        while (i < data.Length)
        {
            if (_quote != 0)
            {
                var q = data[i..].IndexOfAny(_quote, (byte)'<');
                if (q < 0)
                {
                    break;
                }

                i += q;
                if (data[i] == (byte)'<')
                {
                    throw NotWellFormed("'<' in an attribute value");
                }

                i++;
                _quote = 0;
                continue;
            }

            var j = data[i..].IndexOfAny(XmlNames.TagDelimiters);
            if (j < 0)
            {
                break;
            }

            i += j;
            var b = data[i];
            if (b == (byte)'>')
            {
                return i;
            }

            if (b == (byte)'<')
            {
                throw NotWellFormed("'<' inside a tag");
            }

            _quote = b;
            i++;
        }

        _scan = data.Length;
        return -1;
    }

    private int ProcessingInstruction(ReadOnlySpan<byte> data)
    {
        // RFC 6120 §11.1: no processing instructions; the XML declaration is allowed at the very start.
        if (_anyToken)
        {
            throw new XmppStreamException(StreamErrorCondition.RestrictedXml, "processing instructions are not allowed (RFC 6120 §11.1)");
        }

        // Only "<?xml" and whitespace can start the declaration: refuse anything else at once rather than
        // waiting for a "?>" that may never come. The terminator is searched for after "<?": in "<?>" the
        // '?' of the opening does not close it (found by fuzzing).
        var head = data[2..Math.Min(data.Length, 6)];
        for (var j = 0; j < head.Length; j++)
        {
            if (j < 3 ? head[j] != "xml"u8[j] : !XmlNames.IsWhitespace(head[j]))
            {
                throw new XmppStreamException(StreamErrorCondition.RestrictedXml, "processing instructions are not allowed (RFC 6120 §11.1)");
            }
        }

        var end = Find(data, "?>"u8, start: 2);
        if (end < 0)
        {
            return 0;
        }

        var body = data[2..end];
        if (!body.StartsWith("xml"u8) || (body.Length > 3 && !XmlNames.IsWhitespace(body[3])))
        {
            throw new XmppStreamException(StreamErrorCondition.RestrictedXml, "processing instructions are not allowed (RFC 6120 §11.1)");
        }

        var enc = body.IndexOf("encoding"u8);
        if (enc >= 0)
        {
            var rest = body[(enc + 8)..];
            var q = rest.IndexOfAny((byte)'\'', (byte)'"');
            if (q >= 0)
            {
                var value = rest[(q + 1)..];
                var close = value.IndexOf(rest[q]);
                if (close >= 0 && !Ascii.EqualsIgnoreCase(value[..close], "UTF-8"u8))
                {
                    throw new XmppStreamException(StreamErrorCondition.UnsupportedEncoding, "only UTF-8 is supported (RFC 6120 §11.6)");
                }
            }
        }

        return end + 2;
    }

    private int Declaration(ReadOnlySpan<byte> data)
    {
        if (data.Length < 3)
        {
            return 0;
        }

        if (data[2] == (byte)'-')
        {
            throw new XmppStreamException(StreamErrorCondition.RestrictedXml, "comments are not allowed (RFC 6120 §11.1)");
        }

        if (data[2] != (byte)'[')
        {
            throw new XmppStreamException(StreamErrorCondition.RestrictedXml, "DTDs and entity declarations are not allowed (RFC 6120 §11.1)");
        }

        var prefix = "<![CDATA["u8;
        if (!prefix.StartsWith(data[..Math.Min(data.Length, prefix.Length)]))
        {
            throw NotWellFormed("malformed CDATA section");
        }

        if (data.Length < prefix.Length)
        {
            return 0;
        }

        if (_open.Count == 0)
        {
            throw _headerSeen
                ? new XmppStreamException(StreamErrorCondition.BadFormat, "character data outside a stanza")
                : NotWellFormed("CDATA before the stream header");
        }

        _scan = Math.Max(_scan, prefix.Length);
        var end = Find(data, "]]>"u8);
        if (end < 0)
        {
            return 0;
        }

        _open[^1].Element.AddText(XmlText.Decode(data[prefix.Length..end], attribute: false, literal: true));
        return end + 3;
    }

    private bool EndTag(ReadOnlySpan<byte> raw, out XmppStreamEvent ev)
    {
        ev = default;
        var nameEnd = raw.IndexOfAny(XmlNames.Whitespace);
        var name = nameEnd < 0 ? raw : raw[..nameEnd];
        if (nameEnd >= 0 && raw[nameEnd..].IndexOfAnyExcept(XmlNames.Whitespace) >= 0)
        {
            throw NotWellFormed("malformed end tag");
        }

        if (!_headerSeen)
        {
            throw NotWellFormed("end tag before the stream header");
        }

        string prefix, local;
        if (_open.Count == 0)
        {
            (prefix, local) = (_rootPrefix, _rootLocal);
        }
        else
        {
            (prefix, local) = (_open[^1].Prefix, _open[^1].Element.Name);
        }

        if (!XmlNames.QNameEquals(name, prefix, local))
        {
            throw NotWellFormed("end tag does not match the start tag");
        }

        if (_open.Count == 0)
        {
            ev = new XmppStreamEvent(XmppStreamEventKind.End);
            return true;
        }

        var frame = _open[^1];
        _open.RemoveAt(_open.Count - 1);
        _bindings.RemoveRange(frame.BindingMark, _bindings.Count - frame.BindingMark);
        if (_open.Count > 0)
        {
            return false;
        }

        ev = Complete(frame.Element);
        return true;
    }

    private bool StartTag(ReadOnlySpan<byte> raw, out XmppStreamEvent ev)
    {
        ev = default;
        var empty = raw.Length > 0 && raw[^1] == (byte)'/';
        if (empty)
        {
            raw = raw[..^1];
        }

        var nameEnd = raw.IndexOfAny(XmlNames.Whitespace);
        var (prefix, local) = XmlNames.QName(nameEnd < 0 ? raw : raw[..nameEnd]);
        ReadAttributes(nameEnd < 0 ? [] : raw[nameEnd..]);

        if (_headerSeen && _open.Count + 1 > _limits.MaxDepth)
        {
            throw new XmppStreamException(StreamErrorCondition.PolicyViolation, "elements nested too deeply");
        }

        var mark = _bindings.Count;
        var defaultNs = DeclareNamespaces();
        var ns = Resolve(prefix, element: true);
        if (!_headerSeen)
        {
            ev = OpenStream(prefix, local, ns, defaultNs, empty);
            return true;
        }

        if (_open.Count == 0 && local == "stream" && ns == Ns.Stream)
        {
            // A second stream header inside the stream can never complete as a stanza: refuse it at once
            // instead of holding it open until the size limit or a timeout (a stream-header flood).
            throw new XmppStreamException(StreamErrorCondition.UnsupportedStanzaType, "a stream header inside the stream");
        }

        if (ns == _limits.ContentNamespace)
        {
            ns = Ns.Client;
        }

        var element = NewElement(local, ns);
        if (_open.Count > 0)
        {
            _open[^1].Element.Add(element);
        }

        if (!empty)
        {
            _open.Add(new Frame(element, prefix, mark));
            return false;
        }

        _bindings.RemoveRange(mark, _bindings.Count - mark);
        if (_open.Count > 0)
        {
            return false;
        }

        ev = Complete(element);
        return true;
    }

    /// <summary>
    /// The namespace declarations among the start tag's attributes (Namespaces in XML 1.0 §3), in scope from
    /// this element on, within the limits on declarations and attributes; returns the default namespace it declares.
    /// </summary>
    private string? DeclareNamespaces()
    {
        string? defaultNs = null;
        var declarations = 0;
        foreach (var a in _attrs)
        {
            if (a.Prefix.Length == 0 && a.Local == XmlNames.XmlnsPrefix)
            {
                defaultNs = a.Value;
                _bindings.Add((string.Empty, a.Value));
                declarations++;
            }
            else if (a.Prefix == XmlNames.XmlnsPrefix)
            {
                DeclarePrefix(a.Local, a.Value);
                declarations++;
            }
        }

        if (declarations > _limits.MaxNamespaceDeclarations)
        {
            throw new XmppStreamException(StreamErrorCondition.PolicyViolation, "too many namespace declarations on one element");
        }

        if (_attrs.Count - declarations > _limits.MaxAttributes)
        {
            throw new XmppStreamException(StreamErrorCondition.PolicyViolation, "too many attributes on one element");
        }

        return defaultNs;
    }

    /// <summary>The stream header (RFC 6120 §4.2): the root element, open for the life of the stream, never empty.</summary>
    private XmppStreamEvent OpenStream(string prefix, string local, string ns, string? defaultNs, bool empty)
    {
        if (empty)
        {
            throw NotWellFormed("empty stream element");
        }

        _headerSeen = true;
        _rootPrefix = prefix;
        _rootLocal = local;
        var ev = new XmppStreamEvent(XmppStreamEventKind.Header, Header: Header(local, ns, defaultNs));
        Boundary();
        return ev;
    }

    /// <summary>The element of a start tag with its attributes, each resolved to its namespace and unique (Namespaces in XML 1.0 §6.3).</summary>
    private Element NewElement(string local, string ns)
    {
        var element = new Element(local, ns);
        foreach (var a in _attrs)
        {
            if (a.Prefix == XmlNames.XmlnsPrefix || (a.Prefix.Length == 0 && a.Local == XmlNames.XmlnsPrefix))
            {
                continue;
            }

            var attrNs = a.Prefix.Length == 0 ? string.Empty : Resolve(a.Prefix, element: false);
            if (element.GetAttribute(a.Local, attrNs) is not null)
            {
                throw NotWellFormed("duplicate attribute");
            }

            element.SetAttribute(a.Local, attrNs, a.Value);
        }

        return element;
    }

    /// <summary>Attributes of a start tag: (S Name S? '=' S? quoted-value)* S? (XML 1.0 §3.1).</summary>
    private void ReadAttributes(ReadOnlySpan<byte> raw)
    {
        _attrs.Clear();
        while (true)
        {
            var ws = raw.IndexOfAnyExcept(XmlNames.Whitespace);
            if (ws < 0)
            {
                return;
            }

            if (ws == 0)
            {
                throw NotWellFormed("attributes must be separated by whitespace");
            }

            raw = raw[ws..];
            var eq = raw.IndexOf((byte)'=');
            if (eq <= 0)
            {
                throw NotWellFormed("attribute without a value");
            }

            var nameRaw = raw[..eq];
            var nameEnd = nameRaw.IndexOfAny(XmlNames.Whitespace);
            if (nameEnd >= 0)
            {
                if (nameRaw[nameEnd..].IndexOfAnyExcept(XmlNames.Whitespace) >= 0)
                {
                    throw NotWellFormed("malformed attribute");
                }

                nameRaw = nameRaw[..nameEnd];
            }

            var (prefix, local) = XmlNames.QName(nameRaw);
            raw = raw[(eq + 1)..];
            var q = raw.IndexOfAnyExcept(XmlNames.Whitespace);
            if (q < 0 || (raw[q] != (byte)'\'' && raw[q] != (byte)'"'))
            {
                throw NotWellFormed("attribute value must be quoted");
            }

            var quote = raw[q];
            raw = raw[(q + 1)..];
            var close = raw.IndexOf(quote);
            if (close < 0)
            {
                throw NotWellFormed("unterminated attribute value");
            }

            var valueRaw = raw[..close];
            if (valueRaw.IndexOf((byte)'<') >= 0)
            {
                throw NotWellFormed("'<' in an attribute value");
            }

            _attrs.Add(new RawAttribute(prefix, local, XmlText.Decode(valueRaw, attribute: true)));
            raw = raw[(close + 1)..];
        }
    }

    private void DeclarePrefix(string prefix, string uri)
    {
        // Namespaces in XML 1.0 §3: xmlns may not be declared, xml only to its own name, no empty URI.
        if (prefix == XmlNames.XmlnsPrefix || uri.Length == 0 || uri == Ns.Xmlns ||
            (prefix == XmlNames.XmlPrefix) != (uri == Ns.Xml))
        {
            throw NotWellFormed($"invalid namespace declaration for prefix '{prefix}'");
        }

        _bindings.Add((prefix, uri));
    }

    private string Resolve(string prefix, bool element)
    {
        if (prefix == XmlNames.XmlnsPrefix && element)
        {
            throw NotWellFormed("the xmlns prefix is reserved");
        }

        if (prefix == XmlNames.XmlPrefix && element)
        {
            // Allowed by Namespaces in XML, but no XMPP element lives in the xml namespace, and it cannot be
            // written without its reserved prefix (it may not be a default namespace): refused rather than
            // forwarded in a form the next parser rejects (found by fuzzing).
            throw new XmppStreamException(StreamErrorCondition.BadFormat, "elements in the xml namespace are not allowed");
        }

        for (var i = _bindings.Count - 1; i >= 0; i--)
        {
            if (_bindings[i].Prefix == prefix)
            {
                return _bindings[i].Uri;
            }
        }

        return prefix.Length == 0 ? string.Empty : throw NotWellFormed($"undeclared namespace prefix '{prefix}'");
    }

    private StreamHeader Header(string local, string ns, string? defaultNs)
    {
        string? to = null, from = null, version = null, lang = null, id = null;
        foreach (var a in _attrs)
        {
            if (a.Prefix == XmlNames.XmlPrefix && a.Local == "lang")
            {
                lang = a.Value;
            }
            else if (a.Prefix.Length == 0)
            {
                switch (a.Local)
                {
                    case "to": to = a.Value; break;
                    case "from": from = a.Value; break;
                    case "version": version = a.Value; break;
                    case "id": id = a.Value; break;
                    default: break;
                }
            }
        }

        return new StreamHeader(local, ns, defaultNs, to, from, version, lang, id);
    }

    private XmppStreamEvent Complete(Element element)
    {
        // What the stanza cost on the wire (all but its last tag), for output queues that bound bytes.
        element.WireSize = (int)Math.Min(_stanzaBytes, int.MaxValue);
        Boundary();
        return new XmppStreamEvent(XmppStreamEventKind.Element, Element: element);
    }

    private static XmppStreamException NotWellFormed(string reason) => new(StreamErrorCondition.NotWellFormed, reason);

    public void Dispose()
    {
        if (_buf is not null)
        {
            ArrayPool<byte>.Shared.Return(_buf);
            _buf = null;
        }
    }

    private readonly record struct Frame(Element Element, string Prefix, int BindingMark);

    private readonly record struct RawAttribute(string Prefix, string Local, string Value);
}
