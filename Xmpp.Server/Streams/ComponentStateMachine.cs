using System.Security.Cryptography;
using System.Text;
using NLog;
using Xmpp.Core;
using Xmpp.Core.Addressing;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;
using Xmpp.Server.Components;
using Xmpp.Server.Hosting;

namespace Xmpp.Server.Streams;

/// <summary>
/// One external component's stream (XEP-0114 §3) as a state machine with no socket: the component opens a
/// jabber:component:accept stream to its domain, proves it knows the shared secret with
/// &lt;handshake&gt;SHA-1(stream id + secret)&lt;/handshake&gt;, and then exchanges stanzas that must carry both
/// addresses, 'from' in its own domain. Each element is looked up in <see cref="ComponentTransitions"/> for the
/// <see cref="State"/>; the routes to connected components are <see cref="ComponentManager"/>'s.
/// </summary>
public sealed class ComponentStateMachine : IStreamProtocol, IDescribesPeer
{
    public const string Namespace = "jabber:component:accept";

    private readonly ServerContext _ctx;
    private readonly ComponentManager _manager;
    private readonly Logger _log;
    private StreamConnection _connection = null!;
    private volatile ComponentState _state;
    private string _streamId = string.Empty;
    private string? _peer;
    private volatile bool _authenticated;

    private ComponentStateMachine(ServerContext ctx, Logger log)
    {
        _ctx = ctx;
        _manager = ctx.Components;
        _log = log;
    }

    /// <summary>A stream accepted on the component listener, ready for the connection manager to run.</summary>
    public static StreamConnection Create(ServerContext ctx, IStreamTransport transport, CancellationToken shutdown)
    {
        var log = ctx.Logs.GetLogger("Component");
        var stream = new ComponentStateMachine(ctx, log);
        var connection = new StreamConnection(ctx, transport, stream, new StreamLimits(null, ctx.Options.Limits.CloseTimeout), log, shutdown);
        stream._connection = connection;
        return connection;
    }

    public string Kind => "component";

    /// <summary>Where the stream is: set by the read loop, and to Closing by a timer or another stream too; Closing is final.</summary>
    public ComponentState State
    {
        get => _state;
        private set
        {
            if (_state != ComponentState.Closing)
            {
                _state = value;
            }
        }
    }

    /// <summary>The component's domain, once its stream header named one we know.</summary>
    public string Domain { get; private set; } = string.Empty;

    public long ConnectionId => _connection.ConnectionId;

    /// <summary>The component's domain as its stream header named it, for the log scope.</summary>
    public string? Peer => _peer;

    public ValueTask StartAsync(StreamConnection connection, CancellationToken cancellationToken)
    {
        _log.Info("Component connection accepted from {Remote}", connection.Transport.Remote);
        connection.After(_ctx.Options.Limits.AuthTimeout, () =>
        {
            if (!_authenticated)
            {
                Close(new StreamError(StreamErrorCondition.ConnectionTimeout, "no handshake in time"));
            }
        });
        return ValueTask.CompletedTask;
    }

