using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Text;
using Xmpp.Core;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;
using Xmpp.Server.Hosting;
using Xmpp.Server.Net;

namespace Xmpp.Server.S2s;

/// <summary>
/// Our stream to a remote domain (we are the initiating server): SRV targets in order, direct TLS or
/// STARTTLS, then authentication of our domain by SASL EXTERNAL (our certificate) or, failing that, by
/// Server Dialback. Stanzas wait in a bounded queue until the stream is ready; when every target fails
/// they are bounced (remote-server-not-found or remote-server-timeout; presence is dropped). The stream
/// also carries db:verify questions for streams the remote domain opened to us.
/// </summary>
public sealed class OutgoingS2s : S2sConnection
{
    private readonly object _gate = new();
    private readonly List<Element> _pending = [];
    private readonly ConcurrentDictionary<string, TaskCompletionSource<bool>> _verifies = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<Element> _verifyRequests = new();
    private State _state = State.Connecting;
    private bool _negotiated;
    private long _lastSend = Environment.TickCount64;
    private string _remoteStreamId = string.Empty;
    private Element _features = new("features", Ns.Stream);
    private XmppStreamReader? _reader;

    public OutgoingS2s(ServerContext ctx, S2sManager manager, string localDomain, string remoteDomain, CancellationToken shutdown)
        : base(ctx, manager, "S2sOut", shutdown)
    {
        Local = localDomain;
        Remote = remoteDomain;
    }

    private enum State
    {
        Connecting,
        Ready,
        Failed,
    }

    /// <summary>Authenticated and carrying stanzas (else still connecting, or failed and about to go).</summary>
    public bool IsReady => _state == State.Ready;

    public string Local { get; }

    public string Remote { get; }

    protected override string LocalDomain => Local;

    /// <summary>Queues a stanza: sent when the stream is ready. Closed means this stream is gone: use a new one.</summary>
    public EnqueueResult Send(Element stanza)
    {
        lock (_gate)
        {
            switch (_state)
            {
                case State.Failed:
                    return EnqueueResult.Closed;
                case State.Ready:
                    Volatile.Write(ref _lastSend, Environment.TickCount64);
                    return Enqueue(stanza);
                default:
                    if (_pending.Count >= Ctx.Options.S2s.QueueLimit)
                    {
                        return EnqueueResult.Full;
                    }

                    _pending.Add(stanza);
                    return EnqueueResult.Queued;
            }
        }
    }

    /// <summary>Asks the remote (authoritative) server whether it issued a dialback key for a stream it opened to us.</summary>
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
            if (_state == State.Failed)
            {
                _verifies.TryRemove(streamId, out _);
                return false;
            }

