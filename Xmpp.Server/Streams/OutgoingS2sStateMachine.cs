using System.Collections.Concurrent;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using NLog;
using Xmpp.Core;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;
using Xmpp.Server.Hosting;
using Xmpp.Server.S2s;

namespace Xmpp.Server.Streams;

/// <summary>
/// Our stream to a remote domain (we are the initiating server) as a state machine with no socket of its own:
/// the connect phase (SRV targets in order, direct TLS or not, before the connection core runs), then our header
/// first, STARTTLS as the client, and authentication of our domain by SASL EXTERNAL (our certificate) or, failing
/// that, by Server Dialback. Stanzas wait in a bounded queue until the stream is ready; when the stream fails
/// they are bounced (remote-server-not-found or remote-server-timeout; presence is dropped), and so are those the
/// writer could not send. The stream also carries db:verify questions for streams the remote domain opened to us.
/// Each element is looked up in <see cref="S2sOutTransitions"/> for the <see cref="State"/>.
/// </summary>
public sealed class OutgoingS2sStateMachine : IStreamProtocol, IDescribesPeer
{
    private readonly ServerContext _ctx;
    private readonly S2sManager _manager;
    private readonly Logger _log;
    private readonly object _gate = new();
    private readonly List<Element> _pending = [];
    private readonly ConcurrentDictionary<string, TaskCompletionSource<bool>> _verifies = new(StringComparer.Ordinal);
    private readonly Queue<Element> _verifyRequests = new();
    private StreamConnection? _connection;
    private S2sOutState _state = S2sOutState.Connecting;
    private long _deadline;
    private bool _directTls;
    private bool _negotiated;
    private bool _wasReady;
    private bool _saslAuthenticated;
    private long _lastSend = Environment.TickCount64;
    private string _remoteStreamId = string.Empty;
    private Element _features = new("features", Ns.Stream);
    private X509Certificate2? _peerCertificate;
    private StanzaErrorCondition _failure = StanzaErrorCondition.RemoteServerNotFound;
    private string? _failureReason;
    private readonly DateTimeOffset _since = DateTimeOffset.UtcNow;
    private long _stanzas;

    /// <summary>How we authenticated (set once ready) and what the peer's certificate proved (null: valid), for <see cref="Describe"/>.</summary>
    private S2sAuthentication? _authentication;
    private string? _certificateProblem;

    public OutgoingS2sStateMachine(ServerContext ctx, S2sManager manager, string localDomain, string remoteDomain)
    {
        _ctx = ctx;
        _manager = manager;
        _log = ctx.Logs.GetLogger("S2sOut");
        Local = localDomain;
        Remote = remoteDomain;
    }

    public string Kind => "s2s";

    public string Local { get; }

    public string Remote { get; }

    /// <summary>The remote domain, for the log scope.</summary>
    public string? Peer => Remote;

    public S2sOutState State
    {
        get
        {
            lock (_gate)
            {
                return _state;
            }
        }
    }

    /// <summary>Authenticated and carrying stanzas (else still connecting, or failed and about to go).</summary>
    public bool IsReady => State == S2sOutState.Ready;

    /// <summary>Resolving, connecting and negotiating together may take this long (three connect timeouts).</summary>
    private TimeSpan NegotiationTimeout => _ctx.Options.S2s.ConnectTimeout * 3;

    /// <summary>Queues a stanza: sent when the stream is ready. Closed means this stream is gone: use a new one.</summary>
    public Enqueued Send(Element stanza)
    {
        lock (_gate)
        {
            switch (_state)
            {
                case S2sOutState.Closing:
                    return Enqueued.Closed;
                case S2sOutState.Ready:
                    Volatile.Write(ref _lastSend, Environment.TickCount64);
                    var enqueued = _connection!.Output.TryEnqueue(stanza, _ctx.Options.S2s.QueueLimit, _ctx.Options.Limits.OutputBytes);
                    if (enqueued == Enqueued.Queued)
                    {
                        _stanzas++;
                    }

                    return enqueued;
                default:
                    if (_pending.Count >= _ctx.Options.S2s.QueueLimit)
                    {
                        return Enqueued.Full;
                    }

                    _pending.Add(stanza);
                    _stanzas++;
                    return Enqueued.Queued;
            }
        }
    }

