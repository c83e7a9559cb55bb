using System.IO.Pipelines;
using System.Net;
using System.Net.WebSockets;
using System.Text;
using Xmpp.Core;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;
using Xmpp.Server.Streams;
using Xmpp.Server.Streams.Transports;

namespace Xmpp.Tests.Server.Streams;

/// <summary>The WebSocket transport (RFC 7395) over an in-memory WebSocket pair: no sockets.</summary>
public sealed class WebSocketTransportTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);

    /// <summary>One end of an in-memory duplex connection.</summary>
    private sealed class PipeEnd(PipeReader input, PipeWriter output) : Stream
    {
        private readonly Stream _in = input.AsStream();
        private readonly Stream _out = output.AsStream();

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => _in.ReadAsync(buffer, cancellationToken);

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => _in.ReadAsync(buffer, offset, count, cancellationToken);

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) => _out.WriteAsync(buffer, cancellationToken);

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => _out.WriteAsync(buffer, offset, count, cancellationToken);

        public override Task FlushAsync(CancellationToken cancellationToken) => _out.FlushAsync(cancellationToken);

        public override void Flush() => _out.Flush();

        public override int Read(byte[] buffer, int offset, int count) => _in.Read(buffer, offset, count);

        public override void Write(byte[] buffer, int offset, int count) => _out.Write(buffer, offset, count);

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _in.Dispose();
                _out.Dispose();
            }

            base.Dispose(disposing);
        }
    }

    private sealed class Pair : IAsyncDisposable
    {
        public Pair(int maxMessage = 4096)
        {
            var up = new Pipe();
            var down = new Pipe();
            Client = WebSocket.CreateFromStream(new PipeEnd(down.Reader, up.Writer), new WebSocketCreationOptions { IsServer = false, SubProtocol = "xmpp" });
            var server = WebSocket.CreateFromStream(new PipeEnd(up.Reader, down.Writer), new WebSocketCreationOptions { IsServer = true, SubProtocol = "xmpp" });
            Transport = new WebSocketTransport(server, new IPEndPoint(IPAddress.Loopback, 1), new XmlReaderLimits(), maxMessage);
        }

        public WebSocket Client { get; }

        public WebSocketTransport Transport { get; }

        public Task SendAsync(string text, WebSocketMessageType type = WebSocketMessageType.Text) =>
            Client.SendAsync(Encoding.UTF8.GetBytes(text), type, endOfMessage: true, CancellationToken.None).WaitAsync(Bound);

        public async Task<XmppStreamEvent> ReadAsync() => await Transport.ReadAsync(CancellationToken.None).AsTask().WaitAsync(Bound);

        /// <summary>The next message the client gets, or null for the WebSocket's close.</summary>
        public async Task<string?> ReceiveAsync()
        {
            var buffer = new byte[65536];
            var n = 0;
            while (true)
            {
                var r = await Client.ReceiveAsync(buffer.AsMemory(n), CancellationToken.None).AsTask().WaitAsync(Bound);
                if (r.MessageType == WebSocketMessageType.Close)
                {
                    return null;
                }

                n += r.Count;
                if (r.EndOfMessage)
                {
                    return Encoding.UTF8.GetString(buffer, 0, n);
                }
            }
        }

        public async ValueTask DisposeAsync()
        {
            await Transport.DisposeAsync();
            Client.Dispose();
        }
    }

    [Test]
    public async Task Open_elements_and_close_are_the_streams_header_elements_and_end()
    {
        await using var pair = new Pair();
        await pair.SendAsync($"<open xmlns='{Ns.Framing}' to='localhost' version='1.0' xml:lang='de'/>");
        var header = await pair.ReadAsync();
        Assert.That(header.Kind, Is.EqualTo(XmppStreamEventKind.Header));
        Assert.That(header.Header, Is.EqualTo(new StreamHeader("stream", Ns.Stream, Ns.Client, "localhost", null, "1.0", "de", null)));

        await pair.SendAsync(" ");
        await pair.SendAsync("<message to='bob@localhost'><body>hi</body></message>");
        var message = await pair.ReadAsync();
        Assert.That(message.Element!.Is("message", Ns.Client), "the whitespace message is a keepalive, the next one the element");

        // §3.3.1: after a restart, a new <open/>; a second one without a restart is refused.
        pair.Transport.Restart();
        await pair.SendAsync($"<open xmlns='{Ns.Framing}' to='localhost' version='1.0'/>");
        Assert.That((await pair.ReadAsync()).Kind, Is.EqualTo(XmppStreamEventKind.Header));
        await pair.SendAsync($"<open xmlns='{Ns.Framing}' to='localhost' version='1.0'/>");
        Assert.That(Assert.ThrowsAsync<XmppStreamException>(pair.ReadAsync)!.Condition, Is.EqualTo(StreamErrorCondition.UnsupportedStanzaType));

        await pair.SendAsync($"<close xmlns='{Ns.Framing}'/>");
        Assert.That((await pair.ReadAsync()).Kind, Is.EqualTo(XmppStreamEventKind.End));
        await pair.Client.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
        Assert.That((await pair.ReadAsync()).Kind, Is.EqualTo(XmppStreamEventKind.Eof));
    }

    [Test]
    public async Task What_is_not_a_stream_over_websocket_is_its_stream_error()
    {
        await using (var pair = new Pair())
        {
            await pair.SendAsync("<message><body>before open</body></message>");
            Assert.That(Assert.ThrowsAsync<XmppStreamException>(pair.ReadAsync)!.Condition, Is.EqualTo(StreamErrorCondition.InvalidNamespace));
        }

        await using (var pair = new Pair())
        {
            await pair.SendAsync("<open/>", WebSocketMessageType.Binary);
            Assert.That(Assert.ThrowsAsync<XmppStreamException>(pair.ReadAsync)!.Condition, Is.EqualTo(StreamErrorCondition.BadFormat), "§3.2: text messages only");
        }

        await using (var pair = new Pair(maxMessage: 100))
        {
            await pair.SendAsync("<message><body>" + new string('x', 5000) + "</body></message>");
            Assert.That(Assert.ThrowsAsync<XmppStreamException>(pair.ReadAsync)!.Condition, Is.EqualTo(StreamErrorCondition.PolicyViolation));
        }

        await using (var pair = new Pair())
        {
            await pair.SendAsync($"<open xmlns='{Ns.Framing}' to='localhost' version='1.0'/>");
            await pair.ReadAsync();
            await pair.SendAsync("<message/><message/>");
            Assert.That(Assert.ThrowsAsync<XmppStreamException>(pair.ReadAsync)!.Condition, Is.EqualTo(StreamErrorCondition.NotWellFormed), "§3.3.3: one element per message");
        }
    }

    [Test]
    public async Task Each_item_is_one_message_and_a_stream_error_is_followed_by_close()
    {
        await using var pair = new Pair();
        var features = new Element("features", Ns.Stream);
        features.AddChild("mechanisms", Ns.Sasl).AddChild("mechanism", Ns.Sasl).AddText("PLAIN");
        var message = new Element("message", Ns.Client).SetAttribute("to", "a@localhost/web");
        message.AddChild("body", Ns.Client).AddText("<hi> & 😀");
        var writing = pair.Transport.WriteAsync(
            [OutputItem.Open(new OutgoingHeader("localhost", "a@localhost", "s1")), OutputItem.Nonza(features), OutputItem.Stanza(message), OutputItem.End(new StreamError(StreamErrorCondition.Conflict))],
            CancellationToken.None).AsTask();

        Assert.That(await pair.ReceiveAsync(), Is.EqualTo($"<open xmlns='{Ns.Framing}' id='s1' from='localhost' to='a@localhost' version='1.0' xml:lang='en'/>"));
        Assert.That(await pair.ReceiveAsync(), Is.EqualTo("<stream:features xmlns:stream='http://etherx.jabber.org/streams'><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>"));
        Assert.That(await pair.ReceiveAsync(), Is.EqualTo("<message xmlns='jabber:client' to='a@localhost/web'><body>&lt;hi&gt; &amp; 😀</body></message>"));
        Assert.That(await pair.ReceiveAsync(), Does.StartWith("<stream:error xmlns:stream='http://etherx.jabber.org/streams'><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"));
        Assert.That(await pair.ReceiveAsync(), Is.EqualTo($"<close xmlns='{Ns.Framing}'/>"), "§3.6: <close/> after the error");
        Assert.That(await pair.ReceiveAsync(), Is.Null, "then the WebSocket's close");
        await writing.WaitAsync(Bound);
        pair.Transport.ReleaseBuffers();
    }

    [Test]
    public async Task A_close_the_client_starts_is_answered()
    {
        await using var pair = new Pair();
        var closing = pair.Client.CloseAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
        Assert.That((await pair.ReadAsync()).Kind, Is.EqualTo(XmppStreamEventKind.Eof));
        await pair.Transport.WriteAsync([OutputItem.End(null)], CancellationToken.None);
        await closing.WaitAsync(Bound);
        Assert.That(pair.Client.State, Is.EqualTo(WebSocketState.Closed));
    }
}
