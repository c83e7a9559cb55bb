using System.Buffers;
using System.Globalization;
using System.Net;
using System.Net.Security;
using System.Threading.Channels;
using NLog;
using Xmpp.Core;
using Xmpp.Core.Xml;

namespace Xmpp.Server.Streams.Transports;

/// <summary>
/// One BOSH session (XEP-0124 with XEP-0206) as the transport of its client stream: the children of the bodies
/// the client POSTs are the stream's elements, in rid order; the session's output items wait in a queue and
/// are written, once, into the body that answers the next (or the held) request. The stream header is
/// the session's creation request and each xmpp:restart request (XEP-0206 §5); the end is a terminate.
/// </summary>
public sealed class BoshTransport : IStreamTransport
{
    public const string Namespace = "http://jabber.org/protocol/httpbind";
    public const string XBosh = "urn:xmpp:xbosh";

    /// <summary>Seconds without a pending request after which a session ends (XEP-0124 §7 'inactivity').</summary>
    public const int Inactivity = 60;

    /// <summary>Answers kept for retransmission (§14.3), and the rid window (hold + 1).</summary>
    private const int Window = 2;

    private readonly Channel<XmppStreamEvent> _inbound = Channel.CreateUnbounded<XmppStreamEvent>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Lock _gate = new();
    private readonly Queue<OutputItem> _out = new();
    private readonly Dictionary<long, byte[]> _answers = [];
    private readonly SemaphoreSlim _order = new(1, 1);
    private readonly Logger _log;
    private readonly string _host;
    private readonly int _wait;
    private readonly long _firstRid;
    private TaskCompletionSource _signal = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _lastRid;
    private int _inFlight;
    private long _lastActivity = Environment.TickCount64;
    private string? _streamId;
    private bool _closed;
    private bool _streamError;
    private bool _terminated;
    private long _heldGeneration;

    /// <param name="wait">The longest time (seconds) a request is held (§7 'wait', as the server granted it).</param>
    /// <param name="firstRid">The rid of the creation request.</param>
    public BoshTransport(string sid, string host, int wait, long firstRid, IPEndPoint remote, Logger log)
    {
        Sid = sid;
        _host = host;
        _wait = wait;
        _firstRid = firstRid;
        _lastRid = firstRid;
        _log = log;
        Remote = remote;
    }

    public string Sid { get; }

    public string Description => " (BOSH)";

    public IPEndPoint Remote { get; }

    public bool IsSecure => true;

    public bool CanStartTls => false;

    public SslStream? Tls => null;

    public long LastActivity
    {
        get
        {
            lock (_gate)
            {
                return Volatile.Read(ref _inFlight) > 0 ? Environment.TickCount64 : _lastActivity;
            }
        }
    }

    /// <summary>How long no request has been waiting here.</summary>
    public TimeSpan IdleFor => TimeSpan.FromMilliseconds(Environment.TickCount64 - LastActivity);

    /// <summary>XEP-0206 §4/§5: the stream header the creation and restart requests stand for.</summary>
    public void Open(string? lang) =>
        _inbound.Writer.TryWrite(new XmppStreamEvent(XmppStreamEventKind.Header, Header: new StreamHeader("stream", Ns.Stream, Ns.Client, _host, null, "1.0", lang, null)));

    /// <summary>The client is gone (terminate, inactivity, shutdown): the connection reads the end of its stream.</summary>
    public void EndInput() => _inbound.Writer.TryComplete();

    /// <summary>§7 the session creation answer: the session's parameters with the stream features.</summary>
    public async Task<byte[]> FirstAnswerAsync(CancellationToken aborted)
    {
        Interlocked.Increment(ref _inFlight);
        try
        {
            await WaitForOutputAsync(untilElement: true, aborted).ConfigureAwait(false);
            var answer = Answer(w =>
            {
                w.Write(" xmlns:xmpp='urn:xmpp:xbosh' sid='"u8);
                Utf8ElementWriter.Text(w, Sid);
                w.Write("' wait='"u8);
                Utf8ElementWriter.Text(w, _wait.ToString(CultureInfo.InvariantCulture));
                w.Write("' requests='2' hold='1' polling='2' inactivity='"u8);
                Utf8ElementWriter.Text(w, Inactivity.ToString(CultureInfo.InvariantCulture));
                w.Write("' ver='1.11' from='"u8);
                Utf8ElementWriter.Escape(w, _host, attribute: true);
                w.Write("' xmpp:version='1.0' xmpp:restartlogic='true'"u8);
                if (_streamId is not null)
                {
                    w.Write(" authid='"u8);
                    Utf8ElementWriter.Escape(w, _streamId, attribute: true);
                    w.Write("'"u8);
                }
            });
            Remember(_firstRid, answer);
            return answer;
        }
        finally
        {
            Touch();
        }
    }