    /// <summary>Asks the remote (authoritative) server whether it issued a dialback key for a stream it opened to us (XEP-0220 §2.2).</summary>
    public async Task<bool> VerifyAsync(string streamId, string key, CancellationToken ct)
    {
        var tcs = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        if (!_verifies.TryAdd(streamId, tcs))
        {
            return false;
        }

        var request = new Element("verify", Ns.Dialback).SetAttribute("from", Local).SetAttribute("to", Remote).SetAttribute("id", streamId).AddText(key);
        lock (_gate)
        {
            if (_state == S2sOutState.Closing)
            {
                _verifies.TryRemove(streamId, out _);
                return false;
            }

            _verifyRequests.Enqueue(request);
            if (CanAsk)
            {
                AskQueued();
            }
        }

        try
        {
            return await tcs.Task.WaitAsync(NegotiationTimeout, ct).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            _log.Warn("No dialback verification answer from {Remote} for stream {Id}", Remote, streamId);
            return false;
        }
        finally
        {
            _verifies.TryRemove(streamId, out _);
        }
    }

    // ---- the connect phase, before the connection core runs ---------------------------------------------

    /// <summary>
    /// Connects (<see cref="S2sConnector"/>) and runs the stream on the connection core. When no connection can be
    /// made, what waited is bounced.
    /// </summary>
    public async Task RunAsync(CancellationToken shutdown)
    {
        _deadline = Environment.TickCount64 + (long)NegotiationTimeout.TotalMilliseconds;
        StreamConnection? connection = null;
        var reason = "no usable target";
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(shutdown);
        deadline.CancelAfter(NegotiationTimeout);
        try
        {
            var (transport, directTls, problem) = await S2sConnector.ConnectAsync(_ctx, _manager.Resolver, Remote, _log, deadline.Token).ConfigureAwait(false);
            reason = problem;
            connection = transport is null ? null : Attach(transport, directTls, shutdown);
        }
        catch (OperationCanceledException) when (!shutdown.IsCancellationRequested)
        {
            Failed(StanzaErrorCondition.RemoteServerTimeout, "timed out");
        }
        catch (OperationCanceledException)
        {
            _log.Debug("s2s stream to {Remote} cancelled", Remote);
        }
        catch (Exception ex)
        {
            // This phase runs on its own task, before the connection core's catch-all: nothing may escape it.
            _log.Error(ex, "Unexpected error while connecting to {Remote}", Remote);
            reason = ex.Message;
        }
        finally
        {
            if (connection is null)
            {
                Failed(StanzaErrorCondition.RemoteServerNotFound, reason);
                await BounceAsync(Finish()).ConfigureAwait(false);
            }
        }

        if (connection is not null)
        {
            await _ctx.Connections.Start(connection).ConfigureAwait(false);
        }
    }

    /// <summary>The stream on a connected transport (the connect phase's, or a test's), ready for the connection manager to run.</summary>
    public StreamConnection Attach(IStreamTransport transport, bool directTls, CancellationToken shutdown)
    {
        if (_deadline == 0)
        {
            _deadline = Environment.TickCount64 + (long)NegotiationTimeout.TotalMilliseconds;
        }

        _directTls = directTls;
        _connection = new StreamConnection(_ctx, transport, this, new StreamLimits(null, _ctx.Options.Limits.CloseTimeout), _log, shutdown);
        return _connection;
    }

    // ---- the connection core's side -------------------------------------------------------------------

