using System.Net;
using NLog;
using Xmpp.Core;
using Xmpp.Core.Addressing;
using Xmpp.Core.Sasl;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;
using Xmpp.Server.Hosting;
using Xmpp.Server.Net;
using Xmpp.Server.Sessions;

namespace Xmpp.Server.Streams;

/// <summary>
/// The client-to-server stream (RFC 6120) as a state machine with no socket: the connection core hands it the
/// header and each element; it looks the element up in <see cref="C2sTransitions"/> for its <see cref="State"/>,
/// refuses it with the error the RFC names or runs the action, and answers through the connection. The bound
/// session is a <see cref="ClientSession"/> of its own, which can outlive this stream (XEP-0198).
/// </summary>
[Specification("RFC 6120", "§4–§8, §11", Note = "Client streams: STARTTLS (required by default; TLS 1.2 with ECDHE and AEAD, or TLS 1.3), SASL, resource binding (client-chosen or generated; binding a bound resource again replaces the old session with conflict), stanza semantics, stream and stanza errors, restricted XML.")]
[Specification("RFC 3921", "§3", Note = "The legacy session iq, answered and offered as optional.")]
[Specification("XEP-0368", "1.1.0", Note = "Direct TLS for clients on a second port (ALPN xmpp-client).")]
[Specification("XEP-0474", "0.4.0", Note = "The SCRAM server-first-message carries the 'h' hash of the advertised mechanisms and channel-binding types, which the SCRAM signature covers.")]
[Specification("XEP-0440", "0.4.2", Note = "The channel binding types of each TLS connection are listed in the stream features: tls-exporter (TLS 1.3), tls-unique, tls-server-end-point. None over WebSocket and BOSH, where no -PLUS mechanism is offered either.")]
[Specification("XEP-0205", "1.0", Note = "Limits on stanza size, depth, attributes, namespaces, rate (token bucket: a faster stream is read more slowly, not cut off), connections per address, sessions per account, output queues and authentication failures, each with the RFC's error.")]
public sealed partial class C2sStateMachine : IStreamProtocol, IDescribesPeer, ISessionCarrier, IC2sContext
{
    private readonly ServerContext _ctx;
    private readonly bool _directTls;
    private StreamConnection _connection = null!;
    private ClientChannelBinding? _channelBinding;
    private string? _peer;
    private long _pingSentAt;
    private bool _endedByClient;

    private C2sStateMachine(ServerContext ctx, bool directTls, Logger log)
    {
        _ctx = ctx;
        _directTls = directTls;
        Log = log;
        Sasl = new SaslNegotiation(this);
    }

    /// <summary>A client stream over a byte stream (TCP, or a web transport's adapter), ready for the connection manager to run.</summary>
    /// <param name="secure">The byte stream is encrypted underneath (HTTPS): no STARTTLS.</param>
    public static StreamConnection Create(ServerContext ctx, Stream stream, IPEndPoint remote, bool directTls, CancellationToken shutdown, bool secure = false, string description = "")
    {
        var transport = new Transports.ByteStreamTransport(stream, remote, ReaderLimits(ctx), Ns.Client, description: directTls ? " (direct TLS)" : description, secure: secure);
        return Create(ctx, transport, directTls, shutdown);
    }

    /// <summary>What the XML of a client stream is held to, whatever its transport.</summary>
    public static XmlReaderLimits ReaderLimits(ServerContext ctx)
    {
        var limits = ctx.Options.Limits;
        return new XmlReaderLimits
        {
            MaxStanzaBytes = limits.StanzaSize,
            MaxDepth = limits.MaxDepth,
            MaxAttributes = limits.MaxAttributes,
            MaxNamespaceDeclarations = limits.MaxNamespaces,
        };
    }

