using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using NLog;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;
using Xmpp.Server.Hosting;
using Xmpp.Server.Net;

namespace Xmpp.Server.Streams;

/// <summary>What a stream connection is held to, besides its protocol's own rules.</summary>
/// <param name="Rate">The stanza rate of the peer's stream (flow control), or null for none.</param>
/// <param name="CloseTimeout">How long to wait for our output, and for the peer's closing tag, at the end.</param>
public sealed record StreamLimits(TokenBucket? Rate, TimeSpan CloseTimeout);

/// <summary>
/// The one connection core of every stream, whatever its kind and transport (Kestrel's KestrelConnection and
/// MQTTnet's connected client are the models): one reader loop that takes stream events from the transport
/// and hands them to the stream's protocol (its state machine), one writer loop over a lock-free queue, flow
/// control, the only catch-all, and one teardown. The protocol decides what the stream means; this class
/// decides how it is run.
/// </summary>
public sealed class StreamConnection : IConnection
{
    private readonly ServerContext _ctx;
    private readonly IStreamProtocol _protocol;
    private readonly StreamLimits _limits;
    private readonly CancellationTokenSource _cts;
    private readonly List<IDisposable> _timers = [];
    private int _closing;
    private bool _headerSent;
    private bool _closedWithError;
    private bool _slowed;

    public StreamConnection(ServerContext ctx, IStreamTransport transport, IStreamProtocol protocol, StreamLimits limits, Logger log, CancellationToken shutdown)
    {
        _ctx = ctx;
        _protocol = protocol;
        _limits = limits;
        Transport = transport;
        Log = log;
        Shutdown = shutdown;
        _cts = CancellationTokenSource.CreateLinkedTokenSource(shutdown);
        Output = new StreamOutput(ctx.Metrics);
        ConnectionId = ctx.Connections.NextId();
    }

    public long ConnectionId { get; }

    public IStreamTransport Transport { get; }

    /// <summary>The stream's state machine.</summary>
    public IStreamProtocol Protocol => _protocol;

    public StreamOutput Output { get; }

    public Logger Log { get; }

    /// <summary>The server's shutdown (not this connection's own end).</summary>
    public CancellationToken Shutdown { get; }

    /// <summary>Whether our end of the stream is queued: nothing more is sent.</summary>
    public bool IsClosing => Volatile.Read(ref _closing) != 0;

    /// <summary>We ended the stream with a stream error (other than a timeout).</summary>
    public bool ClosedWithError => _closedWithError;

    /// <summary>Sends our stream header (once per stream; a restart needs a new one).</summary>
    public void SendHeader(OutgoingHeader header)
    {
        _headerSent = true;
        Output.EnqueueHeader(header);
    }

    /// <summary>A restart (RFC 6120 §4.3.3) starts a new stream: our next header is due again.</summary>
    public void ExpectNewHeader() => _headerSent = false;

    public bool HeaderSent => _headerSent;

    /// <summary>Queues a first-level element that is not a stanza.</summary>
    public void SendNonza(Element element) => Output.EnqueueNonza(element);

    public Task FlushAsync() => Output.FlushAsync();

    /// <summary>Runs <paramref name="action"/> after <paramref name="delay"/> unless the connection has ended by then.</summary>
    public void After(TimeSpan delay, Action action)
    {
        var timer = new CancellationTokenSource(delay);
        _timers.Add(timer);
        _timers.Add(timer.Token.Register(action));
    }

    /// <summary>
    /// Negotiates TLS on the transport as the responding side; what was queued before is written first. The
    /// options come from the server's <see cref="Tls.TlsContexts"/> (<see cref="Tls.TlsContexts.ServerOptionsCallback"/>),
    /// which then checks the connection against the policy: an <see cref="AuthenticationException"/> when outside it.
    /// </summary>
    public async ValueTask StartTlsAsServerAsync(ServerOptionsSelectionCallback options, CancellationToken cancellationToken)
    {
        await FlushAsync().ConfigureAwait(false);
        await Transport.StartTlsAsServerAsync(options, cancellationToken).ConfigureAwait(false);
        if (Transport.Tls is { } ssl)
        {
            // A transport that secures itself without an SslStream of ours (an in-memory one in tests) has nothing to check.
            _ctx.Tls.Established(ssl);
        }
    }

