using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Threading.Channels;
using NLog;
using Xmpp.Core;
using Xmpp.Core.Addressing;
using Xmpp.Core.Xml;
using Xmpp.Server.Hosting;

namespace Xmpp.Server.Net;

/// <summary>
/// BOSH (XEP-0124, with XEP-0206's XMPP binding) on the HTTPS listener: every session is one
/// <see cref="Streams.C2sStateMachine"/> whose byte stream is fed from the bodies clients POST and drained into
/// the bodies it answers, so BOSH clients reach the same stream state machine as TCP and WebSocket
/// clients. Requests are taken in rid order within a window, answers to lost requests are sent again,
/// a request is held until the server has something to say (long polling, up to 'wait' seconds), and a
/// session whose client stops polling ends after 'inactivity' seconds like a dropped TCP connection.
/// Nothing here knows ASP.NET Core: the listener hands over the request body and writes the answer.
/// </summary>
[Specification("XEP-0124", "1.11.2", Note = "Sessions over HTTP POST: rid ordering and window, retransmission of lost answers, long polling with hold=1 and requests=2, inactivity timeout, terminate; no polling sessions, no key sequences (TLS carries the session).")]
[Specification("XEP-0206", "1.4", Note = "XMPP over BOSH at /http-bind: the stream header and restarts (xmpp:restart) translated, stream errors as remote-stream-error; the same client state machine as TCP.")]
public sealed class BoshManager
{
    public const string Namespace = "http://jabber.org/protocol/httpbind";
    public const string XBosh = "urn:xmpp:xbosh";
    public const string Path = "/http-bind";

    /// <summary>Longest wait for an answer (§7: the server may lower the client's wish).</summary>
    private const int MaxWait = 60;

    /// <summary>Seconds without a pending request after which a session ends (§7 'inactivity').</summary>
    public const int Inactivity = 60;

    private readonly ServerContext _ctx;
    private readonly Logger _log;
    private readonly ConcurrentDictionary<string, BoshSession> _sessions = new(StringComparer.Ordinal);

    public BoshManager(ServerContext ctx)
    {
        _ctx = ctx;
        _log = ctx.Logs.GetLogger("Bosh");
    }

    public int Count => _sessions.Count;