    /// <summary>Answers the component's stream header (XEP-0114 §3, example 2): our header carries the stream id the handshake hashes.</summary>
    public ValueTask OnHeaderAsync(StreamHeader header, CancellationToken cancellationToken)
    {
        _streamId = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12));
        var to = header.To is not null && Jid.TryPrepareDomain(header.To, out var d) ? d : null;
        Domain = to ?? string.Empty;
        _peer = Domain;

        // XEP-0114's header has no version: the stream has no features.
        _connection.SendHeader(new OutgoingHeader(to ?? _ctx.Options.Hosts[0].Name, null, _streamId, Version: null));
        if (header.LocalName != "stream" || header.Namespace != Ns.Stream || header.DefaultNamespace != Namespace)
        {
            throw new XmppStreamException(StreamErrorCondition.InvalidNamespace, "expected a jabber:component:accept stream");
        }

        if (to is null || _manager.Find(to) is null)
        {
            Domain = string.Empty;
            throw new XmppStreamException(StreamErrorCondition.HostUnknown, $"no component '{header.To}' is configured");
        }

        State = ComponentState.AwaitingHandshake;
        return ValueTask.CompletedTask;
    }

    public async ValueTask<StreamStep> OnElementAsync(Element element, CancellationToken cancellationToken)
    {
        var rule = ComponentTransitions.For(State, Classify(element));
        if (rule.Action is not { } action)
        {
            throw new XmppStreamException(rule.Refusal!.Condition, $"<{element.Name} xmlns='{element.Namespace}'/>: {rule.Refusal.Reason}");
        }

        switch (action)
        {
            case ComponentAction.Handshake:
                Handshake(element.Text.Trim());
                return StreamStep.Continue;
            case ComponentAction.Stanza:
                await StanzaAsync(element, cancellationToken).ConfigureAwait(false);
                return StreamStep.Continue;
            case ComponentAction.PeerError:
                _log.Warn("Component {Domain} sent stream error {Condition}", Domain, element.FirstElement()?.Name ?? "?");
                Close(null);
                return StreamStep.Stop;
            default:
                return StreamStep.Continue;
        }
    }

    /// <summary>What kind of element this is, for the transition table (the reader gives jabber:component:accept as jabber:client).</summary>
    public static ComponentElementKind Classify(Element e) => (e.Namespace, e.Name) switch
    {
        (Ns.Stream, "error") => ComponentElementKind.StreamError,
        (Ns.Client, "handshake") => ComponentElementKind.Handshake,
        (Ns.Client, _) when Stanza.IsStanza(e) => ComponentElementKind.Stanza,
        _ => ComponentElementKind.Unknown,
    };

    /// <summary>XEP-0114 §3: the handshake is the lower-case hex SHA-1 of the stream id followed by the secret.</summary>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Security", "CA5350", Justification = "XEP-0114 fixes SHA-1 for the handshake; the secret itself never travels.")]
    private void Handshake(string digest)
    {
        var secret = _manager.Find(Domain)!.Secret;
        var expected = Convert.ToHexStringLower(SHA1.HashData(Encoding.UTF8.GetBytes(_streamId + secret)));
        var given = Encoding.ASCII.GetBytes(digest.ToLowerInvariant());
        if (!CryptographicOperations.FixedTimeEquals(given, Encoding.ASCII.GetBytes(expected)))
        {
            _log.Warn("Component {Domain} from {Remote} failed the handshake (wrong secret)", Domain, _connection.Transport.Remote);
            throw new XmppStreamException(StreamErrorCondition.NotAuthorized, "handshake failed");
        }

        _authenticated = true;
        State = ComponentState.Established;
        _connection.SendNonza(new Element("handshake", Ns.Client));
        _manager.Attach(this);
        _log.Info("Component {Domain} connected from {Remote}", Domain, _connection.Transport.Remote);
    }

    private async ValueTask StanzaAsync(Element e, CancellationToken ct)
    {
        // A component speaks for its own domain only, and names both ends (as Prosody requires).
        if (!Jid.TryParse(e.GetAttribute("from"), out var from) || from.Domain != Domain)
        {
            _log.Warn("Component {Domain} sent a {Kind} from '{From}', outside its domain", Domain, e.Name, e.GetAttribute("from"));
            throw new XmppStreamException(StreamErrorCondition.InvalidFrom, $"stanzas from this stream must be from {Domain}");
        }

        if (e.GetAttribute("to") is null)
        {
            throw new XmppStreamException(StreamErrorCondition.ImproperAddressing, "stanzas from a component need 'to'");
        }

        _ctx.Metrics.StanzaIn(e.Name);
        await _ctx.Router.RouteAsync(e, from, null, ct).ConfigureAwait(false);
    }

    /// <summary>Queues a stanza for the component; Full when it is not reading, Closed once the stream ends.</summary>
    internal Enqueued Send(Element stanza) =>
        _connection.Output.TryEnqueue(stanza, _ctx.Options.S2s.QueueLimit, _ctx.Options.Limits.OutputBytes);

    public ValueTask OnEndedAsync(StreamEnd end)
    {
        State = ComponentState.Closing;
        if (_authenticated)
        {
            _manager.Detach(this);
        }

        if (end != StreamEnd.ClosedByUs)
        {
            _log.Info("Component {Domain} closed its stream", Domain);
        }

        return ValueTask.CompletedTask;
    }

    /// <summary>What the writer did not send bounces with service-unavailable, as stanzas to a component that is away do.</summary>
    public async ValueTask OnReleasedAsync()
    {
        var unsent = _connection.Output.Drain();
        foreach (var stanza in unsent)
        {
            await _ctx.Router.BounceAsync(stanza, new StanzaError(StanzaErrorCondition.ServiceUnavailable, $"{Domain} disconnected"), CancellationToken.None).ConfigureAwait(false);
        }

        if (_authenticated)
        {
            _log.Info("Component {Domain} disconnected{Bounced}", Domain, unsent.Count == 0 ? string.Empty : $"; {unsent.Count} stanzas not written were bounced");
        }
    }

    /// <summary>Components are long-lived and usually local: no idle limit.</summary>
    public void CheckIdle(long now, long lastActivity)
    {
    }

    public OutgoingHeader ClosingHeader() => new(Domain.Length > 0 ? Domain : _ctx.Options.Hosts[0].Name, null, null, Version: null);

    /// <summary>Ends the stream (with &lt;conflict/&gt; when the component connected again).</summary>
    public void Close(StreamError? streamError)
    {
        State = ComponentState.Closing;
        _connection.Close(streamError);
    }
}
