using System.Buffers;
using System.Net;
using System.Net.Security;
using System.Net.WebSockets;
using Xmpp.Core;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;

namespace Xmpp.Server.Streams.Transports;

/// <summary>
/// XMPP over WebSocket (RFC 7395): every text message is one element (§3.3.3), parsed on its own by the
/// restricted-XML reader; &lt;open/&gt; and &lt;close/&gt; stand for the stream header and closing tag (§3.3.1,
/// §3.6). Every output item is serialised once, straight into a pooled buffer, and sent as one text message.
/// No STARTTLS: the TLS is the HTTPS listener's, underneath (§3.1), and it gives no channel binding of its own.
/// </summary>
[Specification("RFC 7395", "§3", Note = "XMPP over WebSocket: the xmpp subprotocol, open/close framing, one element per message, on the HTTPS listener.")]
public sealed class WebSocketTransport : IStreamTransport
{
    private const int ReceiveSize = 4096;
    private readonly WebSocket _socket;
    private readonly XmppStreamReader _parser;
    private readonly int _maxMessageBytes;
    private readonly PooledBufferWriter _out = new();
    private long _lastActivity = Environment.TickCount64;
    private bool _expectOpen = true;

    /// <param name="socket">The accepted WebSocket (subprotocol xmpp); disposing the transport disposes it.</param>
    /// <param name="maxMessageBytes">The largest message taken; a larger one is a policy-violation.</param>
    public WebSocketTransport(WebSocket socket, IPEndPoint remote, XmlReaderLimits limits, int maxMessageBytes)
    {
        _socket = socket;
        _parser = XmppStreamReader.ForMessages(limits);
        _maxMessageBytes = maxMessageBytes;
        Remote = remote;
    }

    public string Description => " (WebSocket)";

    public IPEndPoint Remote { get; }

    public bool IsSecure => true;

    public bool CanStartTls => false;

    public SslStream? Tls => null;

    public long LastActivity => Volatile.Read(ref _lastActivity);

    public async ValueTask<XmppStreamEvent> ReadAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            var message = await ReceiveAsync(cancellationToken).ConfigureAwait(false);
            if (message is not { } rented)
            {
                return new XmppStreamEvent(XmppStreamEventKind.Eof);
            }

            Element? element;
            try
            {
                element = _parser.ParseMessage(rented.Buffer.AsSpan(0, rented.Count));
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(rented.Buffer);
            }

