using System.Xml;
using Xmpp.Core.Stanzas;

namespace Xmpp.Core.Xml;

/// <summary>
/// <see cref="IXmppStreamReader"/> on System.Xml's XmlReader in async mode. Applies RFC 6120 §11
/// (restricted XML): no DTD (prohibited, so nothing is ever expanded or fetched), no comments, no
/// processing instructions, no entity references beyond the predefined five. Create a new instance on
/// every stream restart (after STARTTLS and after SASL success).
/// Only ReadAsync and node properties are used: helpers such as ReadSubtree or Skip can read past the
/// stanza and block on a live socket (dotnet/runtime#1029).
/// </summary>
public sealed class XmppStreamReader : IXmppStreamReader
{
    private readonly MeteredStream _input;
    private readonly XmlReader _reader;
    private readonly XmlReaderLimits _limits;
    private readonly Stack<Element> _open = new();
    private bool _headerSeen;
    private long _stanzaSize;

    public XmppStreamReader(Stream input, XmlReaderLimits? limits = null)
    {
        _limits = limits ?? new XmlReaderLimits();
        _input = new MeteredStream(input, _limits.MaxStanzaBytes);
        var settings = new XmlReaderSettings
        {
            Async = true,
            DtdProcessing = DtdProcessing.Prohibit,
            XmlResolver = null,
            CloseInput = false,
            IgnoreComments = false,
            IgnoreProcessingInstructions = false,
            IgnoreWhitespace = false,
            CheckCharacters = true,
            ConformanceLevel = ConformanceLevel.Document,
            MaxCharactersFromEntities = 0,
        };
        _reader = XmlReader.Create(_input, settings);
    }

    public async ValueTask<XmppStreamEvent> ReadAsync(CancellationToken cancellationToken)
    {
        _input.Token = cancellationToken;
        try
        {
            while (await _reader.ReadAsync().ConfigureAwait(false))
            {
                if (_reader.NodeType is XmlNodeType.Text or XmlNodeType.CDATA or XmlNodeType.Whitespace or XmlNodeType.SignificantWhitespace)
                {
                    // Value would finish a text node split across reads with a synchronous read on the
                    // socket; GetValueAsync does it asynchronously.
                    OnText(await _reader.GetValueAsync().ConfigureAwait(false));
                    continue;
                }

                var ev = Process();
                if (ev.HasValue)
                {
                    return ev.Value;
                }
            }

            return new XmppStreamEvent(XmppStreamEventKind.Eof);
        }
        catch (XmlException) when (_input.SawEof)
        {
            // The connection ended mid-document: a dropped connection, not malformed XML.
            return new XmppStreamEvent(XmppStreamEventKind.Eof);
        }
        catch (XmlException ex)
        {
            // A DTD is prohibited; System.Xml reports it as an XmlException mentioning the DTD.
            var condition = ex.Message.Contains("DTD", StringComparison.Ordinal)
                ? StreamErrorCondition.RestrictedXml
                : StreamErrorCondition.NotWellFormed;
            throw new XmppStreamException(condition, ex.Message, ex);
        }
    }

    private XmppStreamEvent? Process()
    {
        switch (_reader.NodeType)
        {
            case XmlNodeType.Element:
                return OnStartElement();
            case XmlNodeType.EndElement:
                return OnEndElement();
            case XmlNodeType.XmlDeclaration:
                return null;
            case XmlNodeType.Comment:
                throw new XmppStreamException(StreamErrorCondition.RestrictedXml, "comments are not allowed (RFC 6120 §11.1)");
            case XmlNodeType.ProcessingInstruction:
                throw new XmppStreamException(StreamErrorCondition.RestrictedXml, "processing instructions are not allowed (RFC 6120 §11.1)");
            case XmlNodeType.DocumentType:
            case XmlNodeType.EntityReference:
            case XmlNodeType.Entity:
                throw new XmppStreamException(StreamErrorCondition.RestrictedXml, "DTDs and entity references are not allowed (RFC 6120 §11.1)");
            default:
                throw new XmppStreamException(StreamErrorCondition.RestrictedXml, $"unexpected XML node {_reader.NodeType}");
        }
    }

