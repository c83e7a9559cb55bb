using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Text;
using NLog;
using Xmpp.Core;
using Xmpp.Core.Addressing;
using Xmpp.Core.Sasl;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;
using Xmpp.Server.Hosting;
using Xmpp.Server.Routing;
using Xmpp.Server.Sessions;
using Xmpp.Server.Tls;

namespace Xmpp.Server.Net;

/// <summary>
/// One client-to-server stream (RFC 6120): a reader loop that drives the stream state machine
/// (header → STARTTLS → SASL → bind → established, with a new XML reader at each restart) and a writer
/// loop fed by an unbounded channel whose stanza count is capped, so routing never waits on this socket.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Reliability", "CA1001", Justification = "RunAsync owns the stream and socket and disposes them in its teardown.")]
[Specification("RFC 6120", "§4–§8, §11", Note = "Client streams: STARTTLS (required by default; TLS 1.2 with ECDHE and AEAD, or TLS 1.3), SASL, resource binding (client-chosen or generated; binding a bound resource again replaces the old session with conflict), stanza semantics, stream and stanza errors, restricted XML.")]
[Specification("RFC 3921", "§3", Note = "The legacy session iq, answered and offered as optional.")]
[Specification("XEP-0368", "1.1.0", Note = "Direct TLS for clients on a second port (ALPN xmpp-client).")]
[Specification("XEP-0388", "1.0.4", Note = "SASL2 with every SCRAM mechanism and PLAIN, success without a stream restart followed by the stream features, failures in the SASL2 form; no upgrade or second-factor tasks (continue).")]
[Specification("XEP-0386", "1.0.0", Note = "Bind2 inside SASL2: a resource from the client's tag, the same for the same user agent; carbons, client state and stream management enabled inline; resumption inline first, binding if it fails.")]
[Specification("XEP-0474", "0.4.0", Note = "The SCRAM server-first-message carries the 'h' hash of the advertised mechanisms and channel-binding types, which the SCRAM signature covers.")]
[Specification("XEP-0440", "0.4.2", Note = "The channel binding types of each TLS connection are listed in the stream features: tls-exporter (TLS 1.3), tls-unique, tls-server-end-point. None over WebSocket and BOSH, where no -PLUS mechanism is offered either.")]
[Specification("XEP-0205", "1.0", Note = "Limits on stanza size, depth, attributes, namespaces, rate (token bucket: a faster stream is read more slowly, not cut off), connections per address, sessions per account, output queues and authentication failures, each with the RFC's error.")]
public sealed class ClientConnection : IClientSession, IConnection
{
    private readonly ServerContext _ctx;
    private readonly IPEndPoint _remote;
    private readonly bool _directTls;
    private readonly Logger _log;
    private readonly OutputQueue _out;
    private readonly CancellationTokenSource _cts;
    private readonly ActivityStream _activity;
    private readonly TokenBucket? _rate;
    private bool _slowed;
    private volatile Stream _stream;
    private long _pingSentAt;
    private int _closing;
    private bool _headerSent;
    private string? _host;
    private bool _tls;
    private readonly string _transportName = string.Empty;
    private HostCertificate? _tlsCertificate;
    private ClientChannelBinding? _channelBinding;
    private ISaslServerMechanism? _sasl;
    private int _saslFailures;
    private string? _user;
    private Jid? _jid;
    private bool _bound;

    // XEP-0198: the managed stream's state, where the session is in its life, and why the stream ended.
    private readonly CancellationToken _shutdown;
    private SmState? _sm;
    private SmPhase _phase;
    private ClientConnection? _resumedBy;
    private bool _resumePending;
    private bool _endedByClient;
    private bool _closedWithError;
    private CancellationTokenSource? _resumeWait;
    private Task? _ending;

    // XEP-0388: the <authenticate/> of a SASL2 exchange in progress (its inline requests run on success).
    private const string Sasl2Namespace = "urn:xmpp:sasl:2";
    private const string Bind2Namespace = "urn:xmpp:bind:0";
    private const string FastNamespace = "urn:xmpp:fast:0";

    /// <summary>How long a XEP-0484 token stays valid without being used.</summary>
    private static readonly TimeSpan FastTokenLifetime = TimeSpan.FromDays(14);
    private Element? _sasl2;

    public ClientConnection(ServerContext ctx, Socket socket, bool directTls, CancellationToken shutdown)
        : this(ctx, new NetworkStream(socket, ownsSocket: true), (IPEndPoint)socket.RemoteEndPoint!, directTls, shutdown)
    {
    }

    /// <summary>A stream over any transport (the socket's, or an in-memory one for the fuzzer); disposing it releases the transport.</summary>
    /// <param name="secureTransport">The transport is encrypted already (WebSocket over HTTPS): no STARTTLS, and no channel binding to offer.</param>
    public ClientConnection(ServerContext ctx, Stream transport, IPEndPoint remote, bool directTls, CancellationToken shutdown, bool secureTransport = false)
    {
        _tls = secureTransport;
        _transportName = secureTransport ? " (WebSocket)" : directTls ? " (direct TLS)" : string.Empty;
        _ctx = ctx;
        _remote = remote;
        _directTls = directTls;
        _log = ctx.Logs.GetLogger("C2s");
        _cts = CancellationTokenSource.CreateLinkedTokenSource(shutdown);
        _shutdown = shutdown;
        _activity = new ActivityStream(transport);
        var limits = ctx.Options.Limits;
        _rate = limits.StanzaRate > 0 ? new TokenBucket(limits.StanzaRate, limits.StanzaBurst) : null;
        _stream = _activity;
        _out = new OutputQueue(() => _stream, Ns.Client, ctx.Metrics);
        ConnectionId = ctx.Connections.NextId();
    }

    private enum Next
    {
        Continue,
        Restart,
        Stop,
    }

    /// <summary>A managed session's life (XEP-0198 §5): on its stream, waiting for resumption, taken over by a new stream, or over.</summary>
    private enum SmPhase
    {
        Active,
        Hibernating,
        Resumed,
        Ended,
    }

    public long ConnectionId { get; }

    public Jid Jid => _jid ?? throw new InvalidOperationException("not bound");

    public bool IsAvailable { get; set; }

    public int Priority { get; set; }

    public Element? LastPresence { get; set; }

    public bool RosterRequested { get; set; }

    public ISet<Jid> DirectedPresence { get; } = new HashSet<Jid>();

    public SessionItems Items { get; } = new();

    public ISendFilter? SendFilter { get; set; }

    public bool IsHibernating => _sm is not null && _phase == SmPhase.Hibernating;

    public async Task RunAsync()
    {
        using var scope = ScopeContext.PushProperty("ConnectionId", ConnectionId);
        using var remoteScope = ScopeContext.PushProperty("Remote", _remote.ToString());
        _log.Info("Connection accepted from {Remote}{Mode}", _remote, _transportName);
        var writer = WriterLoopAsync();
        IDisposable? jidScope = null;
        using var authTimer = new CancellationTokenSource(_ctx.Options.Limits.AuthTimeout);
        using var authTimeout = authTimer.Token.Register(() =>
        {
            if (!_bound)
            {
                _log.Warn("Closing connection from {Remote}: not authenticated within {Timeout}", _remote, _ctx.Options.Limits.AuthTimeout);
                Close(new StreamError(StreamErrorCondition.ConnectionTimeout, "authentication took too long"));
            }
        });
        try
        {
            var ct = _cts.Token;
            if (_directTls)
            {
                await StartTlsAsync(host: null, ct).ConfigureAwait(false);
            }

            var restart = true;
            while (restart)
            {
                restart = false;
                _headerSent = false;
                using var reader = new XmppStreamReader(_stream, new XmlReaderLimits
                {
                    MaxStanzaBytes = _ctx.Options.Limits.StanzaSize,
                    MaxDepth = _ctx.Options.Limits.MaxDepth,
                    MaxAttributes = _ctx.Options.Limits.MaxAttributes,
                    MaxNamespaceDeclarations = _ctx.Options.Limits.MaxNamespaces,
                });
                var ev = await reader.ReadAsync(ct).ConfigureAwait(false);
                if (ev.Kind != XmppStreamEventKind.Header)
                {
                    break;
                }

                OpenStream(ev.Header!);
                while (true)
                {
                    ev = await reader.ReadAsync(ct).ConfigureAwait(false);
                    if (ev.Kind == XmppStreamEventKind.End)
                    {
                        _log.Info("Client closed the stream");
                        _endedByClient = true;
                        Close(null);
                        break;
                    }

                    if (ev.Kind == XmppStreamEventKind.Eof)
                    {
                        _log.Info("Connection dropped by the client");
                        break;
                    }

                    if (_rate?.Take() is { } wait && wait > TimeSpan.Zero)
                    {
                        await SlowDownAsync(wait, ct).ConfigureAwait(false);
                    }
                    else
                    {
                        _slowed = false;
                    }

                    var next = await HandleAsync(ev.Element!, ct).ConfigureAwait(false);
                    if (next == Next.Restart)
                    {
                        restart = true;
                        if (_bound && jidScope is null)
                        {
                            jidScope = ScopeContext.PushProperty("Jid", _jid!.ToString());
                        }

                        break;
                    }

                    if (next == Next.Stop)
                    {
                        break;
                    }

                    if (_bound && jidScope is null)
                    {
                        jidScope = ScopeContext.PushProperty("Jid", _jid!.ToString());
                    }
                }
            }
        }
        catch (XmppStreamException ex)
        {
            _log.Warn("Stream error {Condition} for {Remote}: {Reason}", ErrorNames.ToElementName(ex.Condition), _remote, ex.Message);
            Close(ex.ToStreamError());
        }
        catch (OperationCanceledException)
        {
            _log.Debug("Connection cancelled");
        }
        catch (AuthenticationException ex)
        {
            _log.Warn("TLS handshake with {Remote} failed: {Reason}", _remote, ex.Message);
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException)
        {
            _log.Info("Connection lost: {Reason}", ex.Message);
        }
        catch (Exception ex)
        {
            // The one catch-all, at the connection boundary: a bug here ends this stream only.
            _log.Error(ex, "Unexpected error on connection from {Remote}", _remote);
            Close(new StreamError(StreamErrorCondition.InternalServerError));
        }
        finally
        {
            await TeardownAsync(writer).ConfigureAwait(false);
            jidScope?.Dispose();
        }
    }