    /// <summary>Ends the sessions whose clients stopped polling (run until shutdown).</summary>
    public async Task SweepAsync(CancellationToken shutdown)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(2));
        try
        {
            while (await timer.WaitForNextTickAsync(shutdown).ConfigureAwait(false))
            {
                foreach (var session in _sessions.Values)
                {
                    if (session.IdleFor > TimeSpan.FromSeconds(Inactivity))
                    {
                        _log.Info("BOSH session {Sid} inactive for {Seconds} s: ending it", session.Sid, Inactivity);
                        session.EndInput();
                    }
                }
            }
        }
        catch (OperationCanceledException)
        {
        }

        foreach (var session in _sessions.Values)
        {
            session.EndInput();
        }
    }

    /// <summary>One POST: the request's body in, the answer's body out (HTTP 200 unless the request is not BOSH at all).</summary>
    public async Task<(int Status, string Body)> HandleAsync(string text, IPAddress remote, int remotePort, CancellationToken aborted, CancellationToken shutdown)
    {
        Element body;
        try
        {
            body = ElementParser.Parse(text);
        }
        catch (Exception ex) when (ex is System.Xml.XmlException or Core.Stanzas.XmppStreamException)
        {
            return (400, "not XML");
        }

        if (!body.Is("body", Namespace) || !long.TryParse(body.GetAttribute("rid"), NumberStyles.None, CultureInfo.InvariantCulture, out var rid))
        {
            return (400, "a BOSH body with a rid is needed");
        }

        if (body.GetAttribute("sid") is not { } sid)
        {
            return await CreateAsync(body, rid, remote, remotePort, aborted, shutdown).ConfigureAwait(false);
        }

        if (!_sessions.TryGetValue(sid, out var session))
        {
            return (200, Terminate("item-not-found"));
        }

        return (200, await session.RequestAsync(body, rid, aborted).ConfigureAwait(false));
    }

    private async Task<(int Status, string Body)> CreateAsync(Element body, long rid, IPAddress remote, int remotePort, CancellationToken aborted, CancellationToken shutdown)
    {
        var to = body.GetAttribute("to");
        if (to is null || !Jid.TryPrepareDomain(to, out var host) || !_ctx.Router.IsLocal(host))
        {
            return (200, Terminate("host-unknown"));
        }

        if (!_ctx.Connections.TryAdmit(remote, _ctx.Options.Limits.ConnectionsPerIp))
        {
            _log.Warn("Refusing a BOSH session from {Remote}: too many connections from that address", remote);
            return (200, Terminate("policy-violation"));
        }

        var wait = int.TryParse(body.GetAttribute("wait"), NumberStyles.None, CultureInfo.InvariantCulture, out var w) ? Math.Clamp(w, 1, MaxWait) : MaxWait;
        var sid = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        var session = new BoshSession(this, sid, host, wait, rid, _ctx.Options.Limits.StanzaSize + 4096);
        _sessions[sid] = session;
        var connection = Streams.C2sStateMachine.Create(_ctx, session, new IPEndPoint(remote, remotePort), directTls: false, shutdown, secure: true, description: " (BOSH)");
        var run = _ctx.Connections.Start(connection, remote);
        _ = run.ContinueWith(_ => _sessions.TryRemove(new KeyValuePair<string, BoshSession>(sid, session)), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        _log.Info("BOSH session {Sid} from {Remote} for {Host} (wait {Wait} s)", sid, remote, host, wait);

        var lang = body.GetAttribute("lang", Ns.Xml);
        session.Feed(StreamHeader(host, lang));
        return (200, await session.FirstAnswerAsync(aborted).ConfigureAwait(false));
    }

    internal static string StreamHeader(string host, string? lang)
    {
        var sb = new StringBuilder("<stream:stream xmlns='").Append(Ns.Client).Append("' xmlns:stream='").Append(Ns.Stream)
            .Append("' version='1.0' to='");
        ElementWriter.Escape(sb, host, attribute: true);
        sb.Append('\'');
        if (lang is not null)
        {
            sb.Append(" xml:lang='");
            ElementWriter.Escape(sb, lang, attribute: true);
            sb.Append('\'');
        }

        return sb.Append('>').ToString();
    }

    internal static string Terminate(string? condition, string inner = "") =>
        "<body xmlns='" + Namespace + "' xmlns:stream='" + Ns.Stream + "' type='terminate'" +
        (condition is null ? string.Empty : " condition='" + condition + "'") + ">" + inner + "</body>";

    internal Logger Log => _log;
}

/// <summary>
/// One BOSH session: the duplex byte stream its <see cref="Streams.C2sStateMachine"/> reads and writes, and the
/// queue of elements waiting for the next answer.
/// </summary>
internal sealed class BoshSession(BoshManager manager, string sid, string host, int wait, long firstRid, int maxBody) : MessageTransportStream
{
    /// <summary>Answers kept for retransmission (§14.3), and the rid window (hold + 1).</summary>
    private const int Window = 2;

    private readonly Channel<byte[]> _inbound = Channel.CreateUnbounded<byte[]>(new UnboundedChannelOptions { SingleReader = true });
    private readonly StringBuilder _pendingOut = new();
    private readonly Lock _gate = new();
    private readonly Queue<string> _out = new();
    private readonly Dictionary<long, string> _answers = [];
    private readonly SemaphoreSlim _order = new(1, 1);
    private TaskCompletionSource _signal = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private byte[] _in = [];
    private int _inOffset;
    private readonly long _firstRid = firstRid;
    private long _lastRid = firstRid;
    private int _inFlight;
    private long _lastActivity = Environment.TickCount64;
    private string? _streamId;
    private bool _closed;
    private bool _streamError;
    private bool _terminated;
    private long _heldGeneration;

    public string Sid { get; } = sid;