    private XmppStreamEvent? OnStartElement()
    {
        if (!_headerSeen)
        {
            _headerSeen = true;
            var header = ReadHeader();
            if (_reader.IsEmptyElement)
            {
                throw new XmppStreamException(StreamErrorCondition.NotWellFormed, "empty stream element");
            }

            _input.MarkBoundary();
            return new XmppStreamEvent(XmppStreamEventKind.Header, Header: header);
        }

        if (_open.Count + 1 > _limits.MaxDepth)
        {
            throw new XmppStreamException(StreamErrorCondition.PolicyViolation, "elements nested too deeply");
        }

        var ns = _reader.NamespaceURI;
        if (_limits.ServerNamespaceAsClient && ns == Ns.Server)
        {
            ns = Ns.Client;
        }

        var element = new Element(_reader.LocalName, ns);
        _stanzaSize += 2 * _reader.LocalName.Length + 5;
        if (_reader.MoveToFirstAttribute())
        {
            var count = 0;
            do
            {
                if (_reader.NamespaceURI == Ns.Xmlns)
                {
                    continue;
                }

                if (++count > _limits.MaxAttributes)
                {
                    throw new XmppStreamException(StreamErrorCondition.PolicyViolation, "too many attributes");
                }

                var value = _reader.Value;
                _stanzaSize += _reader.LocalName.Length + value.Length + 4;
                element.SetAttribute(_reader.LocalName, _reader.NamespaceURI, value);
            }
            while (_reader.MoveToNextAttribute());

            _reader.MoveToElement();
        }

        CheckSize();
        if (_open.Count > 0)
        {
            _open.Peek().Add(element);
        }

        if (_reader.IsEmptyElement)
        {
            return _open.Count == 0 ? Complete(element) : null;
        }

        _open.Push(element);
        return null;
    }

    private XmppStreamEvent? OnEndElement()
    {
        if (_open.Count == 0)
        {
            return new XmppStreamEvent(XmppStreamEventKind.End);
        }

        var element = _open.Pop();
        return _open.Count == 0 ? Complete(element) : null;
    }

    private void OnText(string value)
    {
        if (_open.Count == 0)
        {
            // Whitespace between stanzas is a keepalive (RFC 6120 §4.6.1); any other text is not XMPP.
            if (!string.IsNullOrWhiteSpace(value))
            {
                throw new XmppStreamException(StreamErrorCondition.BadFormat, "character data outside a stanza");
            }

            _input.MarkBoundary();
            return;
        }

        _stanzaSize += value.Length;
        CheckSize();
        _open.Peek().AddText(value);
    }

    private XmppStreamEvent Complete(Element element)
    {
        _stanzaSize = 0;
        _input.MarkBoundary();
        return new XmppStreamEvent(XmppStreamEventKind.Element, Element: element);
    }

    private void CheckSize()
    {
        if (_stanzaSize > _limits.MaxStanzaBytes)
        {
            throw new XmppStreamException(StreamErrorCondition.PolicyViolation, "stanza too large");
        }
    }

    private StreamHeader ReadHeader()
    {
        string? defaultNs = null, to = null, from = null, version = null, lang = null, id = null;
        var localName = _reader.LocalName;
        var ns = _reader.NamespaceURI;
        if (_reader.MoveToFirstAttribute())
        {
            do
            {
                if (_reader.NamespaceURI == Ns.Xmlns)
                {
                    if (_reader.Prefix.Length == 0)
                    {
                        defaultNs = _reader.Value;
                    }

                    continue;
                }

                if (_reader.NamespaceURI == Ns.Xml && _reader.LocalName == "lang")
                {
                    lang = _reader.Value;
                    continue;
                }

                if (_reader.NamespaceURI.Length != 0)
                {
                    continue;
                }

                switch (_reader.LocalName)
                {
                    case "to": to = _reader.Value; break;
                    case "from": from = _reader.Value; break;
                    case "version": version = _reader.Value; break;
                    case "id": id = _reader.Value; break;
                    default: break;
                }
            }
            while (_reader.MoveToNextAttribute());

            _reader.MoveToElement();
        }

        return new StreamHeader(localName, ns, defaultNs, to, from, version, lang, id);
    }

    public void Dispose() => _reader.Dispose();
}