    private async Task TeardownAsync(Task writer)
    {
        Close(null);
        var phase = SmPhase.Ended;
        if (_bound && _sm is { } sm)
        {
            lock (sm.Gate)
            {
                // XEP-0198 §5: a resumable session whose connection was lost (not closed by the client, not
                // ended by us with an error, not at shutdown) waits to be resumed instead of ending.
                if (_phase == SmPhase.Active)
                {
                    _phase = sm.ResumeId is not null && !_endedByClient && !_closedWithError && !_shutdown.IsCancellationRequested
                        ? SmPhase.Hibernating
                        : SmPhase.Ended;
                }

                phase = _phase;
            }
        }

        if (_bound && phase == SmPhase.Ended)
        {
            await EndSessionAsync().ConfigureAwait(false);
        }

        await Teardown.ReleaseAsync(writer, _ctx.Options.Limits.CloseTimeout, _cts, _stream, null, _log, drain: _closedWithError).ConfigureAwait(false);
        _cts.Dispose();
        switch (phase)
        {
            case SmPhase.Hibernating:
                _log.Info("Connection lost for {Jid}; the session waits {Seconds} s to be resumed", _jid, (int)_sm!.ResumeTimeout.TotalSeconds);
                _resumeWait = CancellationTokenSource.CreateLinkedTokenSource(_shutdown);
                _ = WaitForResumptionAsync(_resumeWait.Token);
                break;
            case SmPhase.Resumed:
                _log.Info("Connection closed for {Jid}: the session continues on connection c{Successor}", _jid, _resumedBy?.ConnectionId);
                break;
            default:
                _log.Info("Connection closed{Who}", _jid is null ? string.Empty : " for " + _jid);
                break;
        }
    }

    /// <summary>The session is over: out of the session manager, modules told (unavailable presence), unacknowledged stanzas rerouted.</summary>
    private async Task EndSessionAsync()
    {
        _ctx.Sessions.Unbind(this);
        if (_sm?.ResumeId is { } id)
        {
            _ctx.Resumption.Remove(id, this);
        }

        try
        {
            var ctx = new StanzaContext(new Element("presence", Ns.Client), _jid!, null, this, _ctx.Router);
            await _ctx.Hooks.FireAsync(HookNames.ResourceUnbound, ctx, CancellationToken.None).ConfigureAwait(false);
            await RerouteUnackedAsync().ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            _log.Error(ex, "Error while ending the session of {Jid}", _jid);
        }
    }