            if (_negotiated)
            {
                SendElement(request);
            }
            else
            {
                _verifyRequests.Enqueue(request);
            }
        }

        try
        {
            return await tcs.Task.WaitAsync(Ctx.Options.S2s.ConnectTimeout * 3, ct).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            Log.Warn("No dialback verification answer from {Remote} for stream {Id}", Remote, streamId);
            return false;
        }
        finally
        {
            _verifies.TryRemove(streamId, out _);
        }
    }

    public override void CheckIdle(long now)
    {
        if (IsClosing || Activity is null)
        {
            return;
        }

        var idle = (long)Ctx.Options.S2s.IdleTimeout.TotalMilliseconds;
        bool ready;
        lock (_gate)
        {
            ready = _state == State.Ready;
        }

        if (ready && now - Volatile.Read(ref _lastSend) >= idle && now - Activity.LastRead >= idle)
        {
            Log.Info("Closing the idle s2s stream to {Remote}", Remote);
            lock (_gate)
            {
                _state = State.Failed;
            }

            Close(null);
        }
    }

    public override async Task RunAsync()
    {
        using var scope = NLog.ScopeContext.PushProperty("ConnectionId", ConnectionId);
        using var remoteScope = NLog.ScopeContext.PushProperty("Remote", Remote);
        var writer = Task.CompletedTask;
        var failure = StanzaErrorCondition.RemoteServerNotFound;
        string reason = "no usable target";
        try
        {
            using var negotiation = CancellationTokenSource.CreateLinkedTokenSource(Cts.Token);
            negotiation.CancelAfter(Ctx.Options.S2s.ConnectTimeout * 3);
            (writer, reason) = await ConnectAsync(negotiation.Token).ConfigureAwait(false);
            if (!_negotiated || _state != State.Ready)
            {
                return;
            }

            // Ready: read what the remote sends on this stream (dialback answers, its closing tag).
            while (true)
            {
                var e = await NextAsync(Cts.Token).ConfigureAwait(false);
                if (e is null)
                {
                    Log.Info("s2s stream to {Remote} ended", Remote);
                    Close(null);
                    break;
                }

                if (e.Is("error", Ns.Stream))
                {
                    Log.Warn("{Remote} sent stream error {Condition}", Remote, e.FirstElement()?.Name ?? "?");
                    Close(null);
                    break;
                }
            }
        }
        catch (OperationCanceledException) when (!Cts.IsCancellationRequested)
        {
            failure = StanzaErrorCondition.RemoteServerTimeout;
            reason = "timed out";
        }
        catch (OperationCanceledException)
        {
            Log.Debug("s2s stream to {Remote} cancelled", Remote);
        }
        catch (XmppStreamException ex)
        {
            reason = ex.Message;
            Log.Warn("s2s stream to {Remote} failed: {Condition} {Reason}", Remote, ErrorNames.ToElementName(ex.Condition), ex.Message);
            Close(ex.ToStreamError());
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException or AuthenticationException)
        {
            reason = ex.Message;
            Log.Info("s2s stream to {Remote} lost: {Reason}", Remote, ex.Message);
        }
        catch (Exception ex)
        {
            reason = ex.Message;
            Log.Error(ex, "Unexpected error on the s2s stream to {Remote}", Remote);
            Close(new StreamError(StreamErrorCondition.InternalServerError));
        }
        finally
        {
            List<Element> left;
            bool wasReady;
            lock (_gate)
            {
                wasReady = _state == State.Ready;
                _state = State.Failed;
                left = [.. _pending];
                _pending.Clear();
            }

            Manager.Remove(this);
            foreach (var (_, tcs) in _verifies)
            {
                tcs.TrySetResult(false);
            }

            _reader?.Dispose();
            await DisposeTransportAsync(writer).ConfigureAwait(false);
            left.AddRange(Unsent());
            if (left.Count > 0)
            {
                if (!wasReady)
                {
                    Log.Warn("Could not reach {Remote} ({Reason}): bouncing {Count} stanzas", Remote, reason, left.Count);
                }

                await Manager.BounceAsync(left, wasReady ? StanzaErrorCondition.RemoteServerTimeout : failure, $"{Remote}: {reason}").ConfigureAwait(false);
            }

            Cts.Dispose();
        }
    }

    /// <summary>Tries each target until one gives an authenticated stream; returns the writer task and the last failure.</summary>
    private async Task<(Task Writer, string Reason)> ConnectAsync(CancellationToken ct)
    {
        var reason = "no usable target";
        var targets = await Manager.Resolver.ResolveAsync(Remote, ct).ConfigureAwait(false);
        foreach (var target in targets)
        {
            var addresses = await Manager.Resolver.AddressesAsync(target.Host, ct).ConfigureAwait(false);
            if (addresses.Count == 0)
            {
                reason = $"{target.Host} has no address";
                continue;
            }

            foreach (var address in addresses)
            {
                var endpoint = new IPEndPoint(address, target.Port);
                var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                try
                {
                    using var connect = CancellationTokenSource.CreateLinkedTokenSource(ct);
                    connect.CancelAfter(Ctx.Options.S2s.ConnectTimeout);
                    await socket.ConnectAsync(endpoint, connect.Token).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is SocketException || (ex is OperationCanceledException && !ct.IsCancellationRequested))
                {
                    socket.Dispose();
                    reason = $"cannot connect to {endpoint}: {(ex is SocketException se ? se.SocketErrorCode.ToString() : "timeout")}";
                    Log.Info("s2s to {Remote}: {Reason}", Remote, reason);
                    continue;
                }

                Log.Info("s2s connected to {Remote} at {Endpoint}{Mode}", Remote, endpoint, target.DirectTls ? " (direct TLS)" : string.Empty);
                Attach(socket);
                var writer = WriterAsync();
                try
                {
                    var problem = await NegotiateAsync(target.DirectTls, ct).ConfigureAwait(false);
                    if (problem is null)
                    {
                        return (writer, string.Empty);
                    }

                    reason = problem;
                    Log.Warn("s2s to {Remote} at {Endpoint} failed: {Reason}", Remote, endpoint, problem);
                }
                catch (Exception ex) when (ex is IOException or SocketException or AuthenticationException or XmppStreamException)
                {
                    reason = ex.Message;
                    Log.Warn("s2s to {Remote} at {Endpoint} failed: {Reason}", Remote, endpoint, ex.Message);
                }

                // Only one transport at a time: this one is done.
                Close(null);
                return (writer, reason);
            }
        }

        return (Task.CompletedTask, reason);
    }

    /// <summary>TLS and authentication on a connected socket; null when the stream is ready.</summary>
    private async Task<string?> NegotiateAsync(bool directTls, CancellationToken ct)
    {
        var s2s = Ctx.Options.S2s;
        if (directTls)
        {
            await StartTlsAsClientAsync(Remote, Local, directTls: true, ct).ConfigureAwait(false);
        }

        await OpenAsync(ct).ConfigureAwait(false);
        if (!Tls)
        {
            if (_features.Child("starttls", Ns.Tls) is not null)
            {
                SendRaw("<starttls xmlns='" + Ns.Tls + "'/>");
                var proceed = await NextAsync(ct).ConfigureAwait(false);
                if (proceed is null || !proceed.Is("proceed", Ns.Tls))
                {
                    return "STARTTLS refused";
                }

                await StartTlsAsClientAsync(Remote, Local, directTls: false, ct).ConfigureAwait(false);
                await OpenAsync(ct).ConfigureAwait(false);
            }
            else if (s2s.RequireEncryption)
            {
                return "the peer offers no TLS";
            }
        }

        var certificateProblem = Manager.Certificates.Check(PeerCertificate, Remote, DateTimeOffset.UtcNow);
        if (certificateProblem is not null)
        {
            if (!s2s.AllowDialback)
            {
                return certificateProblem + " (and dialback is not allowed)";
            }

            Log.Info("Certificate of {Remote} not trusted ({Reason}): relying on dialback", Remote, certificateProblem);
        }

        lock (_gate)
        {
            _negotiated = true;
            while (_verifyRequests.TryDequeue(out var request))
            {
                SendElement(request);
            }
        }

        // SASL EXTERNAL only with a certificate that validates by our own rules: a peer that refuses it may
        // not accept dialback on the same stream (ejabberd 23 does not), and a self-signed one is refused.
        var ours = Ctx.Certificates.Find(Local) ?? Ctx.Certificates.Default;
        var ourCertificateProblem = Manager.Certificates.Check(ours.Certificate, Local, DateTimeOffset.UtcNow);
        var authenticated = false;
        if (ourCertificateProblem is null && _features.Child("mechanisms", Ns.Sasl)?.Elements().Any(m => m.Text == "EXTERNAL") == true)
        {
            SendRaw("<auth xmlns='" + Ns.Sasl + "' mechanism='EXTERNAL'>" + Convert.ToBase64String(Encoding.UTF8.GetBytes(Local)) + "</auth>");
            var answer = await NextAsync(ct).ConfigureAwait(false);
            if (answer is not null && answer.Is("success", Ns.Sasl))
            {
                Log.Info("s2s to {Remote}: authenticated as {Local} by SASL EXTERNAL", Remote, Local);
                await OpenAsync(ct).ConfigureAwait(false);
                authenticated = true;
            }
            else
            {
                Log.Info("s2s to {Remote}: SASL EXTERNAL refused ({Answer}), trying dialback", Remote, answer?.FirstElement()?.Name ?? "no answer");
            }
        }

        if (!authenticated)
        {
            if (_features.Child("dialback", Ns.DialbackFeature) is null && _features.Child("mechanisms", Ns.Sasl) is not null)
            {
                return "the peer offers neither usable SASL nor dialback";
            }

            SendElement(new Element("result", Ns.Dialback).SetAttribute("from", Local).SetAttribute("to", Remote)
                .AddText(Manager.Dialback.Key(Remote, Local, _remoteStreamId)));
            while (true)
            {
                var answer = await NextAsync(ct).ConfigureAwait(false);
                if (answer is null)
                {
                    return "stream closed during dialback";
                }

                if (answer.Is("result", Ns.Dialback))
                {
                    if (answer.GetAttribute("type") != "valid")
                    {
                        return $"dialback {answer.GetAttribute("type")}";
                    }

                    Log.Info("s2s to {Remote}: authenticated as {Local} by dialback", Remote, Local);
                    break;
                }

                if (answer.Is("error", Ns.Stream))
                {
                    return "stream error " + (answer.FirstElement()?.Name ?? "?");
                }
            }
        }

        lock (_gate)
        {
            _state = State.Ready;
            foreach (var stanza in _pending)
            {
                Enqueue(stanza);
            }

            Volatile.Write(ref _lastSend, Environment.TickCount64);
            _pending.Clear();
        }

        return null;
    }

    /// <summary>Sends our header and reads the peer's header and features (after each restart).</summary>
    private async Task OpenAsync(CancellationToken ct)
    {
        _reader?.Dispose();
        _reader = NewReader();
        SendHeader(Local, Remote, null);
        var ev = await _reader.ReadAsync(ct).ConfigureAwait(false);
        if (ev.Kind != XmppStreamEventKind.Header)
        {
            throw new XmppStreamException(StreamErrorCondition.BadFormat, "no stream header from the peer");
        }

        if (ev.Header!.DefaultNamespace != Ns.Server)
        {
            throw new XmppStreamException(StreamErrorCondition.InvalidNamespace, "the peer's stream is not jabber:server");
        }

        _remoteStreamId = ev.Header.Id ?? string.Empty;
        var features = await NextAsync(ct).ConfigureAwait(false);
        _features = features is not null && features.Is("features", Ns.Stream) ? features : new Element("features", Ns.Stream);
    }

    /// <summary>The next element that is not a dialback verification answer (those complete their requests); null at the end.</summary>
    private async Task<Element?> NextAsync(CancellationToken ct)
    {
        while (true)
        {
            var ev = await _reader!.ReadAsync(ct).ConfigureAwait(false);
            if (ev.Kind != XmppStreamEventKind.Element)
            {
                return null;
            }

            var e = ev.Element!;
            if (e.Is("verify", Ns.Dialback))
            {
                if (_verifies.TryGetValue(e.GetAttribute("id") ?? string.Empty, out var tcs))
                {
                    tcs.TrySetResult(e.GetAttribute("type") == "valid");
                }

                continue;
            }

            return e;
        }
    }
}
