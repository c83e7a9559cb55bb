using System.Buffers;
using Xmpp.Core.Stanzas;

namespace Xmpp.Core.Xml;

/// <summary>The same tokenizer for transports whose messages each carry one element (WebSocket, BOSH).</summary>
public sealed partial class XmppStreamReader
{
    private bool _messages;
    private int _baseBindings;

    /// <summary>
    /// A reader for transports that carry one element per message (RFC 7395 §3.3.3; XEP-0124 bodies), with no
    /// stream header: each message is parsed by <see cref="ParseMessage"/>, with jabber:client as the default
    /// namespace and the stream: prefix bound, as a stream header would have them.
    /// </summary>
    public static XmppStreamReader ForMessages(XmlReaderLimits? limits = null)
    {
        var reader = new XmppStreamReader(Stream.Null, limits) { _headerSeen = true, _messages = true };
        reader._bindings.Add((string.Empty, Ns.Client));
        reader._bindings.Add(("stream", Ns.Stream));
        reader._baseBindings = reader._bindings.Count;
        return reader;
    }

    /// <summary>
    /// The one element of a complete message (whitespace around it allowed, an XML declaration before it
    /// too), or null when the message holds only whitespace. Throws the RFC's stream error as a stream would.
    /// </summary>
    public Element? ParseMessage(ReadOnlySpan<byte> message)
    {
        if (!_messages)
        {
            throw new InvalidOperationException("not a message reader");
        }

        if (message.Length > _limits.MaxStanzaBytes)
        {
            throw new XmppStreamException(StreamErrorCondition.PolicyViolation, "stanza too large");
        }

        Element? result = null;
        _buf = ArrayPool<byte>.Shared.Rent(Math.Max(message.Length, 1));
        message.CopyTo(_buf);
        _start = 0;
        _end = message.Length;
        _anyToken = false;
        try
        {
            while (TryParse(out var ev))
            {
                if (ev.Kind != XmppStreamEventKind.Element || result is not null)
                {
                    throw NotWellFormed("a message holds one element");
                }

                result = ev.Element;
            }

            if (_buf is not null || _open.Count > 0)
            {
                throw NotWellFormed("an incomplete element");
            }

            return result;
        }
        finally
        {
            if (_buf is not null)
            {
                ArrayPool<byte>.Shared.Return(_buf);
                _buf = null;
            }

            _start = _end = _scan = 0;
            _quote = 0;
            _stanzaBytes = 0;
            _open.Clear();
            _bindings.RemoveRange(_baseBindings, _bindings.Count - _baseBindings);
        }
    }
}