    /// <summary>A client stream on a transport, ready for the connection manager to run.</summary>
    public static StreamConnection Create(ServerContext ctx, IStreamTransport transport, bool directTls, CancellationToken shutdown)
    {
        var log = ctx.Logs.GetLogger("C2s");
        var stream = new C2sStateMachine(ctx, directTls, log);
        var limits = ctx.Options.Limits;
        var rate = limits.StanzaRate > 0 ? new TokenBucket(limits.StanzaRate, limits.StanzaBurst) : null;
        var connection = new StreamConnection(ctx, transport, stream, new StreamLimits(rate, limits.CloseTimeout), log, shutdown);
        stream._connection = connection;
        return connection;
    }

    public string Kind => "c2s";

    public C2sState State { get; private set; }

    public long ConnectionId => _connection.ConnectionId;

    public IPEndPoint Remote => _connection.Transport.Remote;

    public Logger Log { get; }

    public string? Host { get; private set; }

    public string? User { get; private set; }

    public ClientSession? Session { get; private set; }

    public bool IsSecure => _connection.Transport.IsSecure;

    public IChannelBindingSource? ChannelBinding => _channelBinding;

    public SaslNegotiation Sasl { get; }

    public SessionItems Items { get; } = new();

    /// <summary>The bound JID, for the log scope and messages.</summary>
    public string? Peer => _peer;

    internal ServerContext Context => _ctx;

    private C2sExtensions Extensions => _ctx.Modules.C2s;

    // ---- the connection core's side ------------------------------------------------------------------

    public async ValueTask StartAsync(StreamConnection connection, CancellationToken cancellationToken)
    {
        Log.Info("Connection accepted from {Remote}{Mode}", Remote, _connection.Transport.Description);
        var timeout = _ctx.Options.Limits.AuthTimeout;
        connection.After(timeout, () =>
        {
            if (Session is null)
            {
                Log.Warn("Closing connection from {Remote}: not authenticated within {Timeout}", Remote, timeout);
                Close(new StreamError(StreamErrorCondition.ConnectionTimeout, "authentication took too long"));
            }
        });

        if (_directTls)
        {
            await StartTlsAsync(host: null, cancellationToken).ConfigureAwait(false);
        }
    }

    public ValueTask OnHeaderAsync(StreamHeader header, CancellationToken cancellationToken)
    {
        OpenStream(header);
        return ValueTask.CompletedTask;
    }

    public async ValueTask<StreamStep> OnElementAsync(Element element, CancellationToken cancellationToken)
    {
        var kind = Classify(element);

        // Cluster mode: everything but a client's message waits for its messages on their way to other nodes
        // (Cluster.ForwardWindow): a request may change how what follows it is handled (RFC 6120 §10.1), and an
        // <r/> is answered with an 'h' that counts everything the client sent before it (XEP-0198 §4).
        if (_window is { Tail.IsCompleted: false } window && !(kind == C2sElementKind.Stanza && element.Name == "message"))
        {
            await window.Tail.WaitAsync(cancellationToken).ConfigureAwait(false);
        }

        var rule = C2sTransitions.For(State, kind);
        if (rule.Action is not { } action)
        {
            return await RefuseAsync(rule.Refusal!, element, cancellationToken).ConfigureAwait(false);
        }

        return action switch
        {
            C2sAction.StartTls => await StartTlsRequestedAsync(cancellationToken).ConfigureAwait(false),
            C2sAction.SaslStart => await SaslStartAsync(element, cancellationToken).ConfigureAwait(false),
            C2sAction.SaslStep => ApplySasl(await Sasl.StepAsync(element.Text, cancellationToken).ConfigureAwait(false)),
            C2sAction.SaslAbort => SaslAbort(),
            C2sAction.Bind => await BindAsync(element, cancellationToken).ConfigureAwait(false),
            C2sAction.Session => AnswerSession(element),
            C2sAction.PreAuthQuery => await PreAuthQueryAsync(element, cancellationToken).ConfigureAwait(false),
            C2sAction.Stanza => await StanzaAsync(element, cancellationToken).ConfigureAwait(false),
            C2sAction.PeerError => PeerError(element),
            C2sAction.Extension => await ExtensionAsync(element, cancellationToken).ConfigureAwait(false),
            _ => StreamStep.Continue,
        };
    }