    /// <summary>
    /// Negotiates TLS on the transport as the initiating side, with options from the server's
    /// <see cref="Tls.TlsContexts"/> (<see cref="Tls.TlsContexts.ClientOptionsAsync"/>); checked as
    /// <see cref="StartTlsAsServerAsync"/>.
    /// </summary>
    public async ValueTask StartTlsAsClientAsync(SslClientAuthenticationOptions options, CancellationToken cancellationToken)
    {
        await FlushAsync().ConfigureAwait(false);
        await Transport.StartTlsAsClientAsync(options, cancellationToken).ConfigureAwait(false);
        if (Transport.Tls is { } ssl)
        {
            // A transport that secures itself without an SslStream of ours (an in-memory one in tests) has nothing to check.
            _ctx.Tls.Established(ssl);
        }
    }

    public async Task RunAsync()
    {
        using var scope = ScopeContext.PushProperty("ConnectionId", ConnectionId);
        using var remoteScope = ScopeContext.PushProperty("Remote", Transport.Remote.ToString());
        var writer = Output.RunAsync(Transport, OnWriterStopped, _cts.Token);
        var end = StreamEnd.ClosedByUs;
        try
        {
            var ct = _cts.Token;
            await _protocol.StartAsync(this, ct).ConfigureAwait(false);
            end = await ReadLoopAsync(ct).ConfigureAwait(false);
        }
        catch (XmppStreamException ex)
        {
            Log.Warn("Stream error {Condition} for {Remote}: {Reason}", ErrorNames.ToElementName(ex.Condition), Transport.Remote, ex.Message);
            Close(ex.ToStreamError());
        }
        catch (OperationCanceledException) when (_cts.IsCancellationRequested)
        {
            Log.Debug("Connection cancelled");
        }
        catch (OperationCanceledException ex)
        {
            // Not this connection's cancellation: its output stopped (a flush that can no longer happen: the peer
            // went away), or something it waited on was cancelled elsewhere. Said, not hidden as a shutdown.
            Log.Info("Connection lost: {Reason}", ex.Message);
            end = StreamEnd.Dropped;
        }
        catch (AuthenticationException ex)
        {
            Log.Warn("TLS handshake with {Remote} failed: {Reason}", Transport.Remote, ex.Message);
            end = StreamEnd.Dropped;
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException)
        {
            Log.Info("Connection lost: {Reason}", ex.Message);
            end = StreamEnd.Dropped;
        }
        catch (Exception ex)
        {
            // The one catch-all, at the connection boundary: a bug here ends this stream only.
            Log.Error(ex, "Unexpected error on a {Kind} connection with {Remote}", _protocol.Kind, Transport.Remote);
            Close(new StreamError(StreamErrorCondition.InternalServerError));
        }
        finally
        {
            await TeardownAsync(writer, end).ConfigureAwait(false);
        }
    }

    private async Task<StreamEnd> ReadLoopAsync(CancellationToken ct)
    {
        // The log scope carries the peer once the protocol knows it (a client's bound JID). It is pushed here,
        // in the loop's own flow: a scope pushed inside the protocol's awaited methods would not outlive them.
        string? peer = null;
        IDisposable? peerScope = null;
        try
        {
            while (true)
            {
                if (_protocol is IDescribesPeer { Peer: { } now } && !ReferenceEquals(now, peer))
                {
                    peerScope?.Dispose();
                    peer = now;
                    peerScope = ScopeContext.PushProperty("Jid", now);
                }

                if (await NextAsync(ct).ConfigureAwait(false) is { } end)
                {
                    return end;
                }
            }
        }
        finally
        {
            peerScope?.Dispose();
        }
    }

    /// <summary>Reads and handles one stream event; the end of the stream when it ended.</summary>
    private async ValueTask<StreamEnd?> NextAsync(CancellationToken ct)
    {
        {
            var ev = await Transport.ReadAsync(ct).ConfigureAwait(false);
            switch (ev.Kind)
            {
                case XmppStreamEventKind.Header:
                    await _protocol.OnHeaderAsync(ev.Header!, ct).ConfigureAwait(false);
                    return null;
                case XmppStreamEventKind.End:
                    Close(null);
                    return StreamEnd.ClosedByPeer;
                case XmppStreamEventKind.Eof:
                    return StreamEnd.Dropped;
            }

            await PaceAsync(ct).ConfigureAwait(false);
            switch (await _protocol.OnElementAsync(ev.Element!, ct).ConfigureAwait(false))
            {
                case StreamStep.Restart:
                    ExpectNewHeader();
                    Transport.Restart();
                    return null;
                case StreamStep.Stop:
                    return StreamEnd.ClosedByUs;
                default:
                    return null;
            }
        }
    }