            // §3.3.3 allows nothing but one element; a message of whitespace only is taken as a keepalive.
            if (element is not null)
            {
                return Translate(element);
            }
        }
    }

    /// <summary>§3.3.1 and §3.6: the framing elements are the stream's header and end; anything else is a first-level element.</summary>
    private XmppStreamEvent Translate(Element element)
    {
        if (element.Is("open", Ns.Framing))
        {
            if (!_expectOpen)
            {
                // As a second stream header on TCP: it can never be a stanza.
                throw new XmppStreamException(StreamErrorCondition.UnsupportedStanzaType, "<open/> inside the stream (RFC 7395 §3.3.1)");
            }

            _expectOpen = false;
            var header = new StreamHeader(
                "stream",
                Ns.Stream,
                Ns.Client,
                element.GetAttribute("to"),
                element.GetAttribute("from"),
                element.GetAttribute("version"),
                element.GetAttribute("lang", Ns.Xml),
                element.GetAttribute("id"));
            return new XmppStreamEvent(XmppStreamEventKind.Header, Header: header);
        }

        if (element.Is("close", Ns.Framing))
        {
            return new XmppStreamEvent(XmppStreamEventKind.End);
        }

        if (_expectOpen)
        {
            throw new XmppStreamException(StreamErrorCondition.InvalidNamespace, "the stream must start with <open xmlns='" + Ns.Framing + "'/> (RFC 7395 §3.3.1)");
        }

        return new XmppStreamEvent(XmppStreamEventKind.Element, Element: element);
    }

    /// <summary>One whole text message in a pooled array, or null when the peer closed the WebSocket.</summary>
    private async ValueTask<(byte[] Buffer, int Count)?> ReceiveAsync(CancellationToken ct)
    {
        if (_socket.State is not (WebSocketState.Open or WebSocketState.CloseSent))
        {
            return null;
        }

        // Wait for the next message without a buffer: an idle connection holds none.
        var first = await ReceiveFrameAsync(Memory<byte>.Empty, ct).ConfigureAwait(false);
        if (first is not { } head)
        {
            return null;
        }

        var buffer = ArrayPool<byte>.Shared.Rent(ReceiveSize);
        var count = 0;
        try
        {
            var end = head.EndOfMessage;
            while (!end)
            {
                if (count == buffer.Length)
                {
                    if (count >= _maxMessageBytes)
                    {
                        throw new XmppStreamException(StreamErrorCondition.PolicyViolation, "WebSocket message too large");
                    }

                    var bigger = ArrayPool<byte>.Shared.Rent(Math.Min(buffer.Length * 2, _maxMessageBytes + 1));
                    buffer.AsSpan(0, count).CopyTo(bigger);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = bigger;
                }

                var frame = await ReceiveFrameAsync(buffer.AsMemory(count), ct).ConfigureAwait(false);
                if (frame is not { } r)
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                    return null;
                }

                count += r.Count;
                end = r.EndOfMessage;
            }

            if (count > _maxMessageBytes)
            {
                throw new XmppStreamException(StreamErrorCondition.PolicyViolation, "WebSocket message too large");
            }

            Volatile.Write(ref _lastActivity, Environment.TickCount64);
            return (buffer, count);
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(buffer);
            throw;
        }
    }

    /// <summary>One receive; null on the peer's close. A WebSocket that went away is a lost connection to the core.</summary>
    private async ValueTask<ValueWebSocketReceiveResult?> ReceiveFrameAsync(Memory<byte> into, CancellationToken ct)
    {
        ValueWebSocketReceiveResult result;
        try
        {
            result = await _socket.ReceiveAsync(into, ct).ConfigureAwait(false);
        }
        catch (WebSocketException ex)
        {
            throw new IOException(ex.Message, ex);
        }

        Volatile.Write(ref _lastActivity, Environment.TickCount64);
        if (result.MessageType == WebSocketMessageType.Close)
        {
            return null;
        }

        if (result.MessageType == WebSocketMessageType.Binary)
        {
            // §3.2: only text messages carry XMPP.
            throw new XmppStreamException(StreamErrorCondition.BadFormat, "binary WebSocket messages are not XMPP (RFC 7395 §3.2)");
        }

        return result;
    }

    /// <summary>§3.3.1: a restart (after SASL) is a new &lt;open/&gt; on the same WebSocket.</summary>
    public void Restart() => _expectOpen = true;

    public ValueTask StartTlsAsServerAsync(ServerOptionsSelectionCallback options, CancellationToken cancellationToken) =>
        throw new NotSupportedException("no STARTTLS over WebSocket (RFC 7395 §3.1)");

    public ValueTask StartTlsAsClientAsync(SslClientAuthenticationOptions options, CancellationToken cancellationToken) =>
        throw new NotSupportedException("no STARTTLS over WebSocket (RFC 7395 §3.1)");

    public async ValueTask WriteAsync(IReadOnlyList<OutputItem> items, CancellationToken cancellationToken)
    {
        try
        {
            // Indexed rather than foreach: an enumerator over the interface would be one allocation per batch.
            for (var i = 0; i < items.Count; i++)
            {
                var item = items[i];
                if (item.Kind == OutputKind.Close)
                {
                    await CloseAsync(item.Error, cancellationToken).ConfigureAwait(false);
                    return;
                }

                await SendAsync(item, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (WebSocketException ex)
        {
            throw new IOException(ex.Message, ex);
        }
    }

    /// <summary>
    /// §3.6: the stream error if any, &lt;close/&gt;, then the WebSocket's own close (which also answers a close
    /// the peer started, so that its close handshake completes).
    /// </summary>
    private async ValueTask CloseAsync(StreamError? error, CancellationToken cancellationToken)
    {
        if (error is not null)
        {
            await SendAsync(OutputItem.Nonza(error.ToElement()), cancellationToken).ConfigureAwait(false);
        }

        await SendAsync(OutputItem.End(null), cancellationToken).ConfigureAwait(false);
        if (_socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
        {
            await _socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, cancellationToken).ConfigureAwait(false);
        }

        // Nothing follows the end: the output buffer goes back to the pool here, on the writer's side.
        _out.Release();
    }

    private async ValueTask SendAsync(OutputItem item, CancellationToken cancellationToken)
    {
        if (_socket.State != WebSocketState.Open)
        {
            return;
        }

        _out.Clear();
        Render(_out, item);
        await _socket.SendAsync(_out.WrittenMemory, WebSocketMessageType.Text, endOfMessage: true, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// The message an output item is (§3.3.2, §3.3.5, §3.6), written into <paramref name="w"/>; for the end of
    /// the stream only &lt;close/&gt; (its stream error is a message of its own, before it).
    /// </summary>
    internal static void Render(IBufferWriter<byte> w, OutputItem item)
    {
        switch (item.Kind)
        {
            case OutputKind.Header:
                WriteOpen(w, item.Header!);
                break;
            case OutputKind.Close:
                w.Write("<close xmlns='"u8);
                w.Write(FramingUtf8);
                w.Write("'/>"u8);
                break;
            case OutputKind.Nonza when item.Element!.Namespace == Ns.Stream:
                // §3.3.5: stream-namespace elements declare their prefix, as their message has no stream header.
                Utf8ElementWriter.WritePrefixed(w, "stream", item.Element, declare: true, childrenParent: Ns.Stream);
                break;
            default:
                // §3.3.5: every message is a standalone document, so each stanza carries xmlns='jabber:client'.
                Utf8ElementWriter.Write(w, item.Element!, parentNamespace: null);
                break;
        }
    }

    private static ReadOnlySpan<byte> FramingUtf8 => "urn:ietf:params:xml:ns:xmpp-framing"u8;

    /// <summary>§3.3.2: our stream header as &lt;open/&gt;, with from, id, version and language.</summary>
    private static void WriteOpen(IBufferWriter<byte> w, OutgoingHeader header)
    {
        w.Write("<open xmlns='"u8);
        w.Write(FramingUtf8);
        w.Write("'"u8);
        if (header.Id is not null)
        {
            w.Write(" id='"u8);
            Utf8ElementWriter.Escape(w, header.Id, attribute: true);
            w.Write("'"u8);
        }

        w.Write(" from='"u8);
        Utf8ElementWriter.Escape(w, header.From, attribute: true);
        w.Write("'"u8);
        if (header.To is not null)
        {
            w.Write(" to='"u8);
            Utf8ElementWriter.Escape(w, header.To, attribute: true);
            w.Write("'"u8);
        }

        w.Write(" version='1.0' xml:lang='en'/>"u8);
    }

    public void ReleaseBuffers() => _out.Release();

    public async ValueTask DrainAsync(TimeSpan budget)
    {
        using var cts = new CancellationTokenSource(budget);
        var buffer = ArrayPool<byte>.Shared.Rent(ReceiveSize);
        try
        {
            while (_socket.State is WebSocketState.Open or WebSocketState.CloseSent)
            {
                var r = await _socket.ReceiveAsync(buffer.AsMemory(), cts.Token).ConfigureAwait(false);
                if (r.MessageType == WebSocketMessageType.Close)
                {
                    break;
                }
            }
        }
        catch (Exception ex) when (ex is WebSocketException or IOException or ObjectDisposedException or OperationCanceledException)
        {
            // The peer closed, reset, or kept sending past the budget: nothing more to do.
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    public ValueTask DisposeAsync()
    {
        // The output buffer is not returned here: a writer that outlived the close timeout may still be sending from it.
        _parser.Dispose();
        _socket.Dispose();
        return ValueTask.CompletedTask;
    }
}
