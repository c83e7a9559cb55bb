using System.Net.WebSockets;
using System.Text;
using Xmpp.Core;
using Xmpp.Core.Xml;

namespace Xmpp.Server.Net;

/// <summary>
/// XMPP over WebSocket (RFC 7395) as the byte stream <see cref="Streams.C2sStateMachine"/> speaks, so web clients
/// reach the same stream state machine as TCP clients. Inbound, each WebSocket message is one element:
/// &lt;open/&gt; becomes a stream header and &lt;close/&gt; the closing tag (§3.3). Outbound, what the
/// connection writes is cut at its top-level element boundaries into one message each (§3.3.3): the
/// header becomes &lt;open/&gt;, the closing tag &lt;close/&gt;, stanzas carry xmlns='jabber:client' and
/// stream-namespace elements declare their prefix (§3.3.5).
/// </summary>
[Specification("RFC 7395", "§3", Note = "XMPP over WebSocket: the xmpp subprotocol, open/close framing, one element per message, on the HTTPS listener.")]
public sealed class WebSocketFramingStream(WebSocket socket, int maxMessageBytes) : MessageTransportStream
{
    public const string Framing = "urn:ietf:params:xml:ns:xmpp-framing";

    private readonly StringBuilder _pendingOut = new();
    private readonly SemaphoreSlim _sendGate = new(1, 1);
    private byte[] _in = [];
    private int _inOffset;
    private bool _closed;

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        while (_inOffset >= _in.Length)
        {
            if (_closed || socket.State is not (WebSocketState.Open or WebSocketState.CloseSent))
            {
                return 0;
            }

            var message = await ReceiveAsync(cancellationToken).ConfigureAwait(false);
            if (message is null)
            {
                _closed = true;
                return 0;
            }

            _in = Encoding.UTF8.GetBytes(Inbound(message));
            _inOffset = 0;
        }

        var n = Math.Min(buffer.Length, _in.Length - _inOffset);
        _in.AsMemory(_inOffset, n).CopyTo(buffer);
        _inOffset += n;
        return n;
    }

    /// <summary>One whole text message, or null when the peer closed.</summary>
    private async Task<string?> ReceiveAsync(CancellationToken ct)
    {
        var buffer = new byte[8192];
        using var message = new MemoryStream();
        while (true)
        {
            var result = await socket.ReceiveAsync(buffer, ct).ConfigureAwait(false);
            if (result.MessageType == WebSocketMessageType.Close)
            {
                return null;
            }

            if (result.MessageType == WebSocketMessageType.Binary)
            {
                // §3.2: only text frames carry XMPP.
                throw new Core.Stanzas.XmppStreamException(Core.Stanzas.StreamErrorCondition.BadFormat, "binary WebSocket messages are not XMPP");
            }

            message.Write(buffer, 0, result.Count);
            if (message.Length > maxMessageBytes)
            {
                throw new Core.Stanzas.XmppStreamException(Core.Stanzas.StreamErrorCondition.PolicyViolation, "WebSocket message too large");
            }

            if (result.EndOfMessage)
            {
                return Encoding.UTF8.GetString(message.GetBuffer(), 0, (int)message.Length);
            }
        }
    }

    /// <summary>§3.3.1 and §3.6: the framing elements become the stream header and closing tag the connection reads.</summary>
    private static string Inbound(string message)
    {
        var text = message.Trim();
        if (!text.Contains(Framing, StringComparison.Ordinal) || !(text.StartsWith("<open", StringComparison.Ordinal) || text.StartsWith("<close", StringComparison.Ordinal)))
        {
            return text;
        }

        Element framing;
        try
        {
            framing = ElementParser.Parse(text);
        }
        catch (System.Xml.XmlException)
        {
            return text;
        }

        if (framing.Is("close", Framing))
        {
            return "</stream:stream>";
        }

        var sb = new StringBuilder("<stream:stream xmlns='").Append(Ns.Client).Append("' xmlns:stream='").Append(Ns.Stream).Append('\'');
        foreach (var name in new[] { "to", "from", "version", "id" })
        {
            if (framing.GetAttribute(name) is { } value)
            {
                sb.Append(' ').Append(name).Append("='");
                ElementWriter.Escape(sb, value, attribute: true);
                sb.Append('\'');
            }
        }

        if (framing.GetAttribute("lang", Ns.Xml) is { } lang)
        {
            sb.Append(" xml:lang='");
            ElementWriter.Escape(sb, lang, attribute: true);
            sb.Append('\'');
        }

        return sb.Append('>').ToString();
    }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        await _sendGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            _pendingOut.Append(Encoding.UTF8.GetString(buffer.Span));
            foreach (var message in Split())
            {
                if (socket.State != WebSocketState.Open)
                {
                    return;
                }

                await socket.SendAsync(Encoding.UTF8.GetBytes(message), WebSocketMessageType.Text, endOfMessage: true, cancellationToken).ConfigureAwait(false);
                if (message.StartsWith("<close", StringComparison.Ordinal))
                {
                    // §3.6: after <close/>, the WebSocket closes too.
                    await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, cancellationToken).ConfigureAwait(false);
                }
            }
        }
        finally
        {
            _sendGate.Release();
        }
    }

    /// <summary>The complete top-level units written so far, as WebSocket messages; what is left waits for more.</summary>
    private List<string> Split()
    {
        var messages = new List<string>();
        foreach (var unit in OutputSplitter.Take(_pendingOut))
        {
            messages.Add(unit.Kind switch
            {
                OutputUnitKind.Header => Open(unit.Text),
                OutputUnitKind.Close => "<close xmlns='" + Framing + "'/>",
                _ => unit.Text,
            });
        }

        return messages;
    }

    /// <summary>§3.3.2: the server's stream header as &lt;open/&gt; with the same from, id, version and language.</summary>
    private static string Open(string header)
    {
        var sb = new StringBuilder("<open xmlns='").Append(Framing).Append('\'');
        foreach (var (name, value) in OutputSplitter.HeaderAttributes(header))
        {
            if (name is "from" or "id" or "version" or "to" or "xml:lang")
            {
                sb.Append(' ').Append(name).Append("='").Append(value).Append('\'');
            }
        }

        return sb.Append("/>").ToString();
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _sendGate.Dispose();
            socket.Dispose();
        }

        base.Dispose(disposing);
    }
}