    private async Task WaitForResumptionAsync(CancellationToken ct)
    {
        try
        {
            await Task.Delay(_sm!.ResumeTimeout, ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // Resumed, or the server is stopping.
        }

        await EndHibernationAsync(_shutdown.IsCancellationRequested ? "the server is shutting down" : "not resumed in time").ConfigureAwait(false);
    }

    /// <summary>Ends a session that waits for resumption (its timeout, shutdown, a replacing bind); nothing if it is not waiting.</summary>
    internal Task EndHibernationAsync(string reason)
    {
        if (_sm is not { } sm)
        {
            return Task.CompletedTask;
        }

        TaskCompletionSource? ending = null;
        lock (sm.Gate)
        {
            if (_phase == SmPhase.Hibernating)
            {
                _phase = SmPhase.Ended;
                ending = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                _ending = ending.Task;
            }
            else
            {
                return _ending ?? Task.CompletedTask;
            }
        }

        try
        {
            _resumeWait?.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // The wait is over already.
        }

        _log.Info("Session of {Jid} ends: {Reason}", _jid, reason);
        _ctx.Resumption.Ending(ending.Task);
        return EndAndSignalAsync(ending);
    }

    private async Task EndAndSignalAsync(TaskCompletionSource ending)
    {
        try
        {
            await EndSessionAsync().ConfigureAwait(false);
        }
        finally
        {
            ending.SetResult();
        }
    }

    /// <summary>
    /// §4 "no data loss": what the client never acknowledged does not vanish with the session. Messages go to
    /// the account's other available resources, else to offline storage, else back to the sender; requests
    /// are answered with an error; presence, copies (carbons, archive results, notifications) and errors are
    /// dropped, since they exist elsewhere or expire anyway.
    /// </summary>
    private async Task RerouteUnackedAsync()
    {
        if (_sm is null)
        {
            return;
        }

        List<Element> pending;
        lock (_sm.Gate)
        {
            pending = [.. _sm.Unacked];
            _sm.Unacked.Clear();
        }

        if (pending.Count == 0)
        {
            return;
        }

        var rerouted = 0;
        foreach (var stanza in pending)
        {
            var type = stanza.GetAttribute("type");
            if (stanza.Name == "iq" && type is "get" or "set")
            {
                await _ctx.Router.BounceAsync(stanza, new StanzaError(StanzaErrorCondition.RecipientUnavailable, "the session ended"), CancellationToken.None).ConfigureAwait(false);
            }
            else if (stanza.Name == "message" && type is not ("error" or "groupchat" or "headline") && !IsCopy(stanza))
            {
                await RerouteMessageAsync(stanza).ConfigureAwait(false);
                rerouted++;
            }
        }

        _log.Info("{Count} unacknowledged stanzas of {Jid} handled at session end ({Messages} messages rerouted)", pending.Count, _jid, rerouted);
    }

    /// <summary>XEP-0203: a message that reaches its client late says when the server got it.</summary>
    private Element Delayed(Element stanza)
    {
        if (stanza.Name != "message" || stanza.Child("delay", Forwarded.DelayNamespace) is not null)
        {
            return stanza;
        }

        return stanza.Clone().Add(Forwarded.Delay(DateTimeOffset.UtcNow, _host));
    }

    /// <summary>A wrapper around a message that exists elsewhere (a carbon, an archive result, a pubsub event).</summary>
    private static bool IsCopy(Element message)
    {
        foreach (var child in message.Elements())
        {
            if (child.Namespace is "urn:xmpp:carbons:2" or "urn:xmpp:mam:2" or "http://jabber.org/protocol/pubsub#event")
            {
                return true;
            }
        }

        return false;
    }

    private async Task RerouteMessageAsync(Element message)
    {
        var delivered = false;
        var late = Delayed(message);
        foreach (var r in _ctx.Sessions.Resources(_jid!.Bare))
        {
            if (r.IsAvailable && r.Priority >= 0)
            {
                delivered |= r.TrySend(late);
            }
        }

        if (delivered)
        {
            return;
        }

        var from = Jid.TryParse(message.GetAttribute("from"), out var f) ? f : Jid.Parse(_jid.Domain);
        var ctx = new StanzaContext(message, from, _jid.Bare, null, _ctx.Router);
        if (!await _ctx.Hooks.FireAsync(HookNames.MessageOffline, ctx, CancellationToken.None).ConfigureAwait(false))
        {
            await _ctx.Router.BounceAsync(message, new StanzaError(StanzaErrorCondition.RecipientUnavailable, "the recipient's session ended before it received this"), CancellationToken.None).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Called periodically by the connection manager. A bound client silent for half the idle timeout gets a
    /// XEP-0199 ping (any answer, even an error, is traffic); silent for the whole timeout, the connection
    /// is presumed dead: it is closed with connection-timeout without waiting for the peer, so the session
    /// ends and contacts see it go offline within the idle timeout.
    /// </summary>
    public void CheckIdle(long now)
    {
        if (!_bound || Volatile.Read(ref _closing) != 0)
        {
            return;
        }

        var idle = (long)_ctx.Options.Limits.IdleTimeout.TotalMilliseconds;
        var silent = now - _activity.LastRead;
        if (silent >= idle)
        {
            _log.Info("Closing the connection of {Jid}: nothing received for {Seconds} s", _jid, silent / 1000);
            Close(new StreamError(StreamErrorCondition.ConnectionTimeout, "idle connection"));
            try
            {
                _cts.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // Already torn down.
            }

            return;
        }

        if (silent >= idle / 2 && _pingSentAt <= _activity.LastRead)
        {
            _pingSentAt = now;
            TrySend(new Element("iq", Ns.Client)
                .SetAttribute("type", "get")
                .SetAttribute("id", "idle" + now.ToString(System.Globalization.CultureInfo.InvariantCulture))
                .SetAttribute("from", _host)
                .SetAttribute("to", _jid!.ToString())
                .Add(new Element("ping", Ns.Ping)));
        }
    }

    /// <summary>
    /// XEP-0205 §6, flow control rather than disconnection (as Prosody's mod_limits and ejabberd's shapers do): a
    /// stream over its stanza rate is read more slowly. The reader pauses, the socket's buffers fill, and TCP
    /// pushes back on the sender, so a flood costs the server at most the rate, and a bot replaying a backlog
    /// gets everything through, later. The size, byte and queue limits still end a stream that abuses them.
    /// </summary>
    private async ValueTask SlowDownAsync(TimeSpan wait, CancellationToken ct)
    {
        if (!_slowed)
        {
            _slowed = true;
            var limits = _ctx.Options.Limits;
            _log.Info("Slowing down {Who}: more than {Rate} stanzas per second (bursts of {Burst})", _jid?.ToString() ?? _remote.ToString(), limits.StanzaRate, limits.StanzaBurst);
        }

        await Task.Delay(wait, ct).ConfigureAwait(false);
    }

    // ---- stream header and features -------------------------------------------------------------

    private void OpenStream(StreamHeader header)
    {
        var requested = header.To is not null && Jid.TryPrepareDomain(header.To, out var d) ? d : null;
        var host = requested is not null && _ctx.Router.IsLocal(requested) ? requested : null;
        SendHeader(host ?? _host ?? _ctx.Options.Hosts[0].Name, header.From);

        // RFC 6120 §4.8/§4.9.3.10: the stream namespace and the content namespace must be the known ones.
        if (header.LocalName != "stream" || header.Namespace != Ns.Stream)
        {
            throw new XmppStreamException(StreamErrorCondition.InvalidNamespace, "the root element must be stream:stream");
        }

        if (header.DefaultNamespace != Ns.Client)
        {
            throw new XmppStreamException(StreamErrorCondition.InvalidNamespace, "the content namespace must be jabber:client");
        }

        // RFC 6120 §4.7.5: no version means 0.9, which lacks SASL and TLS.
        if (header.Version is null || !header.Version.StartsWith("1.", StringComparison.Ordinal))
        {
            throw new XmppStreamException(StreamErrorCondition.UnsupportedVersion, "version 1.0 is required");
        }

        if (host is null || (_host is not null && host != _host))
        {
            throw new XmppStreamException(StreamErrorCondition.HostUnknown, $"this server does not serve '{header.To}'");
        }

        _host = host;
        SendFeatures();
    }

    private void SendHeader(string from, string? to)
    {
        if (_headerSent)
        {
            return;
        }

        _headerSent = true;
        SendRaw(HeaderXml(from, to is not null && Jid.TryParse(to, out var toJid) ? toJid.ToString() : null));
    }

    /// <summary>Our opening tag (RFC 6120 §4.7): from our host, to the client when it named itself.</summary>
    private static string HeaderXml(string from, string? to)
    {
        var sb = new StringBuilder(256);
        sb.Append("<?xml version='1.0'?><stream:stream xmlns='").Append(Ns.Client)
          .Append("' xmlns:stream='").Append(Ns.Stream).Append("' id='").Append(Guid.NewGuid().ToString("N"))
          .Append("' from='");
        ElementWriter.Escape(sb, from);
        sb.Append('\'');
        if (to is not null)
        {
            sb.Append(" to='");
            ElementWriter.Escape(sb, to);
            sb.Append('\'');
        }

        return sb.Append(" version='1.0' xml:lang='en'>").ToString();
    }

    private void SendFeatures()
    {
        var features = new List<Element>();
        var tlsRequired = _ctx.Options.Tls.Required;
        if (!_tls)
        {
            var starttls = new Element("starttls", Ns.Tls);
            if (tlsRequired)
            {
                starttls.Add(new Element("required", Ns.Tls));
            }

            features.Add(starttls);
        }

        if (_user is null && (_tls || !tlsRequired))
        {
            var mechanisms = new Element("mechanisms", Ns.Sasl);
            foreach (var name in OfferedMechanisms())
            {
                mechanisms.AddChild("mechanism").AddText(name);
            }

            features.Add(mechanisms);
            features.Add(Sasl2Feature());
            features.AddRange(_ctx.PreAuth.Features);
            if (_channelBinding is not null)
            {
                // XEP-0440: which channel binding types the server supports.
                var cb = new Element("sasl-channel-binding", Ns.SaslChannelBinding);
                foreach (var type in _channelBinding.SupportedTypes)
                {
                    cb.AddChild("channel-binding").SetAttribute("type", type);
                }

                features.Add(cb);
            }
        }
        else if (_user is not null)
        {
            if (!_bound)
            {
                features.Add(new Element("bind", Ns.Bind));

                // RFC 6121 obsoleted the session iq; old clients still send it, so it is offered as optional.
                features.Add(new Element("session", Ns.Session).Add(new Element("optional", Ns.Session)));
            }

            foreach (var f in _ctx.StreamFeatures.AfterAuthentication)
            {
                // Stream management enabled or resumed inside SASL2 (XEP-0386 §3, XEP-0388 inline) is not
                // offered again: XEP-0198 enables it once per stream, and resumes a session on a new stream only.
                // COMPAT: xmpp.js 0.14, seeing <sm/> after its inline enable, resumes the session it is on.
                if (_sm is not null && f.Is("sm", SmState.Namespace))
                {
                    continue;
                }

                features.Add(f);
            }
        }

        var sb = new StringBuilder("<stream:features>");
        foreach (var f in features)
        {
            ElementWriter.Write(sb, f, Ns.Stream);
        }

        sb.Append("</stream:features>");
        SendRaw(sb.ToString());
    }

    private IEnumerable<string> OfferedMechanisms()
    {
        var scram = _ctx.Options.Auth.Scram;
        foreach (var hash in scram)
        {
            if (_channelBinding is not null)
            {
                yield return hash.MechanismName() + "-PLUS";
            }
        }

        foreach (var hash in scram)
        {
            yield return hash.MechanismName();
        }

        if (_tls && _ctx.Options.Auth.AllowPlain)
        {
            yield return "PLAIN";
        }
    }

    // ---- element dispatch by state ----------------------------------------------------------------

    private async ValueTask<Next> HandleAsync(Element e, CancellationToken ct)
    {
        if (e.Is("error", Ns.Stream))
        {
            // The peer ends the stream with an error of its own (RFC 6120 §4.9.1.2): log it and close ours.
            var condition = e.FirstElement()?.Name ?? "unknown";
            _log.Warn("Client sent stream error {Condition}: {Text}", condition, e.ChildText("text", Ns.Streams) ?? string.Empty);
            _endedByClient = true;
            Close(null);
            return Next.Stop;
        }

        if (_user is null)
        {
            if (e.Is("starttls", Ns.Tls))
            {
                if (_tls)
                {
                    SendRaw("<failure xmlns='" + Ns.Tls + "'/>");
                    Close(null);
                    return Next.Stop;
                }

                SendRaw("<proceed xmlns='" + Ns.Tls + "'/>");
                await FlushAsync().ConfigureAwait(false);
                await StartTlsAsync(_host, ct).ConfigureAwait(false);
                return Next.Restart;
            }

            if (e.Namespace == Ns.Sasl)
            {
                return await HandleSaslAsync(e, ct).ConfigureAwait(false);
            }

            if (e.Namespace == Sasl2Namespace)
            {
                return await HandleSasl2Async(e, ct).ConfigureAwait(false);
            }

            if (e.Is("iq", Ns.Client) && e.GetAttribute("id") is not null && e.FirstElement() is { } payload &&
                (_tls || !_ctx.Options.Tls.Required) && _ctx.PreAuth.TryGet(payload.Namespace, out var preAuth))
            {
                var reply = await preAuth(new PreAuthRequest(e, payload, _host!, _remote.Address), ct).ConfigureAwait(false);
                SendRaw(ElementWriter.ToXml(reply, Ns.Client));
                return Next.Continue;
            }

            if (e.Namespace == SmState.Namespace && _ctx.StreamManagement is not null)
            {
                // XEP-0198 §3: "The server SHALL enforce this order and return a <failed/> element in response if
                // the order is violated" (stream management before authentication), not a stream error.
                SendRaw($"<failed xmlns='{SmState.Namespace}'><unexpected-request xmlns='{Ns.Stanzas}'/></failed>");
                return Next.Continue;
            }

            // RFC 6120 §4.9.3.12: nothing but negotiation before authentication.
            throw new XmppStreamException(StreamErrorCondition.NotAuthorized, $"<{e.Name}/> before authentication");
        }

        if (e.Namespace == Ns.Sasl || e.Namespace == Ns.Tls || e.Namespace == Sasl2Namespace)
        {
            throw new XmppStreamException(StreamErrorCondition.PolicyViolation, "the stream is already authenticated");
        }

        if (e.Namespace == SmState.Namespace && _ctx.StreamManagement is not null)
        {
            HandleStreamManagement(e);
            return Next.Continue;
        }

        if (_bound && e.Namespace != Ns.Client && _ctx.StreamElements.TryGet(e.Namespace, out var nonza))
        {
            nonza(this, e);
            return Next.Continue;
        }

        if (!Stanza.IsStanza(e) || e.Namespace != Ns.Client)
        {
            throw new XmppStreamException(StreamErrorCondition.UnsupportedStanzaType, $"unknown element <{e.Name} xmlns='{e.Namespace}'/>");
        }

        if (!_bound)
        {
            return await HandleBeforeBindAsync(e, ct).ConfigureAwait(false);
        }

        await HandleStanzaAsync(e, ct).ConfigureAwait(false);
        if (_sm is { } sm)
        {
            lock (sm.Gate)
            {
                // §4: 'h' counts the stanzas handled, whatever came of them.
                sm.Inbound++;
            }
        }

        return Next.Continue;
    }

    private async ValueTask<Next> HandleBeforeBindAsync(Element e, CancellationToken ct)
    {
        var payload = e.FirstElement();
        if (e.Name == "iq" && e.GetAttribute("type") == "set" && payload is not null && payload.Is("bind", Ns.Bind))
        {
            await BindAsync(e, payload, ct).ConfigureAwait(false);
            return Next.Continue;
        }

        if (TryAnswerSession(e))
        {
            return Next.Continue;
        }

        // RFC 6120 §7.1: no stanzas before a resource is bound.
        throw new XmppStreamException(StreamErrorCondition.NotAuthorized, "bind a resource first");
    }

    /// <summary>RFC 3921 §3 session establishment: obsolete, still sent by older clients, before or after bind.</summary>
    private bool TryAnswerSession(Element e)
    {
        if (e.Name != "iq" || e.GetAttribute("type") != "set" || e.FirstElement() is not { } payload || !payload.Is("session", Ns.Session) ||
            (e.GetAttribute("to") is { } to && to != _host))
        {
            return false;
        }

        TrySend(Stanza.IqResult(e).SetAttribute("from", _host));
        return true;
    }

    private async ValueTask BindAsync(Element iq, Element bind, CancellationToken ct)
    {
        var requested = bind.ChildText("resource", Ns.Bind);
        string resource;
        if (string.IsNullOrEmpty(requested))
        {
            resource = "xs-" + Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(6)).ToLowerInvariant();
        }
        else if (!Jid.TryPrepareResource(requested, out var prepared))
        {
            // RFC 6120 §7.7.2.1: a resource that cannot be processed.
            TrySend(Stanza.ErrorReply(iq, new StanzaError(StanzaErrorCondition.BadRequest, "invalid resource")));
            return;
        }
        else
        {
            resource = prepared;
        }

        if (BindResource(resource) is { } error)
        {
            TrySend(Stanza.ErrorReply(iq, error));
            return;
        }

        var result = new Element("bind", Ns.Bind);
        result.AddChild("jid").AddText(_jid!.ToString());
        TrySend(Stanza.IqResult(iq, result));
        await _ctx.Hooks.FireAsync(HookNames.ResourceBound, new StanzaContext(iq, _jid, null, this, _ctx.Router), ct).ConfigureAwait(false);
    }

    /// <summary>Binds a prepared resource (RFC 6120 §7, or XEP-0386 Bind2): the error when the account has too many sessions.</summary>
    private StanzaError? BindResource(string resource)
    {
        if (ReserveResource(resource) is { } error)
        {
            return error;
        }

        RegisterSession();
        return null;
    }

    /// <summary>Checks the account's session limit and takes the JID, without making the session reachable yet.</summary>
    private StanzaError? ReserveResource(string resource)
    {
        var jid = Jid.Parse(_user + "@" + _host).WithResource(resource);
        var others = _ctx.Sessions.Resources(jid.Bare);
        if (others.Count >= _ctx.Options.Limits.SessionsPerAccount && !others.Any(o => o.Jid == jid))
        {
            // RFC 6120 §7.6.2.1: the account has reached its limit of simultaneous resources.
            _log.Warn("Refusing to bind {Jid}: {Count} sessions of the account are bound already", jid, others.Count);
            return new StanzaError(StanzaErrorCondition.ResourceConstraint, $"at most {_ctx.Options.Limits.SessionsPerAccount} sessions per account");
        }

        _jid = jid;
        _bound = true;
        return null;
    }

    /// <summary>Puts the session into the session manager: from now on stanzas reach it.</summary>
    /// <param name="bind2">Bound inside SASL2 (XEP-0386), for the log.</param>
    private void RegisterSession(bool bind2 = false)
    {
        var replaced = _ctx.Sessions.Bind(this);
        if (replaced is not null && !ReferenceEquals(replaced, this))
        {
            // RFC 6120 §7.7.2.2: our policy is that the new session replaces the old one.
            _log.Info("Resource {Jid} bound again: replacing the older session", _jid);
            replaced.Close(new StreamError(StreamErrorCondition.Conflict, "replaced by a new session"));
        }

        _log.Info("Bound {Jid}{How}", _jid, bind2 ? " (Bind2)" : string.Empty);
    }

    private async ValueTask HandleStanzaAsync(Element e, CancellationToken ct)
    {
        // RFC 6120 §8.1.2.1: 'from' may only be our own full or bare JID, and the server stamps it.
        var from = e.GetAttribute("from");
        if (from is not null && (!Jid.TryParse(from, out var claimed) || (claimed != _jid && claimed != _jid!.Bare)))
        {
            throw new XmppStreamException(StreamErrorCondition.InvalidFrom, $"'{from}' is not this stream's address");
        }

        e.SetAttribute("from", _jid!.ToString());
        var type = e.GetAttribute("type");
        StanzaError? problem = e.Name switch
        {
            "iq" when e.GetAttribute("id") is null => StanzaError.BadRequest("iq without id"),
            "iq" when type is not ("get" or "set" or "result" or "error") => StanzaError.BadRequest("iq type must be get, set, result or error"),
            "iq" when type is "get" or "set" && e.ElementCount() != 1 => StanzaError.BadRequest("a request carries exactly one child element"),
            "presence" when type is not (null or "unavailable" or "subscribe" or "subscribed" or "unsubscribe" or "unsubscribed" or "probe" or "error")
                => StanzaError.BadRequest("unknown presence type"),
            _ => null,
        };
        if (problem is not null)
        {
            if (Stanza.MayReplyWithError(e))
            {
                TrySend(Stanza.ErrorReply(e, problem));
            }

            return;
        }

        if (TryAnswerSession(e))
        {
            return;
        }

        _ctx.Metrics.StanzaIn(e.Name);
        await _ctx.Router.RouteAsync(e, _jid, this, ct).ConfigureAwait(false);
    }

    // ---- SASL (RFC 6120 §6) -------------------------------------------------------------------------

    private async ValueTask<Next> HandleSaslAsync(Element e, CancellationToken ct)
    {
        SaslStep step;
        switch (e.Name)
        {
            case "auth":
                {
                    var mechanism = e.GetAttribute("mechanism") ?? string.Empty;
                    if (await RefuseStartAsync(mechanism, OfferedMechanisms().Contains(mechanism), ct).ConfigureAwait(false) is { } refused)
                    {
                        return refused;
                    }

                    _sasl = CreateMechanism(mechanism);
                    var (first, failed) = await StepAsync(e.Text, ct).ConfigureAwait(false);
                    if (failed is not null)
                    {
                        return failed.Value;
                    }

                    step = first;
                    break;
                }

            case "response":
                {
                    if (_sasl is null)
                    {
                        return await SaslFailAsync(SaslFailure.MalformedRequest, "no exchange in progress", null, ct).ConfigureAwait(false);
                    }

                    var (next, failed) = await StepAsync(e.Text, ct).ConfigureAwait(false);
                    if (failed is not null)
                    {
                        return failed.Value;
                    }

                    step = next;
                    break;
                }

            case "abort":
                _sasl = null;
                SendRaw("<failure xmlns='" + Ns.Sasl + "'><aborted/></failure>");
                return Next.Continue;

            default:
                return await SaslFailAsync(SaslFailure.MalformedRequest, $"unexpected <{e.Name}/>", _sasl?.Name, ct).ConfigureAwait(false);
        }

        switch (step.Kind)
        {
            case SaslStepKind.Challenge:
                SendRaw("<challenge xmlns='" + Ns.Sasl + "'>" + Encode(step.Data) + "</challenge>");
                return Next.Continue;

            case SaslStepKind.Success:
                {
                    if (await AcceptAsync(ct).ConfigureAwait(false) is { } refused)
                    {
                        return refused;
                    }

                    var data = step.Data is { Length: > 0 } ? Convert.ToBase64String(step.Data) : string.Empty;
                    SendRaw("<success xmlns='" + Ns.Sasl + "'>" + data + "</success>");
                    return Next.Restart;
                }

            default:
                return await SaslFailAsync(step.Failure, step.Reason ?? "failed", _sasl?.Name, ct, _sasl?.Username, step.IsCredentialFailure).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// XEP-0388 SASL2 offer: the same mechanisms, and what may be done inline in the same round trip
    /// (XEP-0386 Bind2 with the features modules offer there, XEP-0198 resumption).
    /// </summary>
    private Element Sasl2Feature()
    {
        var authentication = new Element("authentication", Sasl2Namespace);
        foreach (var name in OfferedMechanisms())
        {
            authentication.AddChild("mechanism").AddText(name);
        }

        var inline = authentication.AddChild("inline");
        var bindInline = inline.AddChild("bind", Bind2Namespace).AddChild("inline");
        foreach (var ns in _ctx.Bind2.Features.Order(StringComparer.Ordinal))
        {
            bindInline.AddChild("feature").SetAttribute("var", ns);
        }

        if (_ctx.StreamManagement is not null)
        {
            bindInline.AddChild("feature").SetAttribute("var", SmState.Namespace);
            inline.Add(new Element("sm", SmState.Namespace));
        }

        // XEP-0484: token mechanisms, usable after a token was requested here.
        var fast = inline.AddChild("fast", FastNamespace);
        foreach (var name in HtServerMechanism.Offered(_channelBinding))
        {
            fast.AddChild("mechanism").AddText(name);
        }

        return authentication;
    }

    /// <summary>XEP-0388: authenticate, challenge/response, then success with no stream restart.</summary>
    private async ValueTask<Next> HandleSasl2Async(Element e, CancellationToken ct)
    {
        SaslStep step;
        switch (e.Name)
        {
            case "authenticate":
                {
                    var mechanism = e.GetAttribute("mechanism") ?? string.Empty;
                    _sasl2 = e;
                    var agent = e.Child("user-agent", Sasl2Namespace)?.GetAttribute("id");
                    var fast = HtServerMechanism.Offered(_channelBinding).Contains(mechanism);
                    if (await RefuseStartAsync(mechanism, fast || OfferedMechanisms().Contains(mechanism), ct).ConfigureAwait(false) is { } refused)
                    {
                        return refused;
                    }

                    if (fast && string.IsNullOrEmpty(agent))
                    {
                        // XEP-0484 §3: a token belongs to a user agent, which names itself.
                        return await SaslFailAsync(SaslFailure.MalformedRequest, "FAST needs <user-agent id=...>", mechanism, ct).ConfigureAwait(false);
                    }

                    _sasl = fast ? new HtServerMechanism(mechanism, (user, c) => FastTokensAsync(user, agent!, mechanism, c), _channelBinding) : CreateMechanism(mechanism);
                    var (first, failed) = await StepAsync(e.ChildText("initial-response", Sasl2Namespace) ?? string.Empty, ct).ConfigureAwait(false);
                    if (failed is not null)
                    {
                        return failed.Value;
                    }

                    step = first;
                    break;
                }

            case "response" when _sasl is not null && _sasl2 is not null:
                {
                    var (next, failed) = await StepAsync(e.Text, ct).ConfigureAwait(false);
                    if (failed is not null)
                    {
                        return failed.Value;
                    }

                    step = next;
                    break;
                }

            case "abort":
                _sasl = null;
                _sasl2 ??= e;
                return await SaslFailAsync(SaslFailure.Aborted, "aborted by the client", null, ct).ConfigureAwait(false);

            default:
                _sasl2 ??= e;
                return await SaslFailAsync(SaslFailure.MalformedRequest, $"unexpected <{e.Name}/>", _sasl?.Name, ct).ConfigureAwait(false);
        }

        switch (step.Kind)
        {
            case SaslStepKind.Challenge:
                SendRaw("<challenge xmlns='" + Sasl2Namespace + "'>" + Encode(step.Data) + "</challenge>");
                return Next.Continue;
            case SaslStepKind.Success:
                var mech = _sasl;
                if (await AcceptAsync(ct).ConfigureAwait(false) is { } refused)
                {
                    return refused;
                }

                await CompleteSasl2Async(step.Data, mech as HtServerMechanism, ct).ConfigureAwait(false);
                return Next.Continue;
            default:
                return await SaslFailAsync(step.Failure, step.Reason ?? "failed", _sasl?.Name, ct, _sasl?.Username, step.IsCredentialFailure).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// XEP-0388 §2.6.1 success, after the inline requests: XEP-0198 resumption first; failing that (or
    /// without it), XEP-0386 Bind2 with its inline features; then the stream features, without a restart.
    /// </summary>
    private async ValueTask CompleteSasl2Async(byte[]? additionalData, HtServerMechanism? usedToken, CancellationToken ct)
    {
        var request = _sasl2!;
        _sasl2 = null;
        var inner = new StringBuilder();
        await UpdateFastTokenAsync(request, usedToken, inner, ct).ConfigureAwait(false);
        var resumed = false;
        var resume = request.Child("resume", SmState.Namespace);
        if (resume is not null && _ctx.StreamManagement is not null)
        {
            // The stanzas to send again must follow the success, so the answer is put inside it and the
            // success written from within the hand-over.
            resumed = Resume(resume, answer =>
            {
                inner.Append(answer);
                if (answer.StartsWith("<resumed", StringComparison.Ordinal))
                {
                    SendRaw(Sasl2Success(additionalData, _jid!.ToString(), inner.ToString()));
                    SendFeatures();
                }
            });
        }

        if (resumed)
        {
            return;
        }

        var bind = request.Child("bind", Bind2Namespace);
        string identity;
        if (bind is not null)
        {
            // §4: the server chooses the resource: the client's tag and a part that stays the same for one
            // user agent (so a device keeps its resource across logins) or is random.
            var agent = request.Child("user-agent", Sasl2Namespace)?.GetAttribute("id");
            var tag = Jid.TryPrepareResource(bind.ChildText("tag", Bind2Namespace) ?? string.Empty, out var t) && t.Length <= 32 ? t : "xmpp";
            var suffix = agent is { Length: > 0 }
                ? Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes(_user + "\n" + agent)))[..8]
                : Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(4));
            // The session becomes reachable only after the success is written: nothing (a carbon, a message
            // to this resource) may reach the client before it.
            if (ReserveResource(tag + "." + suffix) is { } error)
            {
                SendRaw("<failure xmlns='" + Sasl2Namespace + "'><temporary-auth-failure xmlns='" + Ns.Sasl + "'/><text xml:lang='en'>" + ElementWriter.Escape(error.Text ?? "cannot bind") + "</text></failure>");
                _user = null;
                return;
            }

            var bound = new StringBuilder("<bound xmlns='" + Bind2Namespace + "'>");
            foreach (var child in bind.Elements())
            {
                if (child.Is("enable", SmState.Namespace) && _ctx.StreamManagement is not null && _sm is null)
                {
                    bound.Append(EnableManagement(child));
                }
                else if (_ctx.Bind2.TryGet(child.Namespace, out var handler))
                {
                    handler(this, child);
                }
            }

            inner.Append(bound.Append("</bound>"));
            identity = _jid!.ToString();
        }
        else
        {
            identity = _user + "@" + _host;
        }

        SendRaw(Sasl2Success(additionalData, identity, inner.ToString()));
        if (_bound)
        {
            RegisterSession(bind2: true);
        }

        SendFeatures();
        if (_bound)
        {
            await _ctx.Hooks.FireAsync(HookNames.ResourceBound, new StanzaContext(request, _jid!, null, this, _ctx.Router), ct).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// The valid tokens of an account for one user agent and mechanism: the current one, and the previous one
    /// until the current is used. XEP-0484: "Servers MUST bind tokens to the mechanism selected by the
    /// client in its original request, and reject attempts to use them with other mechanisms" (else a token
    /// issued for -EXPR would log in through -NONE, without the channel binding it was issued with).
    /// </summary>
    private async ValueTask<IReadOnlyList<string>> FastTokensAsync(string user, string agent, string mechanism, CancellationToken ct)
    {
        if (await _ctx.Storage.Documents.GetAsync(_host!, user, "fast", agent, ct).ConfigureAwait(false) is not { } xml)
        {
            return [];
        }

        var doc = ElementParser.Parse(xml);
        if (!long.TryParse(doc.GetAttribute("expiry"), System.Globalization.CultureInfo.InvariantCulture, out var expiry) || DateTimeOffset.FromUnixTimeSeconds(expiry) < DateTimeOffset.UtcNow)
        {
            return [];
        }

        var tokens = new List<string>(2);
        if (doc.GetAttribute("mechanism") == mechanism && doc.GetAttribute("current") is { } current)
        {
            tokens.Add(current);
        }

        if (doc.GetAttribute("previous-mechanism") == mechanism && doc.GetAttribute("previous") is { } previous)
        {
            tokens.Add(previous);
        }

        return tokens;
    }

    /// <summary>
    /// XEP-0484 after a SASL2 success: a token used retires the one before it; &lt;fast invalidate='true'/&gt;
    /// removes it; &lt;request-token/&gt; issues a new one for the user agent (the old stays valid until the new is used).
    /// </summary>
    private async ValueTask UpdateFastTokenAsync(Element request, HtServerMechanism? used, StringBuilder inner, CancellationToken ct)
    {
        var agent = request.Child("user-agent", Sasl2Namespace)?.GetAttribute("id");
        if (string.IsNullOrEmpty(agent))
        {
            return;
        }

        var docs = _ctx.Storage.Documents;
        var stored = await docs.GetAsync(_host!, _user!, "fast", agent, ct).ConfigureAwait(false) is { } xml ? ElementParser.Parse(xml) : null;
        if (used is not null && request.Child("fast", FastNamespace)?.GetAttribute("invalidate") is "true" or "1")
        {
            await docs.SetAsync(_host!, _user!, "fast", agent, null, ct).ConfigureAwait(false);
            _log.Info("FAST token of {User} for a user agent invalidated", _user);
            stored = null;
        }
        else if (used is not null && stored is not null && used.MatchedToken == stored.GetAttribute("current") && stored.GetAttribute("previous") is not null)
        {
            stored.SetAttribute("previous", null).SetAttribute("previous-mechanism", null);
            await docs.SetAsync(_host!, _user!, "fast", agent, stored.ToString(), ct).ConfigureAwait(false);
        }

        var wanted = request.Child("request-token", FastNamespace)?.GetAttribute("mechanism");
        if (wanted is null || !HtServerMechanism.Offered(_channelBinding).Contains(wanted))
        {
            return;
        }

        var token = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
        var expiry = DateTimeOffset.UtcNow + FastTokenLifetime;
        var doc = new Element("fast", FastNamespace)
            .SetAttribute("current", token)
            .SetAttribute("mechanism", wanted)
            .SetAttribute("previous", stored?.GetAttribute("current"))
            .SetAttribute("previous-mechanism", stored?.GetAttribute("mechanism"))
            .SetAttribute("expiry", expiry.ToUnixTimeSeconds().ToString(System.Globalization.CultureInfo.InvariantCulture));
        await docs.SetAsync(_host!, _user!, "fast", agent, doc.ToString(), ct).ConfigureAwait(false);
        inner.Append("<token xmlns='").Append(FastNamespace).Append("' expiry='")
            .Append(expiry.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture))
            .Append("' token='");
        ElementWriter.Escape(inner, token);
        inner.Append("'/>");
    }

    private static string Sasl2Success(byte[]? additionalData, string identity, string inner)
    {
        var sb = new StringBuilder("<success xmlns='" + Sasl2Namespace + "'>");
        if (additionalData is { Length: > 0 })
        {
            sb.Append("<additional-data>").Append(Convert.ToBase64String(additionalData)).Append("</additional-data>");
        }

        sb.Append("<authorization-identifier>");
        ElementWriter.Escape(sb, identity);
        return sb.Append("</authorization-identifier>").Append(inner).Append("</success>").ToString();
    }

    /// <summary>
    /// What both SASL profiles check before a mechanism starts: TLS first when required, the mechanism
    /// offered (PLAIN without TLS is encryption-required), the address not blocked. Null to go on.
    /// </summary>
    private async ValueTask<Next?> RefuseStartAsync(string mechanism, bool offered, CancellationToken ct)
    {
        if (!_tls && _ctx.Options.Tls.Required)
        {
            return await SaslFailAsync(SaslFailure.EncryptionRequired, "STARTTLS first", mechanism, ct).ConfigureAwait(false);
        }

        if (!offered)
        {
            var failure = mechanism == "PLAIN" && !_tls ? SaslFailure.EncryptionRequired : SaslFailure.InvalidMechanism;
            return await SaslFailAsync(failure, $"mechanism '{mechanism}' is not offered", mechanism, ct).ConfigureAwait(false);
        }

        if (_ctx.AuthFailures.IsBlocked(_remote.Address))
        {
            return await SaslFailAsync(SaslFailure.TemporaryAuthFailure, "too many failed attempts from your address; try again later", mechanism, ct).ConfigureAwait(false);
        }

        return null;
    }

    /// <summary>Feeds the current mechanism one base64 message; the refusal instead when it is not base64.</summary>
    private async ValueTask<(SaslStep Step, Next? Failed)> StepAsync(string base64, CancellationToken ct)
    {
        if (!TryDecode(base64, out var data))
        {
            return (default, await SaslFailAsync(SaslFailure.IncorrectEncoding, "bad base64", _sasl!.Name, ct).ConfigureAwait(false));
        }

        return (await _sasl!.StepAsync(data, ct).ConfigureAwait(false), null);
    }

    /// <summary>The mechanism succeeded: the account may still be refused (authzid, a block). Null when accepted.</summary>
    private async ValueTask<Next?> AcceptAsync(CancellationToken ct)
    {
        var mech = _sasl!;
        var bare = mech.Username + "@" + _host;
        if (mech.AuthorizationId is not null &&
            (!Jid.TryParse(mech.AuthorizationId, out var authz) || authz.ToString() != bare))
        {
            return await SaslFailAsync(SaslFailure.InvalidAuthzid, "may only act as " + bare, mech.Name, ct).ConfigureAwait(false);
        }

        if (_ctx.AuthFailures.IsBlocked(bare))
        {
            // The same answer as for a wrong password during the block, so a guess cannot be tested.
            return await SaslFailAsync(SaslFailure.TemporaryAuthFailure, "too many failed attempts", mech.Name, ct, mech.Username).ConfigureAwait(false);
        }

        _user = mech.Username;
        _sasl = null;
        _ctx.AuthFailures.RecordSuccess(_remote.Address, bare);
        _ctx.Metrics.Authenticated();
        var binding = (mech as ScramServerMechanism)?.ChannelBindingType is { } type ? " (" + type + ")" : string.Empty;
        _log.Info("Authenticated {User} with {Mechanism}{Binding}{Profile}", bare, mech.Name, binding, _sasl2 is null ? string.Empty : " (SASL2)");
        return null;
    }

    /// <summary>
    /// An account with SCRAM-SHA-1 keys only (imported from Prosody or ejabberd) logged in with PLAIN: the
    /// password is known for this moment, so the keys of every hash are stored, and SCRAM-SHA-256 works from now on.
    /// </summary>
    private async ValueTask UpgradeAsync(string user, string preparedPassword, CancellationToken ct)
    {
        var credentials = ScramCredential.CreateAll(preparedPassword, _ctx.Options.Auth.Iterations);
        if (await _ctx.Storage.Users.SetCredentialsAsync(_host!, user, credentials, ct).ConfigureAwait(false))
        {
            _log.Info("Stored SCRAM-SHA-256 and SHA-512 keys for {User}@{Host}, which had SHA-1 keys only", user, _host);
        }
    }

    private ISaslServerMechanism CreateMechanism(string name)
    {
        var host = _host!;
        ValueTask<ScramCredential?> Lookup(string user, ScramHash hash, CancellationToken ct) =>
            new(_ctx.Storage.Users.GetCredentialAsync(host, user, hash, ct));
        if (name == "PLAIN")
        {
            return new PlainServerMechanism(Lookup, _ctx.Decoys, UpgradeAsync);
        }

        var plus = name.EndsWith("-PLUS", StringComparison.Ordinal);
        var baseName = plus ? name[..^5] : name;
        var hash = ScramHashes.All.First(h => h.MechanismName() == baseName);
        // XEP-0474: the same mechanisms are offered in SASL and SASL2, so one list serves both.
        var advertised = ScramServerMechanism.DowngradeProtection(OfferedMechanisms(), _channelBinding?.SupportedTypes);
        return new ScramServerMechanism(hash, plus, Lookup, _channelBinding, decoys: _ctx.Decoys, advertised: advertised);
    }

    private async ValueTask<Next> SaslFailAsync(SaslFailure failure, string reason, string? mechanism, CancellationToken ct, string? user = null, bool counts = true)
    {
        _sasl = null;
        counts &= failure != SaslFailure.Aborted;
        if (counts)
        {
            _saslFailures++;
            _ctx.Metrics.AuthenticationFailed();
        }

        var account = user is null ? null : user + "@" + _host;
        if (counts && account is not null && _ctx.AuthFailures.IsBlocked(account))
        {
            failure = SaslFailure.TemporaryAuthFailure;
            reason = "too many failed attempts for this account; try again later";
        }

        var condition = ErrorNames.ToElementName(failure);
        _log.Warn("Authentication failed for {User} from {Remote} with {Mechanism}: {Condition} ({Reason})", user ?? "?", _remote, mechanism ?? "?", condition, reason);
        if (counts)
        {
            var delay = _ctx.AuthFailures.RecordFailure(_remote.Address, account);
            if (delay > TimeSpan.Zero)
            {
                await Task.Delay(delay, ct).ConfigureAwait(false);
            }
        }

        var text = failure == SaslFailure.NotAuthorized ? string.Empty : "<text xml:lang='en'>" + ElementWriter.Escape(reason) + "</text>";
        if (_sasl2 is not null)
        {
            // XEP-0388 §2.6.2: the RFC 6120 condition, in its own namespace, inside the SASL2 failure.
            _sasl2 = null;
            SendRaw("<failure xmlns='" + Sasl2Namespace + "'><" + condition + " xmlns='" + Ns.Sasl + "'/>" + text + "</failure>");
        }
        else
        {
            SendRaw("<failure xmlns='" + Ns.Sasl + "'><" + condition + "/>" + text + "</failure>");
        }

        // RFC 6120 §6.4.5: a bounded number of retries, then a stream error, which "SHOULD be
        // <policy-violation/> ... although some existing implementations send <not-authorized/>".
        // COMPAT: libpurple 2.14 (Pidgin) reports policy-violation as a network error and reconnects in a
        // loop with the wrong password; not-authorized makes it report an authentication failure.
        if (counts && _saslFailures >= _ctx.Options.Auth.MaxFailuresPerStream)
        {
            throw new XmppStreamException(StreamErrorCondition.NotAuthorized, "too many failed authentication attempts");
        }

        return Next.Continue;
    }

    private static bool TryDecode(string text, out byte[] data)
    {
        text = text.Trim();
        if (text.Length == 0 || text == "=")
        {
            data = [];
            return true;
        }

        try
        {
            data = Convert.FromBase64String(text);
            return true;
        }
        catch (FormatException)
        {
            data = [];
            return false;
        }
    }

    private static string Encode(byte[]? data) => data is { Length: > 0 } ? Convert.ToBase64String(data) : "=";

    // ---- TLS ------------------------------------------------------------------------------------------

    private async Task StartTlsAsync(string? host, CancellationToken ct)
    {
        var ssl = new SslStream(_stream, leaveInnerStreamOpen: false);
        HostCertificate? chosen = null;
        await ssl.AuthenticateAsServerAsync(
            (_, clientHello, _, _) =>
            {
                chosen = _ctx.Certificates.Find(host ?? (Jid.TryPrepareDomain(clientHello.ServerName ?? string.Empty, out var sni) ? sni : null))
                    ?? _ctx.Certificates.Default;
                return ValueTask.FromResult(new SslServerAuthenticationOptions
                {
                    ServerCertificateContext = chosen.Context,
                    EnabledSslProtocols = TlsPolicy.Protocols,
                    CipherSuitesPolicy = TlsPolicy.CipherSuites,
                    ClientCertificateRequired = false,
                    CertificateRevocationCheckMode = System.Security.Cryptography.X509Certificates.X509RevocationMode.NoCheck,
                    AllowRenegotiation = false,
                    ApplicationProtocols = _directTls ? [new SslApplicationProtocol("xmpp-client")] : null,
                });
            },
            null,
            ct).ConfigureAwait(false);
        OpenSsl.ReleaseBuffersWhenIdle(ssl);
        _stream = ssl;
        _tls = true;
        _tlsCertificate = chosen!;

        // RFC 9266 defines tls-exporter for TLS 1.3 (and for TLS 1.2 with the extended master secret), so it
        // is offered on TLS 1.3. tls-unique is offered too: it is what Python's ssl module (slixmpp) and pyOpenSSL
        // (aiosasl) compute and what ejabberd answers, and a client that asks for it must not be pushed to
        // the "y" flag, which RFC 5802 §6 makes us refuse once -PLUS was offered (see TlsUnique).
        var exporter = ssl.SslProtocol == SslProtocols.Tls13 ? TlsExporter.ChannelBinding(ssl) : null;
        _channelBinding = new ClientChannelBinding(exporter, TlsUnique.ChannelBinding(ssl), _tlsCertificate.EndPointBinding);
        _log.Info("TLS established: {Protocol} {Cipher}, channel bindings {Bindings}", ssl.SslProtocol, ssl.NegotiatedCipherSuite, string.Join(' ', _channelBinding.SupportedTypes));
    }

    // ---- output ---------------------------------------------------------------------------------------

    public bool TrySend(Element stanza)
    {
        if (SendFilter is { } filter && filter.Hold(this, stanza))
        {
            return true;
        }

        return SendUnfiltered(stanza);
    }

    public bool SendUnfiltered(Element stanza)
    {
        if (_sm is { } sm)
        {
            return TrySendManaged(sm, stanza);
        }

        if (Volatile.Read(ref _closing) != 0)
        {
            return false;
        }

        var limits = _ctx.Options.Limits;
        switch (_out.TryEnqueue(stanza, limits.OutputQueue, limits.OutputBytes))
        {
            case EnqueueResult.Queued:
                return true;
            case EnqueueResult.Full:
                _log.Warn("Output queue of {Jid} is full ({Limit} stanzas or {Bytes} bytes): closing the connection", _jid, limits.OutputQueue, limits.OutputBytes);
                Close(new StreamError(StreamErrorCondition.ResourceConstraint, "client is not reading"));
                return false;
            default:
                return false;
        }
    }

    /// <summary>
    /// §4: every stanza sent on a managed stream is kept until the client acknowledges it, and an &lt;r/&gt;
    /// follows unless one is out already. While the session waits for resumption, stanzas are only kept;
    /// once it is resumed elsewhere, they go to the new stream.
    /// </summary>
    private bool TrySendManaged(SmState sm, Element stanza)
    {
        ClientConnection? successor;
        var overflow = false;
        lock (sm.Gate)
        {
            switch (_phase)
            {
                case SmPhase.Ended:
                    return false;
                case SmPhase.Resumed:
                    successor = _resumedBy;
                    break;
                default:
                    if (sm.Unacked.Count >= _ctx.StreamManagement!.MaxUnacked)
                    {
                        overflow = true;
                        successor = null;
                        break;
                    }

                    if (_phase == SmPhase.Hibernating || _resumePending)
                    {
                        sm.Unacked.Enqueue(_phase == SmPhase.Hibernating ? Delayed(stanza) : stanza);
                        sm.Sent++;
                        return true;
                    }

                    if (Volatile.Read(ref _closing) != 0)
                    {
                        return false;
                    }

                    var limits = _ctx.Options.Limits;
                    var queued = _out.TryEnqueue(stanza, limits.OutputQueue, limits.OutputBytes);
                    if (queued == EnqueueResult.Queued)
                    {
                        sm.Unacked.Enqueue(stanza);
                        sm.Sent++;
                        if (!sm.AckRequested)
                        {
                            sm.AckRequested = true;
                            SendRaw("<r xmlns='" + SmState.Namespace + "'/>");
                        }

                        return true;
                    }

                    overflow = queued == EnqueueResult.Full;
                    successor = null;
                    break;
            }
        }

        if (overflow)
        {
            // Not reading, or not acknowledging: the session ends (its unacknowledged messages are rerouted).
            _log.Warn("{Jid} holds {Count} unacknowledged stanzas or a full output queue: ending the session", _jid, sm.Unacked.Count);
            Close(new StreamError(StreamErrorCondition.ResourceConstraint, "too many unacknowledged stanzas"));
            return false;
        }

        return successor?.TrySend(stanza) ?? false;
    }

    /// <summary>XEP-0198 elements: enable (§3), r and a (§4), resume (§5).</summary>
    private void HandleStreamManagement(Element e)
    {
        const string Ns3 = SmState.Namespace;
        switch (e.Name)
        {
            case "enable" when _bound && _sm is null:
                SendRaw(EnableManagement(e));
                break;
            case "r" when _sm is not null:
                long h;
                lock (_sm.Gate)
                {
                    h = _sm.Inbound;
                }

                SendRaw($"<a xmlns='{Ns3}' h='{h % 4294967296L}'/>");
                break;
            case "a" when _sm is not null:
                if (!long.TryParse(e.GetAttribute("h"), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var acked))
                {
                    throw new XmppStreamException(StreamErrorCondition.BadFormat, "an <a/> needs a numeric 'h'");
                }

                lock (_sm.Gate)
                {
                    _sm.AckRequested = false;
                    if (!_sm.Acknowledge(acked))
                    {
                        // §4: the client claims to have handled more than was sent.
                        throw new XmppStreamException(StreamErrorCondition.UndefinedCondition, $"acknowledged {acked} stanzas of {_sm.Sent} sent");
                    }
                }

                break;
            case "resume" when !_bound && _sm is null && _user is not null:
                Resume(e, SendRaw);
                break;
            default:
                // §3: enabling before binding or twice, r/a before enabling, resuming after binding.
                SendRaw($"<failed xmlns='{Ns3}'><unexpected-request xmlns='{Ns.Stanzas}'/></failed>");
                break;
        }
    }

    /// <summary>§3: turns stream management on for this stream; returns the &lt;enabled/&gt; to send (alone, or inside Bind2's &lt;bound/&gt;).</summary>
    private string EnableManagement(Element e)
    {
        const string Ns3 = SmState.Namespace;
        var options = _ctx.StreamManagement!;
        var resume = e.GetAttribute("resume") is "true" or "1" && options.ResumeTimeout > TimeSpan.Zero;
        var timeout = options.ResumeTimeout;
        if (resume && long.TryParse(e.GetAttribute("max"), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var max) && max > 0 && max < timeout.TotalSeconds)
        {
            timeout = TimeSpan.FromSeconds(max);
        }

        var id = resume ? Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(18)).Replace('+', '-').Replace('/', '_') : null;
        _sm = new SmState { ResumeId = id, ResumeTimeout = timeout };
        string enabled;
        if (id is not null)
        {
            _ctx.Resumption.Add(id, this);
            enabled = $"<enabled xmlns='{Ns3}' id='{id}' resume='true' max='{(int)timeout.TotalSeconds}'/>";
        }
        else
        {
            enabled = $"<enabled xmlns='{Ns3}'/>";
        }

        _log.Info("Stream management enabled{Resume}", resume ? $", resumable for {(int)timeout.TotalSeconds} s" : string.Empty);
        return enabled;
    }

    /// <summary>
    /// §5: this new stream takes over a session that lost its connection (or is about to). The answer
    /// (&lt;resumed/&gt; or &lt;failed/&gt;) goes to <paramref name="reply"/>, alone or inside a SASL2 success,
    /// before the unacknowledged stanzas are sent again. True when resumed.
    /// </summary>
    private bool Resume(Element resume, Action<string> reply)
    {
        var previd = resume.GetAttribute("previd");
        var old = previd is null ? null : _ctx.Resumption.Find(previd);
        var account = Jid.Parse(_user + "@" + _host);
        if (old is null || !long.TryParse(resume.GetAttribute("h"), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var h) ||
            !old.TryHandOver(this, account, h))
        {
            _log.Info("Resumption of {Id} refused: unknown, expired, not this account's, or a wrong count", previd);
            reply($"<failed xmlns='{SmState.Namespace}'><item-not-found xmlns='{Ns.Stanzas}'/></failed>");
            return false;
        }

        // The session's state moves here; modules see the same session continue (no unbind, no bind).
        _jid = old._jid;
        IsAvailable = old.IsAvailable;
        Priority = old.Priority;
        LastPresence = old.LastPresence;
        RosterRequested = old.RosterRequested;
        foreach (var j in old.DirectedPresence)
        {
            DirectedPresence.Add(j);
        }

        Items.CopyFrom(old.Items);
        SendFilter = old.SendFilter;
        _bound = true;
        _ctx.Resumption.Add(previd!, this);
        _ctx.Sessions.Bind(this);

        var sm = _sm!;
        lock (sm.Gate)
        {
            reply($"<resumed xmlns='{SmState.Namespace}' previd='{previd}' h='{sm.Inbound % 4294967296L}'/>");
            var limits = _ctx.Options.Limits;
            foreach (var stanza in sm.Unacked)
            {
                _out.TryEnqueue(stanza, limits.OutputQueue, limits.OutputBytes);
            }

            if (sm.Unacked.Count > 0)
            {
                sm.AckRequested = true;
                SendRaw("<r xmlns='" + SmState.Namespace + "'/>");
            }

            _resumePending = false;
            _log.Info("Resumed the session of {Jid} from connection c{Old}: {Count} unacknowledged stanzas sent again", _jid, old.ConnectionId, sm.Unacked.Count);
        }

        return true;
    }

    /// <summary>
    /// Hands this session over to a new stream of the same account (§5): true when it was live or waiting,
    /// and <paramref name="h"/> is plausible. The successor gets the state and the stanzas past <paramref name="h"/>.
    /// </summary>
    private bool TryHandOver(ClientConnection successor, Jid account, long h)
    {
        if (_sm is not { } sm || _jid is null || _jid.Bare != account)
        {
            return false;
        }

        bool wasLive;
        lock (sm.Gate)
        {
            if (_phase is SmPhase.Ended or SmPhase.Resumed || !sm.Acknowledge(h))
            {
                return false;
            }

            wasLive = _phase == SmPhase.Active;
            successor._sm = sm.CopyForResumption(sm.ResumeId!);
            successor._resumePending = true;
            sm.Unacked.Clear();
            _resumedBy = successor;
            _phase = SmPhase.Resumed;
        }

        if (wasLive)
        {
            // The old connection may not know yet that it is dead: it is closed, without ending the session.
            Close(null);
        }
        else
        {
            try
            {
                _resumeWait?.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // The wait is over already.
            }
        }

        return true;
    }

    private void SendRaw(string xml) => _out.EnqueueRaw(xml);

    public Task FlushAsync() => _out.FlushAsync();

    public void Close(StreamError? streamError)
    {
        if (streamError is not null && Volatile.Read(ref _closing) == 0)
        {
            _ctx.Metrics.StreamError("c2s", streamError.Condition);
        }

        if (streamError is not null && streamError.Condition != StreamErrorCondition.ConnectionTimeout)
        {
            // Ended by us for a reason (conflict, policy, shutdown ...): not a session to resume.
            _closedWithError = true;
        }

        if (_sm is not null && _phase == SmPhase.Hibernating)
        {
            _ = EndHibernationAsync(streamError?.Text ?? "closed");
            return;
        }

        if (Interlocked.Exchange(ref _closing, 1) != 0)
        {
            return;
        }

        string? header = null;
        if (!_headerSent)
        {
            _headerSent = true;
            header = HeaderXml(_host ?? _ctx.Options.Hosts[0].Name, null);
        }

        _out.Close(header, streamError);

        // Give the peer a moment to send its own closing tag, then stop reading (RFC 6120 §4.4).
        try
        {
            _cts.CancelAfter(_ctx.Options.Limits.CloseTimeout);
        }
        catch (ObjectDisposedException)
        {
            // Already torn down.
        }
    }

    private async Task WriterLoopAsync()
    {
        await _out.RunAsync(
            reason =>
            {
                _log.Debug("Writer stopped: {Reason}", reason);
                try
                {
                    _cts.Cancel();
                }
                catch (ObjectDisposedException)
                {
                    // Already torn down.
                }
            },
            _cts.Token).ConfigureAwait(false);
    }
}
