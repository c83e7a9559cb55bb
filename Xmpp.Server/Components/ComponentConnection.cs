using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using NLog;
using Xmpp.Core;
using Xmpp.Core.Addressing;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;
using Xmpp.Server.Hosting;
using Xmpp.Server.Net;

namespace Xmpp.Server.Components;

/// <summary>
/// One external component's stream (XEP-0114 §3): the component opens a jabber:component:accept stream
/// to its domain, proves it knows the shared secret with &lt;handshake&gt;SHA-1(stream id + secret)&lt;/handshake&gt;,
/// and then exchanges stanzas that must carry both addresses, 'from' in its own domain.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Reliability", "CA1001", Justification = "RunAsync owns the transport and disposes it in its teardown.")]
public sealed class ComponentConnection : IConnection
{
    public const string Namespace = "jabber:component:accept";

    private readonly ServerContext _ctx;
    private readonly ComponentManager _manager;
    private readonly Socket _socket;
    private readonly Stream _stream;
    private readonly IPEndPoint _remote;
    private readonly Logger _log;
    private readonly CancellationTokenSource _cts;
    private readonly OutputQueue _out;
    private int _closing;
    private bool _headerSent;
    private bool _authenticated;

    public ComponentConnection(ServerContext ctx, ComponentManager manager, Socket socket, CancellationToken shutdown)
    {
        _ctx = ctx;
        _manager = manager;
        _socket = socket;
        _remote = (IPEndPoint)socket.RemoteEndPoint!;
        _stream = new NetworkStream(socket, ownsSocket: true);
        _log = ctx.Logs.GetLogger("Component");
        _cts = CancellationTokenSource.CreateLinkedTokenSource(shutdown);
        ConnectionId = ctx.Connections.NextId();
        _out = new OutputQueue(() => _stream, Namespace, ctx.Metrics);
    }

    public long ConnectionId { get; }

    /// <summary>The component's domain, once its stream header named one we know.</summary>
    public string Domain { get; private set; } = string.Empty;

    /// <summary>Components are long-lived and usually local: no idle limit.</summary>
    public void CheckIdle(long now)
    {
    }

    internal EnqueueResult Send(Element stanza) =>
        Volatile.Read(ref _closing) != 0 ? EnqueueResult.Closed : _out.TryEnqueue(stanza, _ctx.Options.S2s.QueueLimit, _ctx.Options.Limits.OutputBytes);

    public async Task RunAsync()
    {
        using var scope = ScopeContext.PushProperty("ConnectionId", ConnectionId);
        _log.Info("Component connection accepted from {Remote}", _remote);
        var writer = _out.RunAsync(
            reason =>
            {
                _log.Debug("Component writer stopped: {Reason}", reason);
                Cancel();
            },
            _cts.Token);
        using var authTimer = new CancellationTokenSource(_ctx.Options.Limits.AuthTimeout);
        using var authTimeout = authTimer.Token.Register(() =>
        {
            if (!Volatile.Read(ref _authenticated))
            {
                Close(new StreamError(StreamErrorCondition.ConnectionTimeout, "no handshake in time"));
            }
        });
        try
        {
            var ct = _cts.Token;
            using var reader = new XmppStreamReader(_stream, new XmlReaderLimits
            {
                MaxStanzaBytes = _ctx.Options.Limits.S2sStanzaSize,
                MaxDepth = _ctx.Options.Limits.MaxDepth,
                MaxAttributes = _ctx.Options.Limits.MaxAttributes,
                MaxNamespaceDeclarations = _ctx.Options.Limits.MaxNamespaces,
                ContentNamespace = Namespace,
            });
            var ev = await reader.ReadAsync(ct).ConfigureAwait(false);
            if (ev.Kind != XmppStreamEventKind.Header)
            {
                return;
            }

            var streamId = Open(ev.Header!);
            using var domainScope = ScopeContext.PushProperty("Jid", Domain);
            while (true)
            {
                ev = await reader.ReadAsync(ct).ConfigureAwait(false);
                if (ev.Kind is XmppStreamEventKind.End or XmppStreamEventKind.Eof)
                {
                    _log.Info("Component {Domain} closed its stream", Domain);
                    Close(null);
                    break;
                }

                await HandleAsync(ev.Element!, streamId, ct).ConfigureAwait(false);
            }
        }
        catch (XmppStreamException ex)
        {
            _log.Warn("Stream error {Condition} for component {Domain} from {Remote}: {Reason}", ErrorNames.ToElementName(ex.Condition), Domain, _remote, ex.Message);
            Close(ex.ToStreamError());
        }
        catch (OperationCanceledException)
        {
            _log.Debug("Component connection cancelled");
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException)
        {
            _log.Info("Component connection of {Domain} lost: {Reason}", Domain, ex.Message);
        }
        catch (Exception ex)
        {
            _log.Error(ex, "Unexpected error on the component connection from {Remote}", _remote);
            Close(new StreamError(StreamErrorCondition.InternalServerError));
        }
        finally
        {
            if (_authenticated)
            {
                _manager.Detach(this);
            }

            Close(null);
            await Teardown.ReleaseAsync(writer, _ctx.Options.Limits.CloseTimeout, _cts, _stream, _socket, _log).ConfigureAwait(false);
            var unsent = _out.Drain();
            foreach (var stanza in unsent)
            {
                await _ctx.Router.BounceAsync(stanza, new StanzaError(StanzaErrorCondition.ServiceUnavailable, $"{Domain} disconnected"), CancellationToken.None).ConfigureAwait(false);
            }

            _cts.Dispose();
            if (_authenticated)
            {
                _log.Info("Component {Domain} disconnected{Bounced}", Domain, unsent.Count == 0 ? string.Empty : $"; {unsent.Count} stanzas not written were bounced");
            }
        }
    }

