using System.Net;
using System.Net.Security;
using System.Threading.Channels;
using Xmpp.Core;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;
using Xmpp.Server.Streams;

namespace Xmpp.Tests.Server.Streams;

/// <summary>
/// An in-memory transport for the server-to-server and component state machines' tests: the test feeds the
/// stream events the peer would send (header, element, end, end of file); what the connection core writes is
/// captured as items, in order, and <see cref="IdleAsync"/> tells when it has handled all it was fed. No socket.
/// TLS is pretended: a negotiation only marks the transport secure (with no certificate), which is all the
/// machines look at.
/// </summary>
public sealed class S2sTestTransport : IStreamTransport
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);
    private readonly Channel<XmppStreamEvent> _in = Channel.CreateUnbounded<XmppStreamEvent>();
    private readonly Channel<OutputItem> _out = Channel.CreateUnbounded<OutputItem>();
    private readonly string _contentNamespace;
    private readonly object _gate = new();
    private TaskCompletionSource _idle = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _fed;
    private long _taken;
    private int _restarts;
    private int _tlsNegotiations;

    /// <param name="contentNamespace">The stream's content namespace, given to the machine as jabber:client as the real reader does.</param>
    public S2sTestTransport(string contentNamespace = Ns.Server) => _contentNamespace = contentNamespace;

    public string Description => " (in memory)";

    public IPEndPoint Remote { get; } = new(IPAddress.Loopback, 5269);

    public bool IsSecure { get; private set; }

    public bool CanStartTls => !IsSecure;

    public SslStream? Tls => null;

    public long LastActivity { get; set; } = Environment.TickCount64;

    /// <summary>How many times a new stream was started on the transport (RFC 6120 §4.3.3).</summary>
    public int Restarts => Volatile.Read(ref _restarts);

    /// <summary>How many TLS negotiations the machine asked for.</summary>
    public int TlsNegotiations => Volatile.Read(ref _tlsNegotiations);

    public bool Disposed { get; private set; }

    // ---- the connection's side ------------------------------------------------------------------------

    public async ValueTask<XmppStreamEvent> ReadAsync(CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            // The connection asks for more having handled everything fed so far: the machine is waiting.
            if (_taken == _fed)
            {
                _idle.TrySetResult();
            }
        }

        try
        {
            var ev = await _in.Reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            lock (_gate)
            {
                _taken++;
            }

            return ev;
        }
        catch (ChannelClosedException)
        {
            return new XmppStreamEvent(XmppStreamEventKind.Eof);
        }
    }

    public void Restart() => Interlocked.Increment(ref _restarts);

    public ValueTask StartTlsAsServerAsync(ServerOptionsSelectionCallback options, CancellationToken cancellationToken) => PretendTls();

    public ValueTask StartTlsAsClientAsync(SslClientAuthenticationOptions options, CancellationToken cancellationToken) => PretendTls();

    private ValueTask PretendTls()
    {
        Interlocked.Increment(ref _tlsNegotiations);
        IsSecure = true;
        return ValueTask.CompletedTask;
    }

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
        Disposed = true;
        _in.Writer.TryComplete();
        _out.Writer.TryComplete();
        return ValueTask.CompletedTask;
    }

    // ---- the test's side (the peer) -------------------------------------------------------------------

    /// <summary>The peer's stream header.</summary>
    public void Header(string? from, string? to, string? id = null, string? defaultNamespace = null, string? version = "1.0") =>
        Feed(new XmppStreamEvent(XmppStreamEventKind.Header, Header: new StreamHeader("stream", Ns.Stream, defaultNamespace ?? _contentNamespace, to, from, version, "en", id)));

    /// <summary>A first-level element, as XML; jabber:client stands for the stream's content namespace, as the reader gives it.</summary>
    public void Send(string xml) => Send(ElementParser.Parse(xml));

    public void Send(Element element) => Feed(new XmppStreamEvent(XmppStreamEventKind.Element, Element: element));

    /// <summary>The peer's closing tag.</summary>
    public void End() => Feed(new XmppStreamEvent(XmppStreamEventKind.End));

    /// <summary>
    /// Completes when the connection has handled everything fed so far and waits for more (the signal for a
    /// step that writes nothing, such as taking the peer's header); at most ten seconds.
    /// </summary>
    public async Task IdleAsync()
    {
        Task idle;
        lock (_gate)
        {
            idle = _idle.Task;
        }

        try
        {
            await idle.WaitAsync(Wait);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException("the connection did not come back for more input within " + Wait);
        }
    }

    private void Feed(XmppStreamEvent ev)
    {
        lock (_gate)
        {
            _fed++;
            if (_idle.Task.IsCompleted)
            {
                _idle = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }
        }

        _in.Writer.TryWrite(ev);
    }

    /// <summary>The next item the connection wrote, waiting at most ten seconds.</summary>
    public async Task<OutputItem> NextAsync()
    {
        using var timeout = new CancellationTokenSource(Wait);
        try
        {
            return await _out.Reader.ReadAsync(timeout.Token);
        }
        catch (ChannelClosedException)
        {
            throw new InvalidOperationException("the connection ended without writing anything more");
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException("the connection wrote nothing within " + Wait);
        }
    }

    /// <summary>The next element written (stanza or nonza); fails on a header or the end.</summary>
    public async Task<Element> NextElementAsync()
    {
        var item = await NextAsync();
        return item.Kind is OutputKind.Stanza or OutputKind.Nonza
            ? item.Element!
            : throw new InvalidOperationException($"expected an element, got {item.Kind}{(item.Error is { } e ? " " + e.Condition : string.Empty)}");
    }

    /// <summary>Skips items until the stream's end and returns its error, if any.</summary>
    public async Task<StreamError?> ClosedAsync()
    {
        while (true)
        {
            var item = await NextAsync();
            if (item.Kind == OutputKind.Close)
            {
                return item.Error;
            }
        }
    }

    /// <summary>Everything written until now, without waiting.</summary>
    public List<OutputItem> Written()
    {
        var items = new List<OutputItem>();
        while (_out.Reader.TryRead(out var item))
        {
            items.Add(item);
        }

        return items;
    }
}
