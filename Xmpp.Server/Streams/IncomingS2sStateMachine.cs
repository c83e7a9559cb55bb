using System.Security.Cryptography.X509Certificates;
using System.Text;
using NLog;
using Xmpp.Core;
using Xmpp.Core.Addressing;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;
using Xmpp.Server.Hosting;
using Xmpp.Server.S2s;

namespace Xmpp.Server.Streams;

/// <summary>
/// A stream another server opened to us (we are the receiving server, RFC 6120 / XEP-0220 terms) as a state
/// machine with no socket: STARTTLS, then the peer authenticates each domain it sends from, by SASL EXTERNAL
/// with a certificate valid for it (XEP-0178) or by Server Dialback (XEP-0220; with a valid certificate we answer
/// at once, XEP-0344). Stanzas are accepted only from authenticated domains to our own domains. We also answer
/// db:verify requests for keys we issued as the authoritative server. Each element is looked up in
/// <see cref="S2sInTransitions"/> for the <see cref="State"/>.
/// </summary>
[Specification("XEP-0178", "1.2", Note = "SASL EXTERNAL between servers with certificates.")]
public sealed class IncomingS2sStateMachine : IStreamProtocol, IDescribesPeer
{
    private readonly ServerContext _ctx;
    private readonly S2sManager _manager;
    private readonly bool _directTls;
    private readonly HashSet<string> _authenticated = new(StringComparer.Ordinal);

    /// <summary>The authenticated domains with their method, for <see cref="Describe"/> (another thread): under its own lock.</summary>
    private readonly List<S2sPeer> _peers = [];
    private readonly DateTimeOffset _since = DateTimeOffset.UtcNow;
    private long _stanzas;
    private readonly Logger _log;
    private StreamConnection _connection = null!;
    private volatile S2sInState _state;
    private X509Certificate2? _peerCertificate;
    private string _localDomain;
    private string? _peerDomain;
    private string _streamId = string.Empty;
    private bool _saslDone;
    private volatile bool _isAuthenticated;

    private IncomingS2sStateMachine(ServerContext ctx, bool directTls, Logger log)
    {
        _ctx = ctx;
        _manager = ctx.S2s;
        _directTls = directTls;
        _log = log;
        _localDomain = ctx.Options.Hosts[0].Name;
    }

    /// <summary>A stream on a transport (<see cref="S2sTls.Transport"/> for an accepted socket), ready for the connection manager to run.</summary>
    public static StreamConnection Create(ServerContext ctx, IStreamTransport transport, bool directTls, CancellationToken shutdown)
    {
        var log = ctx.Logs.GetLogger("S2sIn");
        var stream = new IncomingS2sStateMachine(ctx, directTls, log);
        var connection = new StreamConnection(ctx, transport, stream, new StreamLimits(null, ctx.Options.Limits.CloseTimeout), log, shutdown);
        stream._connection = connection;
        return connection;
    }

    public string Kind => "s2s";

    /// <summary>Where the stream is: set by the read loop, and to Closing by a timer or another stream too; Closing is final.</summary>
    public S2sInState State
    {
        get => _state;
        private set
        {
            if (_state != S2sInState.Closing)
            {
                _state = value;
            }
        }
    }

    /// <summary>Whether the peer has authenticated at least one domain on this stream.</summary>
    public bool IsAuthenticated => _isAuthenticated;

    /// <summary>The domain the peer named in its header (or authenticated first), for the log scope.</summary>
    public string? Peer => _peerDomain;

    private string PeerName => _peerDomain ?? _connection.Transport.Remote.ToString();

    public async ValueTask StartAsync(StreamConnection connection, CancellationToken cancellationToken)
    {
        _log.Info("s2s connection accepted from {Remote}{Mode}", connection.Transport.Remote, connection.Transport.Description);
        _manager.Incoming[connection.ConnectionId] = this;
        connection.After(_ctx.Options.Limits.AuthTimeout, () =>
        {
            if (!IsAuthenticated)
            {
                Close(new StreamError(StreamErrorCondition.ConnectionTimeout, "authentication took too long"));
            }
        });

        if (_directTls)
        {
            // XEP-0368: TLS from the first byte, ALPN xmpp-server.
            await connection.StartTlsAsServerAsync(S2sTls.ServerOptions(_ctx, null, directTls: true), cancellationToken).ConfigureAwait(false);
            OnTls();
        }
    }

    /// <summary>RFC 6120 §4.7: our header answers the peer's, then the features of the state it leads to (§4.3.2).</summary>
    public ValueTask OnHeaderAsync(StreamHeader header, CancellationToken cancellationToken)
    {
        _streamId = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(12));
        var to = header.To is not null && Jid.TryPrepareDomain(header.To, out var d) ? d : null;
        if (to is not null && _ctx.Router.Serves(to))
        {
            _localDomain = to;
        }

