using Xmpp.Core;
using Xmpp.Core.Addressing;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;
using Xmpp.Server.Routing;
using Xmpp.Server.Sessions;

namespace Xmpp.Server.Streams;

// RFC 6120 §7 (resource binding), RFC 3921 §3 (the session iq), §8 (stanzas from the client), and the
// requests some modules answer before authentication (XEP-0077).
public sealed partial class C2sStateMachine
{
    private Jid? _reserved;

    private async ValueTask<StreamStep> BindAsync(Element iq, CancellationToken ct)
    {
        var requested = iq.FirstElement()!.ChildText("resource", Ns.Bind);
        string resource;
        if (string.IsNullOrEmpty(requested))
        {
            resource = "xs-" + Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(6)).ToLowerInvariant();
        }
        else if (!Jid.TryPrepareResource(requested, out var prepared))
        {
            // RFC 6120 §7.7.2.1: a resource that cannot be processed.
            TryWrite(Stanza.ErrorReply(iq, new StanzaError(StanzaErrorCondition.BadRequest, "invalid resource")));
            return StreamStep.Continue;
        }
        else
        {
            resource = prepared;
        }

        if (Reserve(resource) is { } error)
        {
            TryWrite(Stanza.ErrorReply(iq, error));
            return StreamStep.Continue;
        }