    /// <summary>How long no request has been waiting here.</summary>
    public TimeSpan IdleFor
    {
        get
        {
            lock (_gate)
            {
                return Volatile.Read(ref _inFlight) > 0 ? TimeSpan.Zero : TimeSpan.FromMilliseconds(Environment.TickCount64 - _lastActivity);
            }
        }
    }

    public void Feed(string xml) => _inbound.Writer.TryWrite(Encoding.UTF8.GetBytes(xml));

    /// <summary>The client is gone (terminate, inactivity, shutdown): the connection reads the end of its stream.</summary>
    public void EndInput() => _inbound.Writer.TryComplete();

    /// <summary>§7 the session creation answer: the session's parameters with the stream features.</summary>
    public async Task<string> FirstAnswerAsync(CancellationToken aborted)
    {
        Interlocked.Increment(ref _inFlight);
        try
        {
            var inner = await WaitForOutputAsync(untilElement: true, aborted).ConfigureAwait(false);
            var sb = new StringBuilder("<body xmlns='").Append(BoshManager.Namespace).Append("' xmlns:xmpp='").Append(BoshManager.XBosh)
                .Append("' xmlns:stream='").Append(Ns.Stream).Append("' sid='").Append(Sid).Append("' wait='").Append(wait.ToString(CultureInfo.InvariantCulture))
                .Append("' requests='2' hold='1' polling='2' inactivity='").Append(BoshManager.Inactivity.ToString(CultureInfo.InvariantCulture))
                .Append("' ver='1.11' from='");
            ElementWriter.Escape(sb, host, attribute: true);
            sb.Append("' xmpp:version='1.0' xmpp:restartlogic='true'");
            if (_streamId is not null)
            {
                sb.Append(" authid='").Append(_streamId).Append('\'');
            }

            var answer = Close(sb.Append('>').Append(inner).Append("</body>").ToString());
            Remember(_firstRid, answer);
            return answer;
        }
        finally
        {
            Touch();
        }
    }

    /// <summary>A request of the session: in rid order, its payload fed to the connection, then the long poll.</summary>
    public async Task<string> RequestAsync(Element body, long rid, CancellationToken aborted)
    {
        Interlocked.Increment(ref _inFlight);
        try
        {
            lock (_gate)
            {
                if (_terminated && rid > _lastRid)
                {
                    return BoshManager.Terminate("item-not-found");
                }

                if (rid <= _lastRid)
                {
                    // §14.3: a retransmission of a request whose answer was lost.
                    return _answers.TryGetValue(rid, out var again) ? again : BoshManager.Terminate("item-not-found");
                }

                if (rid > _lastRid + Window)
                {
                    // §14.2: outside the window.
                    manager.Log.Warn("BOSH session {Sid}: rid {Rid} is beyond the window (last {Last})", Sid, rid, _lastRid);
                    EndInput();
                    return BoshManager.Terminate("item-not-found");
                }
            }

            // §14.1: requests are handled in rid order; one that overtook its predecessor waits for it.
            var deadline = Environment.TickCount64 + (wait * 1000L);
            while (true)
            {
                await _order.WaitAsync(aborted).ConfigureAwait(false);
                var ready = Interlocked.Read(ref _lastRid) == rid - 1;
                if (ready)
                {
                    break;
                }

                _order.Release();
                if (Environment.TickCount64 > deadline)
                {
                    return BoshManager.Terminate("item-not-found");
                }

                await Task.Delay(20, aborted).ConfigureAwait(false);
            }

            try
            {
                Interlocked.Exchange(ref _lastRid, rid);
                var terminate = body.GetAttribute("type") == "terminate";
                if (body.GetAttribute("restart", BoshManager.XBosh) == "true")
                {
                    // XEP-0206 §5: a stream restart after authentication.
                    Feed(BoshManager.StreamHeader(host, body.GetAttribute("lang", Ns.Xml)));
                }

                foreach (var child in body.Elements())
                {
                    Feed(child.ToString());
                }

                if (terminate)
                {
                    // §13: the client ends the session (unavailable presence in the body was fed first).
                    Feed("</stream:stream>");
                    EndInput();
                    lock (_gate)
                    {
                        _terminated = true;
                    }

                    var bye = BoshManager.Terminate(null);
                    Remember(rid, bye);
                    return bye;
                }
            }
            finally
            {
                _order.Release();
            }

            // §9.3 hold=1: this request replaces the one waiting, which is answered now.
            ReleaseHeld();
            var inner = await WaitForOutputAsync(untilElement: false, aborted).ConfigureAwait(false);
            var answer = Close("<body xmlns='" + BoshManager.Namespace + "' xmlns:stream='" + Ns.Stream + "'>" + inner + "</body>");
            Remember(rid, answer);
            return answer;
        }
        finally
        {
            Touch();
        }
    }