        if (header.From is not null && Jid.TryPrepareDomain(header.From, out var from))
        {
            _peerDomain = from;
        }

        _connection.SendHeader(new OutgoingHeader(_localDomain, _peerDomain, _streamId));
        if (header.LocalName != "stream" || header.Namespace != Ns.Stream || header.DefaultNamespace != Ns.Server)
        {
            throw new XmppStreamException(StreamErrorCondition.InvalidNamespace, "expected a jabber:server stream");
        }

        if (to is null || !_ctx.Router.Serves(to))
        {
            throw new XmppStreamException(StreamErrorCondition.HostUnknown, $"this server does not serve '{header.To}'");
        }

        // RFC 6120 §4.7.5: no version means 0.9, which lacks SASL and TLS.
        if (header.Version is null || !header.Version.StartsWith("1.", StringComparison.Ordinal))
        {
            throw new XmppStreamException(StreamErrorCondition.UnsupportedVersion, "version 1.0 is required");
        }

        var secure = _connection.Transport.IsSecure;
        var options = _ctx.Options.S2s;
        State = !secure && options.RequireEncryption ? S2sInState.AwaitingStartTls
            : IsAuthenticated ? S2sInState.Authenticated : S2sInState.AwaitingAuthentication;
        var features = new Element("features", Ns.Stream);
        if (!secure)
        {
            var starttls = features.AddChild("starttls", Ns.Tls);
            if (options.RequireEncryption)
            {
                starttls.AddChild("required", Ns.Tls);
            }
        }

        if (State != S2sInState.AwaitingStartTls)
        {
            if (secure && !_saslDone && _peerDomain is not null && _manager.Certificates.Check(_peerCertificate, _peerDomain, DateTimeOffset.UtcNow) is null)
            {
                features.AddChild("mechanisms", Ns.Sasl).AddChild("mechanism", Ns.Sasl).AddText("EXTERNAL");
            }

            if (options.AllowDialback || secure)
            {
                features.AddChild("dialback", Ns.DialbackFeature).AddChild("errors", Ns.DialbackFeature);
            }
        }