        // The stream is established before the client can see the result: whoever reads the state once the
        // result has gone out (a test, the console) must find it bound. Nothing can reach the new session before
        // PublishAsync registers it, so the result is still the first thing it sends.
        CreateSession();
        var result = new Element("bind", Ns.Bind);
        result.AddChild("jid", Ns.Bind).AddText(_reserved!.ToString());
        TryWrite(Stanza.IqResult(iq, result));
        await PublishAsync(iq, string.Empty, ct).ConfigureAwait(false);
        return StreamStep.Continue;
    }

    public StanzaError? Reserve(string resource)
    {
        var jid = Jid.Parse(User + "@" + Host).WithResource(resource);
        var others = _ctx.Sessions.Resources(jid.Bare);
        if (others.Count >= _ctx.Options.Limits.SessionsPerAccount && !others.Any(o => o.Jid == jid))
        {
            // RFC 6120 §7.6.2.1: the account has reached its limit of simultaneous resources.
            Log.Warn("Refusing to bind {Jid}: {Count} sessions of the account are bound already", jid, others.Count);
            return new StanzaError(StanzaErrorCondition.ResourceConstraint, $"at most {_ctx.Options.Limits.SessionsPerAccount} sessions per account");
        }

        _reserved = jid;
        return null;
    }

    public ClientSession CreateSession()
    {
        var session = new ClientSession(_ctx, _reserved!, this, Log);
        BeSession(session);
        return session;
    }

    public async ValueTask PublishAsync(Element request, string how, CancellationToken cancellationToken)
    {
        var session = Session!;
        if (_ctx.Cluster is { } cluster && !cluster.IsHome(session.Jid.Bare) &&
            await cluster.AttachAsync(session, cancellationToken).ConfigureAwait(false) is { } home)
        {
            // Cluster mode: the account's other sessions are on another node, its home, where this one is bound and
            // announced too (conflicts and the session limit decided there); this node keeps the stream.
            if (!session.SetHome(home))
            {
                // The connection ended while the home bound it: it ends there too (its proxy would linger).
                await home.DetachAsync().ConfigureAwait(false);
                return;
            }

            Log.Info("Bound {Jid}{How} on its home node {Node}", session.Jid, how, home.Node);
            return;
        }

        var replaced = _ctx.Sessions.Bind(session);
        if (replaced is not null && !ReferenceEquals(replaced, session))
        {
            // RFC 6120 §7.7.2.2: our policy is that the new session replaces the old one.
            Log.Info("Resource {Jid} bound again: replacing the older session", session.Jid);
            replaced.Close(new StreamError(StreamErrorCondition.Conflict, "replaced by a new session"));
        }

        Log.Info("Bound {Jid}{How}", session.Jid, how);
        await _ctx.Hooks.FireAsync(HookNames.ResourceBound, new StanzaContext(request, session.Jid, null, session, _ctx.Router), cancellationToken).ConfigureAwait(false);
    }

    public void Adopt(ClientSession session)
    {
        BeSession(session);
        if (session.Attach(this) is { } previous && !ReferenceEquals(previous, this))
        {
            // The old stream may not know yet that it is dead: it is closed, without ending the session.
            previous.Close(null);
        }
    }

    public void ResetAuthentication()
    {
        User = null;
        _reserved = null;
        State = C2sState.AwaitingAuthentication;
    }

    private void BeSession(ClientSession session)
    {
        Session = session;
        _peer = session.Jid.ToString();
        State = C2sState.Established;
    }

    private StreamStep AnswerSession(Element iq)
    {
        if (Session?.Tracker?.BeginHandling() == false)
        {
            return StreamStep.Continue;
        }

        if (Session is { } session)
        {
            session.TrySend(Stanza.IqResult(iq).SetAttribute("from", Host));
        }
        else
        {
            TryWrite(Stanza.IqResult(iq).SetAttribute("from", Host));
        }

        Session?.Tracker?.Handled();
        return StreamStep.Continue;
    }

    private async ValueTask<StreamStep> PreAuthQueryAsync(Element iq, CancellationToken ct)
    {
        var payload = iq.FirstElement()!;
        Extensions.TryGetPreAuthQuery(payload.Namespace, out var handler);
        var reply = await handler!(new PreAuthRequest(iq, payload, Host!, Remote.Address, this), ct).ConfigureAwait(false);
        TryWrite(reply);
        return StreamStep.Continue;
    }

    private async ValueTask<StreamStep> StanzaAsync(Element e, CancellationToken ct)
    {
        var session = Session!;
        if (session.Tracker?.BeginHandling() == false)
        {
            // The session is leaving for another node: uncounted, so the client sends it again after resuming there.
            Log.Debug("A {Stanza} arrived while the session was being parked: left for the client to send again", e.Name);
            return StreamStep.Continue;
        }

        // Cluster mode: a message whose recipient is homed on another node is counted once it got there, without
        // holding up the client's next stanzas (Cluster.ForwardWindow); anything else waited for those (OnElementAsync).
        if (_ctx.Cluster is { } cluster && session.Home is null && e.Name == "message")
        {
            var window = _window ??= new Cluster.ForwardWindow();
            if (window.Full)
            {
                await window.Tail.WaitAsync(ct).ConfigureAwait(false);
            }

            Task? pending;
            using (var scope = cluster.Pipeline(window.Tail))
            {
                await HandleStanzaAsync(session, e, ct).ConfigureAwait(false);
                pending = scope.Close();
            }

            window.Completed(pending, _countHandled ??= () => Session?.Tracker?.Handled(this));
            return StreamStep.Continue;
        }

        await HandleStanzaAsync(session, e, ct).ConfigureAwait(false);

        // XEP-0198 §4 (through the tracker): 'h' counts the stanzas handled, whatever came of them.
        session.Tracker?.Handled();
        return StreamStep.Continue;
    }

    /// <summary>Cluster mode: this stream's messages whose forwarding to another node is under way.</summary>
    private Cluster.ForwardWindow? _window;

    /// <summary>Counts a windowed message as handled (XEP-0198), unless another stream resumed the session meanwhile: one delegate per stream.</summary>
    private Action? _countHandled;

    private async ValueTask HandleStanzaAsync(ClientSession session, Element e, CancellationToken ct)
    {
        // RFC 6120 §8.1.2.1: 'from' may only be our own full or bare JID, and the server stamps it.
        var jid = session.Jid;
        var from = e.GetAttribute("from");
        if (from is not null && (!Jid.TryParse(from, out var claimed) || (claimed != jid && claimed != jid.Bare)))
        {
            throw new XmppStreamException(StreamErrorCondition.InvalidFrom, $"'{from}' is not this stream's address");
        }

        e.SetAttribute("from", _peer);
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
                session.TrySend(Stanza.ErrorReply(e, problem));
            }

            return;
        }

        _ctx.Metrics.StanzaIn(e.Name);
        if (session.Home is { } home)
        {
            await home.RouteAsync(e, ct).ConfigureAwait(false);
            return;
        }

        await _ctx.Router.RouteAsync(e, jid, session, ct).ConfigureAwait(false);
    }
}