    /// <summary>What kind of element this is, for the transition table.</summary>
    internal C2sElementKind Classify(Element e)
    {
        if (e.Namespace == Ns.Client && Stanza.IsStanza(e))
        {
            if (e.Name != "iq" || e.FirstElement() is not { } payload)
            {
                return C2sElementKind.Stanza;
            }

            var set = e.GetAttribute("type") == "set";
            if (set && payload.Is("bind", Ns.Bind))
            {
                return C2sElementKind.Bind;
            }

            if (set && payload.Is("session", Ns.Session) && (e.GetAttribute("to") is null || e.GetAttribute("to") == Host))
            {
                return C2sElementKind.Session;
            }

            return User is null && e.GetAttribute("id") is not null && Extensions.TryGetPreAuthQuery(payload.Namespace, out _)
                ? C2sElementKind.PreAuthQuery
                : C2sElementKind.Stanza;
        }

        return (e.Namespace, e.Name) switch
        {
            (Ns.Stream, "error") => C2sElementKind.StreamError,
            (Ns.Tls, "starttls") => C2sElementKind.StartTls,
            (Ns.Sasl, "auth") => C2sElementKind.SaslAuth,
            (Ns.Sasl, "response") => C2sElementKind.SaslResponse,
            (Ns.Sasl, "abort") => C2sElementKind.SaslAbort,
            (Ns.Sasl, _) => C2sElementKind.SaslOther,
            _ when Extensions.HandlesNamespace(e.Namespace) => C2sElementKind.Extension,
            _ => C2sElementKind.Unknown,
        };
    }

    private async ValueTask<StreamStep> RefuseAsync(C2sRefusal refusal, Element e, CancellationToken ct)
    {
        if (refusal.Kind == C2sRefusalKind.StreamError)
        {
            throw new XmppStreamException(refusal.StreamError, $"<{e.Name} xmlns='{e.Namespace}'/>: {refusal.Reason}");
        }

        return SaslFailed(await Sasl.FailAsync(refusal.SaslFailure, refusal.Reason, e.GetAttribute("mechanism"), ct).ConfigureAwait(false));
    }

    private StreamStep PeerError(Element e)
    {
        // The peer ends the stream with an error of its own (RFC 6120 §4.9.1.2): log it and close ours.
        var condition = e.FirstElement()?.Name ?? "unknown";
        Log.Warn("Client sent stream error {Condition}: {Text}", condition, e.ChildText("text", Ns.Streams) ?? string.Empty);
        _endedByClient = true;
        Close(null);
        return StreamStep.Stop;
    }

    private async ValueTask<StreamStep> ExtensionAsync(Element e, CancellationToken ct)
    {
        Extensions.TryGetElementHandler(e.Namespace, out var handler);
        await handler!(this, e, ct).ConfigureAwait(false);
        return State == C2sState.Closing ? StreamStep.Stop : StreamStep.Continue;
    }

    public async ValueTask OnEndedAsync(StreamEnd end)
    {
        State = C2sState.Closing;
        if (end == StreamEnd.ClosedByPeer)
        {
            _endedByClient = true;
            Log.Info("Client closed the stream");
        }
        else if (end == StreamEnd.Dropped)
        {
            Log.Info("Connection dropped by the client");
        }

        // Not bound, or taken over by a stream that resumed the session: nothing of the session ends here.
        if (Session is not { } session || !ReferenceEquals(session.Stream, this))
        {
            return;
        }

        // Cluster mode: the messages still on their way to other nodes are counted first (the session's 'h', should
        // it be resumed), and precede the unavailable presence its end sends (RFC 6120 §10.1). Not for long: a node
        // that does not answer is the forward's to wait for, not the session's end.
        if (_window is { Tail.IsCompleted: false } window)
        {
            try
            {
                await window.Tail.WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                Log.Warn("{Jid}: messages to other nodes still under way 5 s after the stream ended", session.Jid);
            }
        }

        // XEP-0198 §5 (through the session's tracker): a session whose connection was lost, rather than closed by
        // the client, ended by us with an error, or at shutdown, may wait to be resumed instead of ending.
        var resumable = !_endedByClient && !_connection.ClosedWithError && !_connection.Shutdown.IsCancellationRequested;
        var fate = session.Tracker?.StreamGone(this, resumable) ?? SessionFate.End;
        if (fate == SessionFate.End)
        {
            await session.EndAsync().ConfigureAwait(false);
        }
    }

