using System.Net;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Text;
using Xmpp.Core;
using Xmpp.Core.Addressing;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;
using Xmpp.Server.Hosting;

namespace Xmpp.Server.S2s;

/// <summary>
/// A stream another server opened to us (we are the receiving server, RFC 6120 / XEP-0220 terms):
/// STARTTLS, then the peer authenticates each domain it sends from, by SASL EXTERNAL with a certificate
/// valid for it (XEP-0178) or by Server Dialback (XEP-0220; with a valid certificate we answer at once,
/// XEP-0344). Stanzas are accepted only from authenticated domains to our own domains. We also answer
/// db:verify requests for keys we issued as the authoritative server.
/// </summary>
[Specification("XEP-0178", "1.2", Note = "SASL EXTERNAL between servers with certificates.")]
public sealed class IncomingS2s : S2sConnection
{
    private readonly IPEndPoint _remote;
    private readonly bool _directTls;
    private readonly HashSet<string> _authenticated = new(StringComparer.Ordinal);
    private string _localDomain;
    private string? _peerDomain;
    private string _streamId = string.Empty;
    private bool _saslDone;

    public IncomingS2s(ServerContext ctx, S2sManager manager, Socket socket, bool directTls, CancellationToken shutdown)
        : base(ctx, manager, "S2sIn", shutdown)
    {
        _remote = (IPEndPoint)socket.RemoteEndPoint!;
        _directTls = directTls;
        _localDomain = ctx.Options.Hosts[0].Name;
        Attach(socket);
    }

    protected override string LocalDomain => _localDomain;

    /// <summary>Whether the peer has authenticated at least one domain on this stream.</summary>
    public bool IsAuthenticated => _saslDone || _authenticated.Count > 0;

    public override void CheckIdle(long now)
    {
        if (IsClosing || Activity is null)
        {
            return;
        }

        var idle = (long)Ctx.Options.S2s.IdleTimeout.TotalMilliseconds;
        if (now - Activity.LastRead >= idle)
        {
            Log.Info("Closing the idle s2s stream from {Peer}", _peerDomain ?? _remote.ToString());
            Close(null);
        }
    }

    public override async Task RunAsync()
    {
        using var scope = NLog.ScopeContext.PushProperty("ConnectionId", ConnectionId);
        using var remoteScope = NLog.ScopeContext.PushProperty("Remote", _remote.ToString());
        Log.Info("s2s connection accepted from {Remote}{Mode}", _remote, _directTls ? " (direct TLS)" : string.Empty);
        Manager.Incoming[ConnectionId] = this;
        var writer = WriterAsync();
        using var authTimer = new CancellationTokenSource(Ctx.Options.Limits.AuthTimeout);
        using var authTimeout = authTimer.Token.Register(() =>
        {
            if (_authenticated.Count == 0 && !_saslDone)
            {
                Close(new StreamError(StreamErrorCondition.ConnectionTimeout, "authentication took too long"));
            }
        });
        try
        {
            var ct = Cts.Token;
            if (_directTls)
            {
                await StartTlsAsServerAsync(null, directTls: true, ct).ConfigureAwait(false);
            }

            var restart = true;
            while (restart)
            {
                restart = false;
                using var reader = NewReader();
                var ev = await reader.ReadAsync(ct).ConfigureAwait(false);
                if (ev.Kind != XmppStreamEventKind.Header)
                {
                    break;
                }

                OpenStream(ev.Header!);
                while (true)
                {
                    ev = await reader.ReadAsync(ct).ConfigureAwait(false);
                    if (ev.Kind is XmppStreamEventKind.End or XmppStreamEventKind.Eof)
                    {
                        Log.Info("s2s stream from {Peer} ended", _peerDomain ?? _remote.ToString());
                        Close(null);
                        break;
                    }

                    var next = await HandleAsync(ev.Element!, ct).ConfigureAwait(false);
                    if (next is null)
                    {
                        continue;
                    }

                    restart = next.Value;
                    break;
                }
            }
        }
        catch (XmppStreamException ex)
        {
            Log.Warn("s2s stream error {Condition} for {Peer}: {Reason}", ErrorNames.ToElementName(ex.Condition), _peerDomain ?? _remote.ToString(), ex.Message);
            Close(ex.ToStreamError());
        }
        catch (OperationCanceledException)
        {
            Log.Debug("s2s connection cancelled");
        }
        catch (AuthenticationException ex)
        {
            Log.Warn("s2s TLS handshake with {Remote} failed: {Reason}", _remote, ex.Message);
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException)
        {
            Log.Info("s2s connection from {Peer} lost: {Reason}", _peerDomain ?? _remote.ToString(), ex.Message);
        }
        catch (Exception ex)
        {
            Log.Error(ex, "Unexpected error on the s2s connection from {Remote}", _remote);
            Close(new StreamError(StreamErrorCondition.InternalServerError));
        }
        finally
        {
            Manager.Incoming.TryRemove(ConnectionId, out _);
            await DisposeTransportAsync(writer).ConfigureAwait(false);
            Cts.Dispose();
        }
    }