    /// <summary>A request of the session: in rid order, its payload handed to the connection, then the long poll.</summary>
    public async Task<byte[]> RequestAsync(Element body, long rid, CancellationToken aborted)
    {
        Interlocked.Increment(ref _inFlight);
        try
        {
            if (Check(rid) is { } early)
            {
                return early;
            }

            if (!await WaitForTurnAsync(rid, aborted).ConfigureAwait(false))
            {
                return Terminate("item-not-found");
            }

            try
            {
                if (Take(body, rid) is { } bye)
                {
                    return bye;
                }
            }
            finally
            {
                _order.Release();
            }

            // §9.3 hold=1: this request replaces the one waiting, which is answered now.
            ReleaseHeld();
            await WaitForOutputAsync(untilElement: false, aborted).ConfigureAwait(false);
            var answer = Answer(static _ => { });
            Remember(rid, answer);
            return answer;
        }
        finally
        {
            Touch();
        }
    }

    /// <summary>The answer to a request that is not the next one: a retransmission (§14.3), or a refusal (§14.2).</summary>
    private byte[]? Check(long rid)
    {
        lock (_gate)
        {
            if (_terminated && rid > _lastRid)
            {
                return Terminate("item-not-found");
            }

            if (rid <= _lastRid)
            {
                // §14.3: a retransmission of a request whose answer was lost.
                return _answers.TryGetValue(rid, out var again) ? again : Terminate("item-not-found");
            }

            if (rid > _lastRid + Window)
            {
                // §14.2: outside the window.
                _log.Warn("BOSH session {Sid}: rid {Rid} is beyond the window (last {Last})", Sid, rid, _lastRid);
                EndInput();
                return Terminate("item-not-found");
            }
        }

        return null;
    }

    /// <summary>
    /// §14.1: requests are handled in rid order; one that overtook its predecessor waits for it (for at most
    /// 'wait'). True with the order gate held when it is this request's turn.
    /// </summary>
    private async Task<bool> WaitForTurnAsync(long rid, CancellationToken aborted)
    {
        var deadline = Environment.TickCount64 + (_wait * 1000L);
        while (true)
        {
            Task advanced;
            lock (_gate)
            {
                advanced = _signal.Task;
            }

            await _order.WaitAsync(aborted).ConfigureAwait(false);
            if (Interlocked.Read(ref _lastRid) == rid - 1)
            {
                return true;
            }

            _order.Release();
            var left = deadline - Environment.TickCount64;
            if (left <= 0)
            {
                return false;
            }

            // Every change of the session (a request taken included) signals; then look again.
            try
            {
                await advanced.WaitAsync(TimeSpan.FromMilliseconds(left), aborted).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                return false;
            }
        }
    }

    /// <summary>Hands a request's payload to the connection; the answer when it was a terminate (§13).</summary>
    private byte[]? Take(Element body, long rid)
    {
        Interlocked.Exchange(ref _lastRid, rid);
        var terminate = body.GetAttribute("type") == "terminate";
        if (body.GetAttribute("restart", XBosh) == "true")
        {
            // XEP-0206 §5: a stream restart after authentication.
            Open(body.GetAttribute("lang", Ns.Xml));
        }

        foreach (var child in body.Elements())
        {
            _inbound.Writer.TryWrite(new XmppStreamEvent(XmppStreamEventKind.Element, Element: child));
        }

        lock (_gate)
        {
            Signal();
            if (!terminate)
            {
                return null;
            }

            // §13: the client ends the session (unavailable presence in the body was handed over first).
            _terminated = true;
        }

        _inbound.Writer.TryWrite(new XmppStreamEvent(XmppStreamEventKind.End));
        EndInput();
        var bye = Terminate(null);
        Remember(rid, bye);
        return bye;
    }

    private void Touch()
    {
        lock (_gate)
        {
            _lastActivity = Environment.TickCount64;
        }

        Interlocked.Decrement(ref _inFlight);
    }

    private void Remember(long rid, byte[] answer)
    {
        lock (_gate)
        {
            _answers[rid] = answer;
            _answers.Remove(rid - Window - 1);
        }
    }

    private void ReleaseHeld()
    {
        lock (_gate)
        {
            _heldGeneration++;
            Signal();
        }
    }