    /// <summary>
    /// XEP-0205 §6, flow control rather than disconnection (as Prosody's mod_limits and ejabberd's shapers do): a
    /// stream over its stanza rate is read more slowly. The reader pauses, the transport's buffers fill, and
    /// TCP pushes back on the sender, so a flood costs the server at most the rate, and a bot replaying a
    /// backlog gets everything through, later. The size, byte and queue limits still end a stream that abuses them.
    /// </summary>
    private async ValueTask PaceAsync(CancellationToken ct)
    {
        if (_limits.Rate?.Take() is not { } wait || wait <= TimeSpan.Zero)
        {
            _slowed = false;
            return;
        }

        if (!_slowed)
        {
            _slowed = true;
            Log.Info("Slowing down {Who}: more than {Rate} stanzas per second", (_protocol as IDescribesPeer)?.Peer ?? Transport.Remote.ToString(), _limits.Rate.Rate);
        }

        await Task.Delay(wait, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Ends the stream: the header first if none was sent (a stream error is always sent inside a stream), the
    /// error if any, the closing tag. Then the peer has close-timeout to send its own closing tag.
    /// </summary>
    public void Close(StreamError? streamError)
    {
        if (Interlocked.Exchange(ref _closing, 1) != 0)
        {
            return;
        }

        if (streamError is not null)
        {
            _ctx.Metrics.StreamError(_protocol.Kind, streamError.Condition);
            if (streamError.Condition != StreamErrorCondition.ConnectionTimeout)
            {
                // Ended by us for a reason (conflict, policy, shutdown ...).
                _closedWithError = true;
            }
        }

        Output.Close(_headerSent ? null : _protocol.ClosingHeader(), streamError);
        try
        {
            _cts.CancelAfter(_limits.CloseTimeout);
        }
        catch (ObjectDisposedException)
        {
            // Already torn down.
        }
    }

    /// <summary>Stops reading now (a dead connection: no need to wait for the peer).</summary>
    public void Abort()
    {
        try
        {
            _cts.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // Already torn down.
        }
    }

    public void CheckIdle(long now)
    {
        if (!IsClosing)
        {
            _protocol.CheckIdle(now, Transport.LastActivity);
        }
    }

    private void OnWriterStopped(string reason)
    {
        Log.Debug("Writer stopped: {Reason}", reason);
        Abort();
    }

    /// <summary>
    /// The end of every connection: the protocol winds its state down while the transport is still there, the
    /// writer gets close-timeout to send what is queued (our closing tag included), the peer's late input is
    /// drained after a stream error (closing a socket with unread data resets it, and the reset can destroy
    /// the error before the peer reads it), and the transport is released.
    /// </summary>
    private async Task TeardownAsync(Task writer, StreamEnd end)
    {
        Close(null);
        try
        {
            await _protocol.OnEndedAsync(end).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            Log.Error(ex, "Error while ending a {Kind} stream", _protocol.Kind);
        }

        try
        {
            await writer.WaitAsync(_limits.CloseTimeout).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            Log.Debug("Writer did not finish in time");
        }

        if (_closedWithError)
        {
            await Transport.DrainAsync(TimeSpan.FromSeconds(1)).ConfigureAwait(false);
        }

        await _cts.CancelAsync().ConfigureAwait(false);
        await Transport.DisposeAsync().ConfigureAwait(false);
        foreach (var timer in _timers)
        {
            timer.Dispose();
        }

        _cts.Dispose();
        try
        {
            await _protocol.OnReleasedAsync().ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            Log.Error(ex, "Error after releasing a {Kind} stream", _protocol.Kind);
        }
    }
}

/// <summary>A protocol that can name its peer for the log (the bound JID), once it is known.</summary>
public interface IDescribesPeer
{
    /// <summary>The peer, or null while unknown; the same string instance until it changes.</summary>
    string? Peer { get; }
}