    /// <summary>Answers the component's stream header (XEP-0114 §3, example 2) and returns the stream id.</summary>
    private string Open(StreamHeader header)
    {
        var id = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12));
        var to = header.To is not null && Jid.TryPrepareDomain(header.To, out var d) ? d : null;
        Domain = to ?? string.Empty;
        SendHeader(to ?? _ctx.Options.Hosts[0].Name, id);
        if (header.LocalName != "stream" || header.Namespace != Ns.Stream || header.DefaultNamespace != Namespace)
        {
            throw new XmppStreamException(StreamErrorCondition.InvalidNamespace, "expected a jabber:component:accept stream");
        }

        if (to is null || _manager.Find(to) is null)
        {
            Domain = string.Empty;
            throw new XmppStreamException(StreamErrorCondition.HostUnknown, $"no component '{header.To}' is configured");
        }

        return id;
    }

    private void SendHeader(string from, string id)
    {
        _headerSent = true;
        var sb = new StringBuilder(200);
        sb.Append("<?xml version='1.0'?><stream:stream xmlns='").Append(Namespace).Append("' xmlns:stream='").Append(Ns.Stream)
          .Append("' id='").Append(id).Append("' from='");
        ElementWriter.Escape(sb, from);
        sb.Append("'>");
        _out.EnqueueRaw(sb.ToString());
    }

    private async ValueTask HandleAsync(Element e, string streamId, CancellationToken ct)
    {
        if (e.Is("error", Ns.Stream))
        {
            _log.Warn("Component {Domain} sent stream error {Condition}", Domain, e.FirstElement()?.Name ?? "?");
            Close(null);
            return;
        }

        if (!_authenticated)
        {
            if (!e.Is("handshake", Ns.Client))
            {
                throw new XmppStreamException(StreamErrorCondition.NotAuthorized, "send <handshake/> first");
            }

            Handshake(e.Text.Trim(), streamId);
            return;
        }

        if (!Stanza.IsStanza(e) || e.Namespace != Ns.Client)
        {
            throw new XmppStreamException(StreamErrorCondition.UnsupportedStanzaType, $"unknown element <{e.Name} xmlns='{e.Namespace}'/>");
        }

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

    /// <summary>XEP-0114 §3: the handshake is the lower-case hex SHA-1 of the stream id followed by the secret.</summary>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Security", "CA5350", Justification = "XEP-0114 fixes SHA-1 for the handshake; the secret itself never travels.")]
    private void Handshake(string digest, string streamId)
    {
        var secret = _manager.Find(Domain)!.Secret;
        var expected = Convert.ToHexStringLower(SHA1.HashData(Encoding.UTF8.GetBytes(streamId + secret)));
        var given = Encoding.ASCII.GetBytes(digest.ToLowerInvariant());
        if (!CryptographicOperations.FixedTimeEquals(given, Encoding.ASCII.GetBytes(expected)))
        {
            _log.Warn("Component {Domain} from {Remote} failed the handshake (wrong secret)", Domain, _remote);
            throw new XmppStreamException(StreamErrorCondition.NotAuthorized, "handshake failed");
        }

        Volatile.Write(ref _authenticated, true);
        _out.EnqueueRaw("<handshake/>");
        _manager.Attach(this);
        _log.Info("Component {Domain} connected from {Remote}", Domain, _remote);
    }

    public void Close(StreamError? streamError)
    {
        if (Interlocked.Exchange(ref _closing, 1) != 0)
        {
            return;
        }

        if (streamError is not null)
        {
            _ctx.Metrics.StreamError("component", streamError.Condition);
        }

        string? header = null;
        if (!_headerSent)
        {
            _headerSent = true;
            header = "<?xml version='1.0'?><stream:stream xmlns='" + Namespace + "' xmlns:stream='" + Ns.Stream + "' from='" + ElementWriter.Escape(Domain.Length > 0 ? Domain : _ctx.Options.Hosts[0].Name) + "'>";
        }

        _out.Close(header, streamError);
        Cancel(_ctx.Options.Limits.CloseTimeout);
    }

    private void Cancel(TimeSpan? after = null)
    {
        try
        {
            if (after is { } delay)
            {
                _cts.CancelAfter(delay);
            }
            else
            {
                _cts.Cancel();
            }
        }
        catch (ObjectDisposedException)
        {
            // Already torn down.
        }
    }
}
