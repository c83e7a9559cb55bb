using System.Net;
using System.Net.Security;
using System.Threading.Channels;
using Xmpp.Core;
using Xmpp.Core.Xml;
using Xmpp.Server.Streams;

namespace Xmpp.Tests.Server.Streams;

/// <summary>
/// A transport in memory for the client state machine: the test feeds stream events, and reads the items the
/// stream writes, in order. STARTTLS "succeeds" by marking the transport secure (no TLS, no channel binding).
/// No sockets, so a test drives the connection core and its state machine directly.
/// </summary>
internal sealed class C2sTestTransport(bool secure) : IStreamTransport
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);
    private readonly Channel<XmppStreamEvent> _in = Channel.CreateUnbounded<XmppStreamEvent>();
    private readonly Channel<OutputItem> _out = Channel.CreateUnbounded<OutputItem>();

    public string Description => " (in memory)";

    public IPEndPoint Remote { get; } = new(IPAddress.Loopback, 40000);

    public bool IsSecure { get; private set; } = secure;

    public bool CanStartTls => !IsSecure;

    public SslStream? Tls => null;

    public long LastActivity { get; private set; } = Environment.TickCount64;

    /// <summary>Every item written so far, in order.</summary>
    public List<OutputItem> Written { get; } = [];

    public void Header(string to = "localhost") =>
        _in.Writer.TryWrite(new XmppStreamEvent(XmppStreamEventKind.Header, new StreamHeader("stream", Ns.Stream, Ns.Client, to, null, "1.0", "en", null)));

    public void Send(Element element) => _in.Writer.TryWrite(new XmppStreamEvent(XmppStreamEventKind.Element, Element: element));

    public void Send(string xml) => Send(ElementParser.Parse(xml));

    /// <summary>The client's closing tag.</summary>
    public void End() => _in.Writer.TryWrite(new XmppStreamEvent(XmppStreamEventKind.End));

    /// <summary>The next item the stream writes (waits at most 10 s).</summary>
    public async Task<OutputItem> NextAsync()
    {
        using var cts = new CancellationTokenSource(Timeout);
        var item = await _out.Reader.ReadAsync(cts.Token);
        Written.Add(item);
        return item;
    }

    /// <summary>The next item that is an element (skipping our headers).</summary>
    public async Task<OutputItem> NextElementAsync()
    {
        while (true)
        {
            var item = await NextAsync();
            if (item.Kind != OutputKind.Header)
            {
                return item;
            }
        }
    }

    /// <summary>What was written and not read yet.</summary>
    public List<OutputItem> Remaining()
    {
        var items = new List<OutputItem>();
        while (_out.Reader.TryRead(out var item))
        {
            items.Add(item);
        }

        return items;
    }

    /// <summary>Everything written until the stream's end (its close item included).</summary>
    public async Task<List<OutputItem>> UntilClosedAsync()
    {
        var items = new List<OutputItem>();
        while (true)
        {
            var item = await NextAsync();
            items.Add(item);
            if (item.Kind == OutputKind.Close)
            {
                return items;
            }
        }
    }

    public async ValueTask<XmppStreamEvent> ReadAsync(CancellationToken cancellationToken)
    {
        try
        {
            var ev = await _in.Reader.ReadAsync(cancellationToken);
            LastActivity = Environment.TickCount64;
            return ev;
        }
        catch (ChannelClosedException)
        {
            return new XmppStreamEvent(XmppStreamEventKind.Eof);
        }
    }

    public void Restart()
    {
    }

    public ValueTask StartTlsAsServerAsync(ServerOptionsSelectionCallback options, CancellationToken cancellationToken)
    {
        IsSecure = true;
        return ValueTask.CompletedTask;
    }

    public ValueTask StartTlsAsClientAsync(SslClientAuthenticationOptions options, CancellationToken cancellationToken) => throw new NotSupportedException();

    public ValueTask WriteAsync(IReadOnlyList<OutputItem> items, CancellationToken cancellationToken)
    {
        foreach (var item in items)
        {
            _out.Writer.TryWrite(item);
        }

        return ValueTask.CompletedTask;
    }

    public void ReleaseBuffers()
    {
    }

    public ValueTask DrainAsync(TimeSpan budget) => ValueTask.CompletedTask;

    public ValueTask DisposeAsync()
    {
        _in.Writer.TryComplete();
        return ValueTask.CompletedTask;
    }
}