    private void OpenStream(StreamHeader header)
    {
        _streamId = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(12));
        var to = header.To is not null && Jid.TryPrepareDomain(header.To, out var d) ? d : null;
        if (to is not null && Ctx.Router.Serves(to))
        {
            _localDomain = to;
        }

        if (header.From is not null && Jid.TryPrepareDomain(header.From, out var from))
        {
            _peerDomain = from;
        }

        SendHeader(_localDomain, _peerDomain, _streamId);
        if (header.LocalName != "stream" || header.Namespace != Ns.Stream || header.DefaultNamespace != Ns.Server)
        {
            throw new XmppStreamException(StreamErrorCondition.InvalidNamespace, "expected a jabber:server stream");
        }

        if (to is null || !Ctx.Router.Serves(to))
        {
            throw new XmppStreamException(StreamErrorCondition.HostUnknown, $"this server does not serve '{header.To}'");
        }

        if (header.Version is null || !header.Version.StartsWith("1.", StringComparison.Ordinal))
        {
            throw new XmppStreamException(StreamErrorCondition.UnsupportedVersion, "version 1.0 is required");
        }

        var options = Ctx.Options.S2s;
        var features = new StringBuilder("<stream:features>");
        if (!Tls)
        {
            features.Append("<starttls xmlns='").Append(Ns.Tls).Append('\'')
                .Append(options.RequireEncryption ? "><required/></starttls>" : "/>");
        }

        if (Tls || !options.RequireEncryption)
        {
            if (Tls && !_saslDone && _peerDomain is not null && Manager.Certificates.Check(PeerCertificate, _peerDomain, DateTimeOffset.UtcNow) is null)
            {
                features.Append("<mechanisms xmlns='").Append(Ns.Sasl).Append("'><mechanism>EXTERNAL</mechanism></mechanisms>");
            }

            if (options.AllowDialback || Tls)
            {
                features.Append("<dialback xmlns='").Append(Ns.DialbackFeature).Append("'><errors/></dialback>");
            }
        }