    public ValueTask OnReleasedAsync()
    {
        if (Session is { } session && !ReferenceEquals(session.Stream, this) && !session.IsEnded)
        {
            if (session.Stream is { } successor)
            {
                Log.Info("Connection closed for {Jid}: the session continues on connection c{Successor}", session.Jid, successor.ConnectionId);
            }

            return ValueTask.CompletedTask;
        }

        Log.Info("Connection closed{Who}", Session is null ? string.Empty : " for " + Session.Jid);
        return ValueTask.CompletedTask;
    }

    /// <summary>
    /// A bound client silent for half the idle timeout gets a XEP-0199 ping (any answer, even an error, is
    /// traffic); silent for the whole timeout, the connection is presumed dead: it is closed with
    /// connection-timeout without waiting for the peer, so the session ends and contacts see it go offline
    /// within the idle timeout.
    /// </summary>
    public void CheckIdle(long now, long lastActivity)
    {
        if (Session is not { } session || !ReferenceEquals(session.Stream, this))
        {
            return;
        }

        var idle = (long)_ctx.Options.Limits.IdleTimeout.TotalMilliseconds;
        var silent = now - lastActivity;
        if (silent >= idle)
        {
            Log.Info("Closing the connection of {Jid}: nothing received for {Seconds} s", session.Jid, silent / 1000);
            Close(new StreamError(StreamErrorCondition.ConnectionTimeout, "idle connection"));
            _connection.Abort();
            return;
        }

        if (silent >= idle / 2 && _pingSentAt <= lastActivity)
        {
            _pingSentAt = now;
            session.TrySend(new Element("iq", Ns.Client)
                .SetAttribute("type", "get")
                .SetAttribute("id", "idle" + now.ToString(System.Globalization.CultureInfo.InvariantCulture))
                .SetAttribute("from", Host)
                .SetAttribute("to", session.Jid.ToString())
                .Add(new Element("ping", Ns.Ping)));
        }
    }

    public OutgoingHeader ClosingHeader() => new(Host ?? _ctx.Options.Hosts[0].Name, null, NewStreamId());

    // ---- the session's side (ISessionCarrier) ---------------------------------------------------------

    public bool TryWrite(Element stanza)
    {
        if (_connection.IsClosing)
        {
            return false;
        }

        var limits = _ctx.Options.Limits;
        switch (_connection.Output.TryEnqueue(stanza, limits.OutputQueue, limits.OutputBytes))
        {
            case Enqueued.Queued:
                return true;
            case Enqueued.Full:
                Log.Warn("Output queue of {Jid} is full ({Limit} stanzas or {Bytes} bytes): closing the connection", Session?.Jid, limits.OutputQueue, limits.OutputBytes);
                Close(new StreamError(StreamErrorCondition.ResourceConstraint, "client is not reading"));
                return false;
            default:
                return false;
        }
    }

    public void WriteNonza(Element element) => _connection.SendNonza(element);

    public void Send(Element element) => _connection.SendNonza(element);

    public Task FlushAsync() => _connection.FlushAsync();

    public void Close(StreamError? streamError)
    {
        State = C2sState.Closing;
        _connection.Close(streamError);
    }

    private static string NewStreamId() => Guid.NewGuid().ToString("N");
}