    private void Touch()
    {
        lock (_gate)
        {
            _lastActivity = Environment.TickCount64;
        }

        Interlocked.Decrement(ref _inFlight);
    }

    private void Remember(long rid, string answer)
    {
        lock (_gate)
        {
            _answers[rid] = answer;
            _answers.Remove(rid - Window - 1);
        }
    }

    /// <summary>A terminate answer once the server closed the stream (with the stream error, when there was one).</summary>
    private string Close(string answer)
    {
        lock (_gate)
        {
            if (!_closed || _out.Count > 0)
            {
                return answer;
            }
        }

        var start = answer.IndexOf('>', StringComparison.Ordinal);
        var inner = answer[(start + 1)..answer.LastIndexOf("</body>", StringComparison.Ordinal)];
        return BoshManager.Terminate(_streamError ? "remote-stream-error" : null, inner);
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

    /// <summary>Everything queued, once there is something (or the wait ends, or a newer request takes this one's place).</summary>
    private async Task<string> WaitForOutputAsync(bool untilElement, CancellationToken aborted)
    {
        var until = Environment.TickCount64 + (wait * 1000L);
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
                    var sb = new StringBuilder();
                    while (_out.TryDequeue(out var e))
                    {
                        sb.Append(e);
                    }

                    return sb.ToString();
                }

                signalled = _signal.Task;
            }

            var left = until - Environment.TickCount64;
            if (left <= 0)
            {
                return string.Empty;
            }

            try
            {
                await signalled.WaitAsync(TimeSpan.FromMilliseconds(left), aborted).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                return string.Empty;
            }
        }
    }

    // ---- the connection's side ------------------------------------------------------------------------

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        while (_inOffset >= _in.Length)
        {
            if (!await _inbound.Reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
            {
                return 0;
            }

            if (_inbound.Reader.TryRead(out var chunk))
            {
                if (chunk.Length > maxBody)
                {
                    throw new Core.Stanzas.XmppStreamException(Core.Stanzas.StreamErrorCondition.PolicyViolation, "BOSH body too large");
                }

                _in = chunk;
                _inOffset = 0;
            }
        }

        var n = Math.Min(buffer.Length, _in.Length - _inOffset);
        _in.AsMemory(_inOffset, n).CopyTo(buffer);
        _inOffset += n;
        return n;
    }

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            _pendingOut.Append(Encoding.UTF8.GetString(buffer.Span));
            foreach (var unit in OutputSplitter.Take(_pendingOut))
            {
                switch (unit.Kind)
                {
                    case OutputUnitKind.Header:
                        _streamId = OutputSplitter.HeaderAttributes(unit.Text).FirstOrDefault(a => a.Name == "id").Value;
                        break;
                    case OutputUnitKind.Close:
                        _closed = true;
                        _inbound.Writer.TryComplete();
                        break;
                    default:
                        _streamError |= unit.Text.StartsWith("<stream:error", StringComparison.Ordinal);
                        _out.Enqueue(unit.Text);
                        break;
                }
            }

            Signal();
        }

        return ValueTask.CompletedTask;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            lock (_gate)
            {
                _closed = true;
                Signal();
            }

            _inbound.Writer.TryComplete();
            _order.Dispose();
        }

        base.Dispose(disposing);
    }
}