    public async ValueTask StartAsync(StreamConnection connection, CancellationToken cancellationToken)
    {
        var left = TimeSpan.FromMilliseconds(Math.Max(1, _deadline - Environment.TickCount64));
        connection.After(left, NegotiationTimedOut);
        if (_directTls)
        {
            // XEP-0368: TLS from the first byte, ALPN xmpp-server.
            await connection.StartTlsAsClientAsync(await S2sTls.ClientOptionsAsync(_ctx, Remote, Local, directTls: true, cancellationToken).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
            _peerCertificate = S2sTls.Established(connection.Transport, _log);
        }

        // RFC 6120 §4.2: the initiating entity opens the stream.
        SetState(S2sOutState.AwaitingHeader);
        connection.SendHeader(Header());
    }

    public ValueTask OnHeaderAsync(StreamHeader header, CancellationToken cancellationToken)
    {
        if (header.DefaultNamespace != Ns.Server)
        {
            throw Refused(StreamErrorCondition.InvalidNamespace, "the peer's stream is not jabber:server");
        }

        _remoteStreamId = header.Id ?? string.Empty;
        SetState(S2sOutState.AwaitingFeatures);
        return ValueTask.CompletedTask;
    }

    public async ValueTask<StreamStep> OnElementAsync(Element element, CancellationToken cancellationToken)
    {
        var rule = S2sOutTransitions.For(State, Classify(element));
        if (rule.Action is not { } action)
        {
            throw Refused(rule.Refusal!.Condition, $"<{element.Name} xmlns='{element.Namespace}'/>: {rule.Refusal.Reason}");
        }

        return action switch
        {
            S2sOutAction.Negotiate => Negotiate(element),
            S2sOutAction.StartTls => await StartTlsAsync(cancellationToken).ConfigureAwait(false),
            S2sOutAction.TlsRefused => Fail("STARTTLS refused"),
            S2sOutAction.SaslSuccess => SaslSucceeded(),
            S2sOutAction.SaslRefused => SaslRefused(element),
            S2sOutAction.DialbackResult => DialbackResult(element),
            S2sOutAction.VerifyAnswer => VerifyAnswer(element),
            S2sOutAction.PeerError => PeerError(element),
            _ => StreamStep.Continue,
        };
    }

    /// <summary>What kind of element this is, for the transition table.</summary>
    public static S2sOutElementKind Classify(Element e) => (e.Namespace, e.Name) switch
    {
        (Ns.Stream, "features") => S2sOutElementKind.Features,
        (Ns.Stream, "error") => S2sOutElementKind.StreamError,
        (Ns.Tls, "proceed") => S2sOutElementKind.TlsProceed,
        (Ns.Tls, _) => S2sOutElementKind.TlsFailure,
        (Ns.Sasl, "success") => S2sOutElementKind.SaslSuccess,
        (Ns.Sasl, _) => S2sOutElementKind.SaslFailure,
        (Ns.Dialback, "result") => S2sOutElementKind.DialbackResult,
        (Ns.Dialback, "verify") => S2sOutElementKind.DialbackVerify,
        _ => S2sOutElementKind.Other,
    };

    /// <summary>The next step from the peer's features (RFC 6120 §4.3.2): STARTTLS, SASL EXTERNAL, dialback, or ready.</summary>
    private StreamStep Negotiate(Element features)
    {
        _features = features;
        var s2s = _ctx.Options.S2s;
        if (!_connection!.Transport.IsSecure)
        {
            if (features.Child("starttls", Ns.Tls) is not null)
            {
                SetState(S2sOutState.AwaitingProceed);
                _connection.SendNonza(new Element("starttls", Ns.Tls));
                return StreamStep.Continue;
            }

            if (s2s.RequireEncryption)
            {
                return Fail("the peer offers no TLS");
            }
        }

        if (_saslAuthenticated)
        {
            return BecomeReady();
        }

        if (!_negotiated)
        {
            var certificateProblem = _manager.Certificates.Check(_peerCertificate, Remote, DateTimeOffset.UtcNow);
            lock (_gate)
            {
                _certificateProblem = certificateProblem;
            }

            if (certificateProblem is not null)
            {
                if (!s2s.AllowDialback)
                {
                    return Fail(certificateProblem + " (and dialback is not allowed)");
                }

                _log.Info("Certificate of {Remote} not trusted ({Reason}): relying on dialback", Remote, certificateProblem);
            }

            // The questions asked while connecting go out now that the stream is secured as configured
            // (XEP-0220 §2.2: db:verify needs no authenticated stream), before our own authentication.
            lock (_gate)
            {
                _negotiated = true;
                AskQueued();
            }
        }

        // SASL EXTERNAL only with a certificate that validates by our own rules: a peer that refuses it may
        // not accept dialback on the same stream (ejabberd 23 does not), and a self-signed one is refused.
        var ours = _ctx.Certificates.Find(Local) ?? _ctx.Certificates.Default;
        if (_manager.Certificates.Check(ours.Certificate, Local, DateTimeOffset.UtcNow) is null
            && features.Child("mechanisms", Ns.Sasl)?.Elements().Any(m => m.Text == "EXTERNAL") == true)
        {
            SetState(S2sOutState.AwaitingSaslResult);
            _connection.SendNonza(new Element("auth", Ns.Sasl).SetAttribute("mechanism", "EXTERNAL").AddText(Convert.ToBase64String(Encoding.UTF8.GetBytes(Local))));
            return StreamStep.Continue;
        }

        return StartDialback();
    }

    /// <summary>RFC 6120 §5.4.3.3: TLS as the client on the same transport, then a new stream, our header first.</summary>
    private async ValueTask<StreamStep> StartTlsAsync(CancellationToken ct)
    {
        var connection = _connection!;
        await connection.StartTlsAsClientAsync(await S2sTls.ClientOptionsAsync(_ctx, Remote, Local, directTls: false, ct).ConfigureAwait(false), ct).ConfigureAwait(false);
        _peerCertificate = S2sTls.Established(connection.Transport, _log);
        return RestartStream();
    }

    /// <summary>RFC 6120 §4.3.3: the initiating side's restart: a new stream on the same transport, our header first.</summary>
    private StreamStep RestartStream()
    {
        var connection = _connection!;
        connection.ExpectNewHeader();
        connection.Transport.Restart();
        SetState(S2sOutState.AwaitingHeader);
        connection.SendHeader(Header());
        return StreamStep.Continue;
    }

    private StreamStep SaslSucceeded()
    {
        _log.Info("s2s to {Remote}: authenticated as {Local} by SASL EXTERNAL", Remote, Local);
        _saslAuthenticated = true;
        lock (_gate)
        {
            _authentication = S2sAuthentication.SaslExternal;
        }

        return RestartStream();
    }

    private StreamStep SaslRefused(Element answer)
    {
        _log.Info("s2s to {Remote}: SASL EXTERNAL refused ({Answer}), trying dialback", Remote, answer.FirstElement()?.Name ?? answer.Name);
        return StartDialback();
    }

    /// <summary>XEP-0220 §2.1.1: our key for this stream, as the originating server.</summary>
    private StreamStep StartDialback()
    {
        if (_features.Child("dialback", Ns.DialbackFeature) is null && _features.Child("mechanisms", Ns.Sasl) is not null)
        {
            return Fail("the peer offers neither usable SASL nor dialback");
        }

        lock (_gate)
        {
            SetState(S2sOutState.AwaitingDialbackResult);
            _connection!.SendNonza(new Element("result", Ns.Dialback).SetAttribute("from", Local).SetAttribute("to", Remote)
                .AddText(_manager.Dialback.Key(Remote, Local, _remoteStreamId)));
            AskQueued();
        }

        return StreamStep.Continue;
    }

    private StreamStep DialbackResult(Element answer)
    {
        if (answer.GetAttribute("type") != "valid")
        {
            return Fail($"dialback {answer.GetAttribute("type")}");
        }

        _log.Info("s2s to {Remote}: authenticated as {Local} by dialback", Remote, Local);
        lock (_gate)
        {
            _authentication = S2sAuthentication.Dialback;
        }

        return BecomeReady();
    }

    /// <summary>Authenticated: what waited goes out, in order, before anything queued after.</summary>
    private StreamStep BecomeReady()
    {
        lock (_gate)
        {
            if (_state == S2sOutState.Closing)
            {
                return StreamStep.Continue;
            }

            _state = S2sOutState.Ready;
            _wasReady = true;
            AskQueued();
            foreach (var stanza in _pending)
            {
                _connection!.Output.TryEnqueue(stanza, _ctx.Options.S2s.QueueLimit, _ctx.Options.Limits.OutputBytes);
            }

            Volatile.Write(ref _lastSend, Environment.TickCount64);
            _pending.Clear();
        }

        return StreamStep.Continue;
    }

    /// <summary>
    /// Whether a db:verify question can be written now, from any thread (under the gate): only where no stream
    /// restart is pending, since an element written between our &lt;starttls/&gt; or &lt;auth/&gt; and our next header
    /// would land where the peer expects that header (RFC 6120 §5.4.3.3, §6.4.6). The questions asked meanwhile
    /// wait in the queue and go out at the next step that allows them.
    /// </summary>
    private bool CanAsk => _state is S2sOutState.AwaitingDialbackResult or S2sOutState.Ready;

    /// <summary>Writes the db:verify questions that waited (under the gate, in a state where writing is safe).</summary>
    private void AskQueued()
    {
        while (_verifyRequests.TryDequeue(out var request))
        {
            _connection!.SendNonza(request);
        }
    }

    private StreamStep VerifyAnswer(Element answer)
    {
        if (_verifies.TryGetValue(answer.GetAttribute("id") ?? string.Empty, out var tcs))
        {
            tcs.TrySetResult(answer.GetAttribute("type") == "valid");
        }

        return StreamStep.Continue;
    }

    private StreamStep PeerError(Element error)
    {
        var condition = error.FirstElement()?.Name ?? "?";
        _log.Warn("{Remote} sent stream error {Condition}", Remote, condition);
        Failed(StanzaErrorCondition.RemoteServerNotFound, "stream error " + condition);
        Close();
        return StreamStep.Stop;
    }

    /// <summary>The negotiation failed: the stream ends, and what waited for it is bounced.</summary>
    private StreamStep Fail(string reason)
    {
        _log.Warn("s2s to {Remote} at {Endpoint} failed: {Reason}", Remote, _connection!.Transport.Remote, reason);
        Failed(StanzaErrorCondition.RemoteServerNotFound, reason);
        Close();
        return StreamStep.Stop;
    }

    private XmppStreamException Refused(StreamErrorCondition condition, string reason)
    {
        Failed(StanzaErrorCondition.RemoteServerNotFound, reason);
        return new XmppStreamException(condition, reason);
    }

    /// <summary>Why the stream did not become ready (the first reason counts), for the bounces.</summary>
    private void Failed(StanzaErrorCondition condition, string reason)
    {
        lock (_gate)
        {
            if (_failureReason is null && !_wasReady)
            {
                (_failure, _failureReason) = (condition, reason);
            }
        }
    }

    /// <summary>Not ready within the negotiation timeout: the stream is dropped without waiting for the peer.</summary>
    private void NegotiationTimedOut()
    {
        lock (_gate)
        {
            if (_state is S2sOutState.Ready or S2sOutState.Closing)
            {
                return;
            }
        }

        Failed(StanzaErrorCondition.RemoteServerTimeout, "timed out");
        Close();
        _connection!.Abort();
    }

    public async ValueTask OnEndedAsync(StreamEnd end)
    {
        if (_wasReady && end != StreamEnd.ClosedByUs)
        {
            _log.Info("s2s stream to {Remote} ended", Remote);
        }

        Failed(StanzaErrorCondition.RemoteServerNotFound, end == StreamEnd.Dropped ? "connection lost" : "stream closed during negotiation");
        await BounceAsync(Finish()).ConfigureAwait(false);
    }

    public async ValueTask OnReleasedAsync()
    {
        _peerCertificate?.Dispose();

        // Stanzas queued but never written (the stream failed after it was ready).
        await BounceAsync(_connection!.Output.Drain()).ConfigureAwait(false);
    }

    /// <summary>
    /// An outgoing stream with nothing to send and nothing received for the s2s idle timeout is closed; the next
    /// stanza for the domain opens a new one.
    /// </summary>
    public void CheckIdle(long now, long lastActivity)
    {
        var idle = (long)_ctx.Options.S2s.IdleTimeout.TotalMilliseconds;
        lock (_gate)
        {
            if (_state != S2sOutState.Ready || now - Volatile.Read(ref _lastSend) < idle || now - lastActivity < idle)
            {
                return;
            }
        }

        _log.Info("Closing the idle s2s stream to {Remote}", Remote);
        Close();
    }

    public OutgoingHeader ClosingHeader() => new(Local, null, null);

    /// <summary>The connection's id once connected.</summary>
    internal long? ConnectionId => _connection?.ConnectionId;

    /// <summary>The stream as the console lists it (from any thread).</summary>
    internal S2sStreamInfo Describe()
    {
        S2sOutState state;
        S2sAuthentication? authentication;
        string? certificateProblem;
        long stanzas;
        lock (_gate)
        {
            (state, authentication, certificateProblem, stanzas) = (_state, _authentication, _certificateProblem, _stanzas);
        }

        var connection = _connection;
        var tls = connection?.Transport.Tls is { } ssl ? $"{ssl.SslProtocol} {ssl.NegotiatedCipherSuite}" : null;
        IReadOnlyList<S2sPeer> peers = authentication is { } method && state == S2sOutState.Ready ? [new S2sPeer(Remote, method, certificateProblem)] : [];
        return new S2sStreamInfo(S2sDirection.Outgoing, connection?.ConnectionId, Local, Remote, peers, connection?.Transport.Remote.ToString(),
            state.ToString(), tls, _directTls, _since, stanzas);
    }

    /// <summary>Ends the stream as the idle timeout does, for an administrator: the next stanza for the domain opens a new one.</summary>
    internal void End(string by)
    {
        _log.Info("Closing the s2s stream to {Remote} ({By})", Remote, by);
        Close();
    }

    private OutgoingHeader Header() => new(Local, Remote, null);

    private void SetState(S2sOutState state)
    {
        lock (_gate)
        {
            if (_state != S2sOutState.Closing)
            {
                _state = state;
            }
        }
    }

    /// <summary>Our end of the stream: nothing more is taken (a new stanza for the domain opens a new stream).</summary>
    private void Close()
    {
        lock (_gate)
        {
            _state = S2sOutState.Closing;
        }

        _connection?.Close(null);
    }

    /// <summary>The stream is gone: no longer the domain's route, its questions unanswered, what waited taken out.</summary>
    private List<Element> Finish()
    {
        List<Element> left;
        lock (_gate)
        {
            _state = S2sOutState.Closing;
            left = [.. _pending];
            _pending.Clear();
        }

        _manager.Remove(this);
        foreach (var (_, tcs) in _verifies)
        {
            tcs.TrySetResult(false);
        }

        return left;
    }

    private async Task BounceAsync(List<Element> left)
    {
        if (left.Count == 0)
        {
            return;
        }

        string reason;
        StanzaErrorCondition condition;
        lock (_gate)
        {
            (condition, reason) = _wasReady ? (StanzaErrorCondition.RemoteServerTimeout, "stream closed") : (_failure, _failureReason ?? "no usable target");
        }

        if (!_wasReady)
        {
            _log.Warn("Could not reach {Remote} ({Reason}): bouncing {Count} stanzas", Remote, reason, left.Count);
        }

        await _manager.BounceAsync(left, condition, $"{Remote}: {reason}").ConfigureAwait(false);
    }
}