    private void Signal()
    {
        _signal.TrySetResult();
        _signal = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    /// <summary>Until there is output (or the stream is closed, or the wait ends, or a newer request takes this one's place).</summary>
    private async Task WaitForOutputAsync(bool untilElement, CancellationToken aborted)
    {
        var until = Environment.TickCount64 + (_wait * 1000L);
        long generation;
        lock (_gate)
        {
            generation = _heldGeneration;
        }

        while (true)
        {
            Task signalled;
            lock (_gate)
            {
                if (_out.Count > 0 || _closed || (!untilElement && generation != _heldGeneration))
                {
                    return;
                }

                signalled = _signal.Task;
            }

            var left = until - Environment.TickCount64;
            if (left <= 0)
            {
                return;
            }

            try
            {
                await signalled.WaitAsync(TimeSpan.FromMilliseconds(left), aborted).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                return;
            }
        }
    }

    /// <summary>
    /// The answer's body with everything queued, serialised once: a terminate body (with the stream error's
    /// remote-stream-error, XEP-0206 §7) once the server closed the stream and nothing more is queued.
    /// </summary>
    private byte[] Answer(Action<PooledBufferWriter> attributes)
    {
        var w = new PooledBufferWriter();
        try
        {
            lock (_gate)
            {
                var items = _out.ToArray();
                _out.Clear();
                w.Write("<body xmlns='http://jabber.org/protocol/httpbind' xmlns:stream='http://etherx.jabber.org/streams'"u8);
                if (_closed)
                {
                    w.Write(_streamError ? " type='terminate' condition='remote-stream-error'"u8 : " type='terminate'"u8);
                }
                else
                {
                    attributes(w);
                }

                w.Write(">"u8);
                foreach (var item in items)
                {
                    Render(w, item);
                }
            }

            w.Write("</body>"u8);
            return w.WrittenSpan.ToArray();
        }
        finally
        {
            w.Release();
        }
    }

    /// <summary>An output element inside a body: stanzas with xmlns='jabber:client' (XEP-0206 §6), stream elements under the body's stream: prefix.</summary>
    internal static void Render(IBufferWriter<byte> w, OutputItem item)
    {
        if (item.Element!.Namespace == Ns.Stream)
        {
            Utf8ElementWriter.WritePrefixed(w, "stream", item.Element, declare: false, childrenParent: Ns.Stream);
        }
        else
        {
            Utf8ElementWriter.Write(w, item.Element, parentNamespace: Namespace);
        }
    }

    public static byte[] Terminate(string? condition)
    {
        var w = new ArrayBufferWriter<byte>(160);
        w.Write("<body xmlns='http://jabber.org/protocol/httpbind' xmlns:stream='http://etherx.jabber.org/streams' type='terminate'"u8);
        if (condition is not null)
        {
            w.Write(" condition='"u8);
            Utf8ElementWriter.Text(w, condition);
            w.Write("'"u8);
        }

        w.Write("/>"u8);
        return w.WrittenSpan.ToArray();
    }

    // ---- the connection's side ------------------------------------------------------------------------

    public async ValueTask<XmppStreamEvent> ReadAsync(CancellationToken cancellationToken)
    {
        while (await _inbound.Reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
        {
            if (_inbound.Reader.TryRead(out var ev))
            {
                return ev;
            }
        }

        return new XmppStreamEvent(XmppStreamEventKind.Eof);
    }

    /// <summary>XEP-0206 §5: the new stream starts with the client's restart request, which brings its header.</summary>
    public void Restart()
    {
    }

    public ValueTask StartTlsAsServerAsync(ServerOptionsSelectionCallback options, CancellationToken cancellationToken) =>
        throw new NotSupportedException("no STARTTLS over BOSH (XEP-0206 §4)");

    public ValueTask StartTlsAsClientAsync(SslClientAuthenticationOptions options, CancellationToken cancellationToken) =>
        throw new NotSupportedException("no STARTTLS over BOSH (XEP-0206 §4)");

    /// <summary>The connection's output: queued for the next answer, which is woken.</summary>
    public ValueTask WriteAsync(IReadOnlyList<OutputItem> items, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            foreach (var item in items)
            {
                switch (item.Kind)
                {
                    case OutputKind.Header:
                        // XEP-0206 §4: the stream id is the session's authid.
                        _streamId = item.Header!.Id;
                        break;
                    case OutputKind.Close:
                        if (item.Error is { } error)
                        {
                            _streamError = true;
                            _out.Enqueue(OutputItem.Nonza(error.ToElement()));
                        }

                        _closed = true;
                        _inbound.Writer.TryComplete();
                        break;
                    default:
                        _out.Enqueue(item);
                        break;
                }
            }

            Signal();
        }

        return ValueTask.CompletedTask;
    }

    public void ReleaseBuffers()
    {
    }

    public ValueTask DrainAsync(TimeSpan budget) => ValueTask.CompletedTask;

    public ValueTask DisposeAsync()
    {
        lock (_gate)
        {
            _closed = true;
            Signal();
        }

        _inbound.Writer.TryComplete();
        return ValueTask.CompletedTask;
    }
}