        _connection.SendNonza(features);
        return ValueTask.CompletedTask;
    }

    public async ValueTask<StreamStep> OnElementAsync(Element element, CancellationToken cancellationToken)
    {
        var rule = S2sInTransitions.For(State, Classify(element));
        if (rule.Action is not { } action)
        {
            throw new XmppStreamException(rule.Refusal!.Condition, $"<{element.Name} xmlns='{element.Namespace}'/>: {rule.Refusal.Reason}");
        }

        switch (action)
        {
            case S2sInAction.StartTls:
                return await StartTlsAsync(cancellationToken).ConfigureAwait(false);
            case S2sInAction.SaslExternal:
                return SaslExternal(element);
            case S2sInAction.DialbackResult:
                await DialbackResultAsync(element, cancellationToken).ConfigureAwait(false);
                return StreamStep.Continue;
            case S2sInAction.DialbackVerify:
                DialbackVerify(element);
                return StreamStep.Continue;
            case S2sInAction.Stanza:
                await StanzaAsync(element, cancellationToken).ConfigureAwait(false);
                return StreamStep.Continue;
            case S2sInAction.PeerError:
                _log.Warn("{Peer} sent stream error {Condition}", PeerName, element.FirstElement()?.Name ?? "?");
                Close(null);
                return StreamStep.Stop;
            default:
                return StreamStep.Continue;
        }
    }

    /// <summary>What kind of element this is, for the transition table.</summary>
    public static S2sInElementKind Classify(Element e) => (e.Namespace, e.Name) switch
    {
        (Ns.Stream, "error") => S2sInElementKind.StreamError,
        (Ns.Tls, "starttls") => S2sInElementKind.StartTls,
        (Ns.Sasl, "auth") => S2sInElementKind.SaslAuth,
        (Ns.Sasl, _) => S2sInElementKind.SaslOther,
        (Ns.Dialback, "verify") => S2sInElementKind.DialbackVerify,
        (Ns.Dialback, "result") when e.GetAttribute("type") is null => S2sInElementKind.DialbackResult,
        (Ns.Dialback, _) => S2sInElementKind.DialbackOther,
        (Ns.Client, _) when Stanza.IsStanza(e) => S2sInElementKind.Stanza,
        _ => S2sInElementKind.Unknown,
    };

    private async ValueTask<StreamStep> StartTlsAsync(CancellationToken ct)
    {
        // RFC 6120 §5.4.3.1: TLS once per stream; a second request is a protocol violation.
        if (_connection.Transport.IsSecure)
        {
            throw new XmppStreamException(StreamErrorCondition.PolicyViolation, "TLS is already established");
        }

        _connection.SendNonza(new Element("proceed", Ns.Tls));
        await _connection.StartTlsAsServerAsync(S2sTls.ServerOptions(_ctx, _localDomain, directTls: false), ct).ConfigureAwait(false);
        OnTls();
        State = S2sInState.AwaitingHeader;
        return StreamStep.Restart;
    }

    private void OnTls()
    {
        _peerCertificate?.Dispose();
        _peerCertificate = S2sTls.Established(_connection.Transport, _log);
    }

    /// <summary>XEP-0178: the authorization identity (or the stream's 'from') must be what the certificate proves.</summary>
    private StreamStep SaslExternal(Element auth)
    {
        if (_saslDone || auth.GetAttribute("mechanism") != "EXTERNAL")
        {
            return SaslFailure("invalid-mechanism");
        }

        var text = auth.Text.Trim();
        string? authzid = null;
        if (text.Length > 0 && text != "=")
        {
            try
            {
                authzid = Encoding.UTF8.GetString(Convert.FromBase64String(text));
            }
            catch (FormatException)
            {
                return SaslFailure("incorrect-encoding");
            }
        }

        var domain = authzid ?? _peerDomain;
        var problem = domain is null ? "no domain" : _manager.Certificates.Check(_peerCertificate, domain, DateTimeOffset.UtcNow);
        if (problem is not null)
        {
            _log.Warn("SASL EXTERNAL refused for {Domain} from {Remote}: {Reason}", domain ?? "?", _connection.Transport.Remote, problem);
            return SaslFailure("not-authorized");
        }

        _saslDone = true;
        _peerDomain = domain!;
        Authenticated(domain!, S2sAuthentication.SaslExternal, null);
        _log.Info("s2s peer {Domain} authenticated by SASL EXTERNAL (certificate)", domain);
        _connection.SendNonza(new Element("success", Ns.Sasl));

        // RFC 6120 §6.4.6: a new stream after success.
        State = S2sInState.AwaitingHeader;
        return StreamStep.Restart;
    }

    private StreamStep SaslFailure(string condition)
    {
        _connection.SendNonza(new Element("failure", Ns.Sasl).Add(new Element(condition, Ns.Sasl)));
        return StreamStep.Continue;
    }

    private void Authenticated(string domain, S2sAuthentication method, string? certificateProblem)
    {
        _authenticated.Add(domain);
        lock (_peers)
        {
            _peers.RemoveAll(p => p.Domain == domain);
            _peers.Add(new S2sPeer(domain, method, certificateProblem));
        }

        _isAuthenticated = true;
        if (State == S2sInState.AwaitingAuthentication)
        {
            State = S2sInState.Authenticated;
        }
    }

    /// <summary>Both dialback addresses, prepared; improper-addressing without them.</summary>
    private static (string Origin, string Receiving) DialbackAddresses(Element e)
    {
        var from = e.GetAttribute("from");
        var to = e.GetAttribute("to");
        if (from is null || to is null || !Jid.TryPrepareDomain(from, out var origin) || !Jid.TryPrepareDomain(to, out var receiving))
        {
            throw new XmppStreamException(StreamErrorCondition.ImproperAddressing, "dialback without valid 'from' and 'to'");
        }

        return (origin, receiving);
    }

    /// <summary>XEP-0220 §2.2: we are the authoritative server for 'to': is this our key for the stream 'id'?</summary>
    private void DialbackVerify(Element e)
    {
        var (origin, receiving) = DialbackAddresses(e);
        var id = e.GetAttribute("id") ?? string.Empty;
        var valid = _ctx.Router.Serves(receiving) && _manager.Dialback.Verify(origin, receiving, id, e.Text);
        _log.Info("Dialback verify from {Peer} for stream {Id}: {Result}", origin, id, valid ? "valid" : "invalid");
        _connection.SendNonza(new Element("verify", Ns.Dialback)
            .SetAttribute("from", receiving).SetAttribute("to", origin).SetAttribute("id", id)
            .SetAttribute("type", valid ? "valid" : "invalid"));
    }

    /// <summary>XEP-0220 §2.1: the peer claims 'from' and wants to send to our 'to'.</summary>
    private async ValueTask DialbackResultAsync(Element e, CancellationToken ct)
    {
        var (origin, receiving) = DialbackAddresses(e);
        if (!_ctx.Router.Serves(receiving))
        {
            _connection.SendNonza(DialbackError(receiving, origin, "item-not-found"));
            return;
        }

        bool ok;
        var certificateProblem = _manager.Certificates.Check(_peerCertificate, origin, DateTimeOffset.UtcNow);
        if (certificateProblem is null)
        {
            // XEP-0344: the certificate already proves the domain; no need to dial back.
            ok = true;
        }
        else if (!_ctx.Options.S2s.AllowDialback)
        {
            _log.Warn("Refusing dialback from {Domain}: certificates are required ({Reason})", origin, certificateProblem);
            _connection.SendNonza(DialbackError(receiving, origin, "not-authorized"));
            return;
        }
        else
        {
            ok = await _manager.VerifyDialbackAsync(receiving, origin, _streamId, e.Text, ct).ConfigureAwait(false);
        }

        if (ok)
        {
            _peerDomain ??= origin;
            Authenticated(origin, certificateProblem is null ? S2sAuthentication.DialbackOnCertificate : S2sAuthentication.Dialback, certificateProblem);
            _log.Info("s2s peer {Domain} authenticated by {Method}", origin, certificateProblem is null ? "dialback with a valid certificate (XEP-0344)" : "dialback");
        }
        else
        {
            _log.Warn("Dialback for {Domain} failed", origin);
        }

        _connection.SendNonza(new Element("result", Ns.Dialback)
            .SetAttribute("from", receiving).SetAttribute("to", origin).SetAttribute("type", ok ? "valid" : "invalid"));
    }

    /// <summary>XEP-0220 §2.4: a dialback error, with the stanza error condition inside.</summary>
    private static Element DialbackError(string from, string to, string condition)
    {
        var result = new Element("result", Ns.Dialback).SetAttribute("from", from).SetAttribute("to", to).SetAttribute("type", "error");
        result.AddChild("error", Ns.Client).SetAttribute("type", "cancel").Add(new Element(condition, Ns.Stanzas));
        return result;
    }

    private async ValueTask StanzaAsync(Element e, CancellationToken ct)
    {
        // RFC 6120 §8.1.1.2 / §8.1.2.2: both addresses are required on server streams, the sender's domain
        // must be one this stream authenticated, the recipient's one of ours.
        if (!Jid.TryParse(e.GetAttribute("from"), out var from) || e.GetAttribute("to") is null)
        {
            throw new XmppStreamException(StreamErrorCondition.ImproperAddressing, "stanzas between servers need 'from' and 'to'");
        }

        if (!_authenticated.Contains(from.Domain))
        {
            _log.Warn("Rejecting a stanza from {From}: the stream from {Peer} is not authenticated for {Domain}", from, _peerDomain, from.Domain);
            throw new XmppStreamException(StreamErrorCondition.InvalidFrom, $"not authenticated for {from.Domain}");
        }

        if (Jid.TryParse(e.GetAttribute("to"), out var to) && !_ctx.Router.Serves(to.Domain))
        {
            throw new XmppStreamException(StreamErrorCondition.HostUnknown, $"this server does not serve {to.Domain}");
        }

        e.SetAttribute("from", from.ToString());
        _ctx.Metrics.StanzaIn(e.Name);
        Interlocked.Increment(ref _stanzas);
        await _ctx.Router.RouteAsync(e, from, null, ct).ConfigureAwait(false);
    }

    public ValueTask OnEndedAsync(StreamEnd end)
    {
        State = S2sInState.Closing;
        _manager.Incoming.TryRemove(_connection.ConnectionId, out _);
        if (end != StreamEnd.ClosedByUs)
        {
            _log.Info("s2s stream from {Peer} ended", PeerName);
        }

        return ValueTask.CompletedTask;
    }

    public ValueTask OnReleasedAsync()
    {
        _peerCertificate?.Dispose();
        return ValueTask.CompletedTask;
    }

    /// <summary>A stream silent for the s2s idle timeout is closed (the peer opens a new one when it has something to send).</summary>
    public void CheckIdle(long now, long lastActivity)
    {
        if (now - lastActivity >= (long)_ctx.Options.S2s.IdleTimeout.TotalMilliseconds)
        {
            _log.Info("Closing the idle s2s stream from {Peer}", PeerName);
            Close(null);
        }
    }

    public OutgoingHeader ClosingHeader() => new(_localDomain, null, null);

    /// <summary>The stream as the console lists it (from any thread).</summary>
    internal S2sStreamInfo Describe()
    {
        List<S2sPeer> peers;
        lock (_peers)
        {
            peers = [.. _peers];
        }

        var transport = _connection.Transport;
        var tls = transport.Tls is { } ssl ? $"{ssl.SslProtocol} {ssl.NegotiatedCipherSuite}" : null;
        return new S2sStreamInfo(S2sDirection.Incoming, _connection.ConnectionId, _localDomain, _peerDomain, peers, transport.Remote.ToString(),
            State.ToString(), tls, _directTls, _since, Interlocked.Read(ref _stanzas));
    }

    /// <summary>Ends the stream as the idle timeout does, for an administrator: the peer opens a new one when it has something to send.</summary>
    internal void End(string by)
    {
        _log.Info("Closing the s2s stream from {Peer} ({By})", PeerName, by);
        Close(null);
    }

    private void Close(StreamError? error)
    {
        State = S2sInState.Closing;
        _connection.Close(error);
    }
}