        SendRaw(features.Append("</stream:features>").ToString());
    }

    /// <summary>Null: go on reading; true: restart the stream; false: stop.</summary>
    private async ValueTask<bool?> HandleAsync(Element e, CancellationToken ct)
    {
        if (e.Is("error", Ns.Stream))
        {
            Log.Warn("{Peer} sent stream error {Condition}", _peerDomain ?? _remote.ToString(), e.FirstElement()?.Name ?? "?");
            Close(null);
            return false;
        }

        if (e.Is("starttls", Ns.Tls))
        {
            if (Tls)
            {
                throw new XmppStreamException(StreamErrorCondition.PolicyViolation, "TLS is already established");
            }

            SendRaw("<proceed xmlns='" + Ns.Tls + "'/>");
            await FlushAsync().ConfigureAwait(false);
            await StartTlsAsServerAsync(_localDomain, directTls: false, ct).ConfigureAwait(false);
            return true;
        }

        if (!Tls && Ctx.Options.S2s.RequireEncryption)
        {
            throw new XmppStreamException(StreamErrorCondition.PolicyViolation, "STARTTLS is required");
        }

        if (e.Is("auth", Ns.Sasl))
        {
            return SaslExternal(e);
        }

        if (e.Namespace == Ns.Dialback)
        {
            await DialbackAsync(e, ct).ConfigureAwait(false);
            return null;
        }

        if (!Stanza.IsStanza(e) || e.Namespace != Ns.Client)
        {
            throw new XmppStreamException(StreamErrorCondition.UnsupportedStanzaType, $"unknown element <{e.Name} xmlns='{e.Namespace}'/>");
        }

        await StanzaAsync(e, ct).ConfigureAwait(false);
        return null;
    }

    /// <summary>XEP-0178: the authorization identity (or the stream's 'from') must be what the certificate proves.</summary>
    private bool? SaslExternal(Element auth)
    {
        if (_saslDone || auth.GetAttribute("mechanism") != "EXTERNAL")
        {
            SendRaw("<failure xmlns='" + Ns.Sasl + "'><invalid-mechanism/></failure>");
            return null;
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
                SendRaw("<failure xmlns='" + Ns.Sasl + "'><incorrect-encoding/></failure>");
                return null;
            }
        }

        var domain = authzid ?? _peerDomain;
        var problem = domain is null ? "no domain" : Manager.Certificates.Check(PeerCertificate, domain, DateTimeOffset.UtcNow);
        if (problem is not null)
        {
            Log.Warn("SASL EXTERNAL refused for {Domain} from {Remote}: {Reason}", domain ?? "?", _remote, problem);
            SendRaw("<failure xmlns='" + Ns.Sasl + "'><not-authorized/></failure>");
            return null;
        }

        _saslDone = true;
        _peerDomain = domain!;
        _authenticated.Add(domain!);
        Log.Info("s2s peer {Domain} authenticated by SASL EXTERNAL (certificate)", domain);
        SendRaw("<success xmlns='" + Ns.Sasl + "'/>");
        return true;
    }

    private async ValueTask DialbackAsync(Element e, CancellationToken ct)
    {
        var from = e.GetAttribute("from");
        var to = e.GetAttribute("to");
        if (from is null || to is null || !Jid.TryPrepareDomain(from, out var origin) || !Jid.TryPrepareDomain(to, out var receiving))
        {
            throw new XmppStreamException(StreamErrorCondition.ImproperAddressing, "dialback without valid 'from' and 'to'");
        }

        if (e.Name == "verify")
        {
            // We are the authoritative server for 'to': is this our key for the stream 'id'?
            var id = e.GetAttribute("id") ?? string.Empty;
            var valid = Ctx.Router.Serves(receiving) && Manager.Dialback.Verify(origin, receiving, id, e.Text);
            Log.Info("Dialback verify from {Peer} for stream {Id}: {Result}", origin, id, valid ? "valid" : "invalid");
            SendElement(new Element("verify", Ns.Dialback)
                .SetAttribute("from", receiving).SetAttribute("to", origin).SetAttribute("id", id)
                .SetAttribute("type", valid ? "valid" : "invalid"));
            return;
        }

        if (e.Name != "result" || e.GetAttribute("type") is not null)
        {
            return;
        }

        // XEP-0220 §2.1: the peer claims 'from' and wants to send to our 'to'.
        if (!Ctx.Router.Serves(receiving))
        {
            SendElement(DialbackError(receiving, origin, "item-not-found"));
            return;
        }

        bool ok;
        var certificateProblem = Manager.Certificates.Check(PeerCertificate, origin, DateTimeOffset.UtcNow);
        if (certificateProblem is null)
        {
            // XEP-0344: the certificate already proves the domain; no need to dial back.
            ok = true;
        }
        else if (!Ctx.Options.S2s.AllowDialback)
        {
            Log.Warn("Refusing dialback from {Domain}: certificates are required ({Reason})", origin, certificateProblem);
            SendElement(DialbackError(receiving, origin, "not-authorized"));
            return;
        }
        else
        {
            ok = await Manager.VerifyDialbackAsync(receiving, origin, _streamId, e.Text, ct).ConfigureAwait(false);
        }

        SendElement(new Element("result", Ns.Dialback)
            .SetAttribute("from", receiving).SetAttribute("to", origin).SetAttribute("type", ok ? "valid" : "invalid"));
        if (ok)
        {
            _peerDomain ??= origin;
            _authenticated.Add(origin);
            Log.Info("s2s peer {Domain} authenticated by {Method}", origin, certificateProblem is null ? "dialback with a valid certificate (XEP-0344)" : "dialback");
        }
        else
        {
            Log.Warn("Dialback for {Domain} failed", origin);
        }
    }

    private static Element DialbackError(string from, string to, string condition)
    {
        var result = new Element("result", Ns.Dialback).SetAttribute("from", from).SetAttribute("to", to).SetAttribute("type", "error");
        result.AddChild("error", Ns.Client).SetAttribute("type", "cancel").Add(new Element(condition, Ns.Stanzas));
        return result;
    }

    private async ValueTask StanzaAsync(Element e, CancellationToken ct)
    {
        if (_authenticated.Count == 0)
        {
            throw new XmppStreamException(StreamErrorCondition.NotAuthorized, "authenticate first");
        }

        // RFC 6120 §8.1.1.2 / §8.1.2.2: both addresses are required on server streams, the sender's domain
        // must be one this stream authenticated, the recipient's one of ours.
        if (!Jid.TryParse(e.GetAttribute("from"), out var from) || e.GetAttribute("to") is null)
        {
            throw new XmppStreamException(StreamErrorCondition.ImproperAddressing, "stanzas between servers need 'from' and 'to'");
        }

        if (!_authenticated.Contains(from.Domain))
        {
            Log.Warn("Rejecting a stanza from {From}: the stream from {Peer} is not authenticated for {Domain}", from, _peerDomain, from.Domain);
            throw new XmppStreamException(StreamErrorCondition.InvalidFrom, $"not authenticated for {from.Domain}");
        }

        if (Jid.TryParse(e.GetAttribute("to"), out var to) && !Ctx.Router.Serves(to.Domain))
        {
            throw new XmppStreamException(StreamErrorCondition.HostUnknown, $"this server does not serve {to.Domain}");
        }

        e.SetAttribute("from", from.ToString());
        Ctx.Metrics.StanzaIn(e.Name);
        await Ctx.Router.RouteAsync(e, from, null, ct).ConfigureAwait(false);
    }
}
