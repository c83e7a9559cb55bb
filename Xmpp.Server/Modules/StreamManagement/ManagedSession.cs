using Xmpp.Core;
using Xmpp.Core.Addressing;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;
using Xmpp.Server.Routing;
using Xmpp.Server.Sessions;
using Xmpp.Server.Streams;

namespace Xmpp.Server.Modules.StreamManagement;

/// <summary>
/// XEP-0198 on one session, as its delivery tracker: the counters both ways (§4), the stanzas the client has
/// not acknowledged, and where the session is in its life: on a stream, waiting to be resumed after its stream
/// was lost (§5), or over. Everything that goes to the client goes through <see cref="Send"/>, under one lock,
/// so the acknowledgement counts and the order on the wire agree.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Reliability", "CA1001", Justification = "The wait's CancellationTokenSource has no timer and no wait handle: nothing to release.")]
internal sealed class ManagedSession : IDeliveryTracker
{
    private readonly StreamManagementModule _module;
    private readonly object _gate = new();
    private readonly Queue<Element> _unacked = new();
    private long _inbound;
    private long _sent;
    private long _acked;
    private bool _ackRequested;
    private bool _waiting;
    private bool _ended;
    private bool _parked;
    private bool _parking;
    private int _inFlight;
    private TaskCompletionSource? _quiet;
    private long _waitingSince;
    private CancellationTokenSource? _wait;
    private Task? _ending;

    public ManagedSession(StreamManagementModule module, ClientSession session, string? resumeId, TimeSpan resumeTimeout)
    {
        _module = module;
        Session = session;
        ResumeId = resumeId;
        ResumeTimeout = resumeTimeout;
    }

    /// <summary>
    /// Cluster mode: a session parked on another node (<see cref="Park"/>) arrives here, waiting for its client to
    /// resume it within what was left of its resumption time.
    /// </summary>
    public ManagedSession(StreamManagementModule module, ClientSession session, Element parked)
        : this(module, session, parked.GetAttribute("id"), TimeSpan.FromSeconds(Number(parked, "max")))
    {
        _inbound = Number(parked, "in");
        _sent = Number(parked, "sent");
        _acked = Number(parked, "acked");
        foreach (var stanza in parked.Child("unacked", ClientSession.ParkedNamespace)?.Elements() ?? [])
        {
            _unacked.Enqueue(stanza.Clone().Freeze());
        }

        _waiting = true;
        _waitingSince = System.Diagnostics.Stopwatch.GetTimestamp() - (long)((ResumeTimeout - TimeSpan.FromSeconds(Number(parked, "left"))).TotalSeconds * System.Diagnostics.Stopwatch.Frequency);
        _wait = new CancellationTokenSource();
        _ = WaitAsync(TimeSpan.FromSeconds(Number(parked, "left")), _wait.Token);
    }

    private static long Number(Element e, string name) =>
        long.TryParse(e.GetAttribute(name), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n) ? n : 0;

    public ClientSession Session { get; }

    /// <summary>Whether the session waits, without a stream, for its client to resume it.</summary>
    public bool IsWaiting
    {
        get
        {
            lock (_gate)
            {
                return _waiting && !_ended;
            }
        }
    }

    /// <summary>The resumption id, when the client asked for resumption.</summary>
    public string? ResumeId { get; }

    public TimeSpan ResumeTimeout { get; }

    /// <summary>The 'h' we report: stanzas from the client handled, modulo 2^32 (§4).</summary>
    public long HandledCount
    {
        get
        {
            lock (_gate)
            {
                return _inbound % 4294967296L;
            }
        }
    }

    public bool Send(Element stanza)
    {
        lock (_gate)
        {
            if (_parked)
            {
                // Routed here just before the session left for another node: it follows the session there.
                _module.FollowParked(Session.Jid, stanza);
                return true;
            }

            if (_ended)
            {
                return false;
            }

            if (_unacked.Count < _module.MaxUnacked)
            {
                if (_waiting)
                {
                    // Kept for the stream that resumes the session; stamped with when the server had it (XEP-0203).
                    _unacked.Enqueue(Delayed(stanza));
                    _sent++;
                    return true;
                }

                if (!Session.Write(stanza))
                {
                    return false;
                }

                _unacked.Enqueue(stanza);
                _sent++;
                RequestAck();
                return true;
            }
        }

        // Not reading, or not acknowledging: the session ends (its unacknowledged messages are rerouted).
        Session.Log.Warn("{Jid} holds {Count} unacknowledged stanzas: ending the session", Session.Jid, _module.MaxUnacked);
        Session.Close(new StreamError(StreamErrorCondition.ResourceConstraint, "too many unacknowledged stanzas"));
        return false;
    }

    /// <summary>§4: an &lt;r/&gt; follows what was sent, unless one is out and unanswered. Under the lock.</summary>
    private void RequestAck()
    {
        if (!_ackRequested)
        {
            _ackRequested = true;
            Session.Stream?.WriteNonza(new Element("r", StreamManagementModule.Namespace));
        }
    }

    public bool BeginHandling()
    {
        lock (_gate)
        {
            if (_parking || _parked)
            {
                return false;
            }

            _inFlight++;
            return true;
        }
    }

    public void Handled(ISessionCarrier? by = null)
    {
        lock (_gate)
        {
            // A stanza of a stream that another stream has since resumed the session from: that stream's <resumed/>
            // gave the client a count without it, and the client sends it again there (§5). Counting it here too
            // would give the client an 'h' above what it sent.
            if (by is null || Session.Stream is null || ReferenceEquals(Session.Stream, by))
            {
                _inbound++;
            }

            if (--_inFlight == 0)
            {
                _quiet?.TrySetResult();
            }
        }
    }

    /// <summary>
    /// Cluster mode, before <see cref="Park"/>: the stream takes no further stanza from the client, and this completes
    /// once the one being handled (if any) is, so that the count the snapshot carries is exact.
    /// </summary>
    public Task QuiesceAsync()
    {
        lock (_gate)
        {
            _parking = true;
            if (_inFlight == 0)
            {
                return Task.CompletedTask;
            }

            _quiet ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            return _quiet.Task;
        }
    }

    /// <summary>The client acknowledged <paramref name="h"/> stanzas; false when it claims more than were sent (§4).</summary>
    public bool Acknowledge(long h)
    {
        lock (_gate)
        {
            _ackRequested = false;
            return AcknowledgeLocked(h);
        }
    }

    private bool AcknowledgeLocked(long h)
    {
        if (h > _sent)
        {
            return false;
        }

        // 'h' wraps at 2^32 (§4); a smaller value than before is a wrapped one or a stale one: ignored.
        while (_acked < h && _unacked.Count > 0)
        {
            _unacked.Dequeue();
            _acked++;
        }

        _acked = Math.Max(_acked, h);
        return true;
    }

    public SessionFate StreamGone(ISessionCarrier lost, bool resumable)
    {
        lock (_gate)
        {
            if (!ReferenceEquals(Session.Stream, lost))
            {
                return _ended && !_parked ? SessionFate.End : SessionFate.TakenOver;
            }

            // §5: a resumable session whose connection was lost (not closed by the client, not ended by us with an
            // error) waits to be resumed instead of ending. Otherwise it is over from now: no resumption may
            // take it while it ends.
            if (ResumeId is null || !resumable || _ended)
            {
                _ended = true;
                return SessionFate.End;
            }

            _waiting = true;
            _waitingSince = System.Diagnostics.Stopwatch.GetTimestamp();
            _wait = new CancellationTokenSource();
            Session.Detach(lost);
        }

        Session.Log.Info("Connection lost for {Jid}; the session waits {Seconds} s to be resumed", Session.Jid, (int)ResumeTimeout.TotalSeconds);
        _ = WaitAsync(ResumeTimeout, _wait.Token);
        return SessionFate.Kept;
    }

    /// <summary>
    /// Cluster mode: the session leaves this node without ending, for its client to resume it on another (a drain,
    /// or a login elsewhere while it waits). From now on it ends nothing here and takes no stanza: what is still
    /// routed to it follows it. Returns its snapshot (counters, unacknowledged stanzas, the session's state and
    /// what is left of its resumption time), or null when it cannot be resumed or is over.
    /// </summary>
    public Element? Park()
    {
        lock (_gate)
        {
            if (_ended || ResumeId is null)
            {
                return null;
            }

            var left = _waiting ? ResumeTimeout - System.Diagnostics.Stopwatch.GetElapsedTime(_waitingSince) : ResumeTimeout;
            if (left <= TimeSpan.Zero)
            {
                return null;
            }

            _ended = true;
            _parked = true;
            _waiting = false;
            Cancel();
            var unacked = new Element("unacked", ClientSession.ParkedNamespace);
            foreach (var stanza in _unacked)
            {
                unacked.Add(Delayed(stanza).Clone());
            }

            _unacked.Clear();
            return new Element("parked", ClientSession.ParkedNamespace)
                .SetAttribute("jid", Session.Jid.ToString())
                .SetAttribute("id", ResumeId)
                .SetAttribute("in", _inbound.ToString(System.Globalization.CultureInfo.InvariantCulture))
                .SetAttribute("sent", _sent.ToString(System.Globalization.CultureInfo.InvariantCulture))
                .SetAttribute("acked", _acked.ToString(System.Globalization.CultureInfo.InvariantCulture))
                .SetAttribute("max", ((long)ResumeTimeout.TotalSeconds).ToString(System.Globalization.CultureInfo.InvariantCulture))
                .SetAttribute("left", Math.Max(1, (long)left.TotalSeconds).ToString(System.Globalization.CultureInfo.InvariantCulture))
                .Add(Session.Snapshot())
                .Add(unacked);
        }
    }

    private async Task WaitAsync(TimeSpan timeout, CancellationToken ct)
    {
        try
        {
            await Task.Delay(timeout, ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // Resumed, or ended for another reason.
            return;
        }

        await EndKeptAsync("not resumed in time").ConfigureAwait(false);
    }

    public Task EndKeptAsync(string reason)
    {
        TaskCompletionSource ending;
        lock (_gate)
        {
            if (!_waiting || _ended)
            {
                return _ending ?? Task.CompletedTask;
            }

            _waiting = false;
            _ended = true;
            ending = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _ending = ending.Task;
        }

        Cancel();
        Session.Log.Info("Session of {Jid} ends: {Reason}", Session.Jid, reason);
        _module.Resumable.Ending(ending.Task);
        return EndAndSignalAsync(ending);
    }

    private async Task EndAndSignalAsync(TaskCompletionSource ending)
    {
        try
        {
            await Session.EndAsync().ConfigureAwait(false);
        }
        finally
        {
            ending.SetResult();
        }
    }

    private void Cancel()
    {
        try
        {
            _wait?.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // The wait is over already.
        }
    }

    /// <summary>
    /// §5: <paramref name="stream"/> takes the session over, from its lost stream or from a live one that does not
    /// know yet that it is dead. The answer (&lt;resumed/&gt;) goes to <paramref name="reply"/>, alone or inside a
    /// SASL2 success, before the unacknowledged stanzas are sent again. False when the count is implausible or
    /// the session is over.
    /// </summary>
    public bool Resume(IC2sContext stream, long h, string previd, Action<Element> reply)
    {
        lock (_gate)
        {
            if (_ended || !AcknowledgeLocked(h))
            {
                return false;
            }

            _waiting = false;
            _ackRequested = false;
            Cancel();
            stream.Adopt(Session);
            reply(new Element("resumed", StreamManagementModule.Namespace).SetAttribute("previd", previd).SetAttribute("h", (_inbound % 4294967296L).ToString(System.Globalization.CultureInfo.InvariantCulture)));
            foreach (var stanza in _unacked)
            {
                Session.Write(stanza);
            }

            if (_unacked.Count > 0)
            {
                RequestAck();
            }

            stream.Log.Info("Resumed the session of {Jid}: {Count} unacknowledged stanzas sent again", Session.Jid, _unacked.Count);
            return true;
        }
    }

    /// <summary>
    /// §4 "no data loss": what the client never acknowledged does not vanish with the session. Messages go to the
    /// account's other available resources, else to offline storage, else back to the sender; requests are
    /// answered with an error; presence, copies (carbons, archive results, notifications) and errors are
    /// dropped, since they exist elsewhere or expire anyway.
    /// </summary>
    public async Task OnEndedAsync()
    {
        List<Element> pending;
        lock (_gate)
        {
            _ended = true;
            pending = [.. _unacked];
            _unacked.Clear();
        }

        if (ResumeId is not null)
        {
            _module.Resumable.Remove(ResumeId, this);
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
                await _module.Context.Router.BounceAsync(stanza, new StanzaError(StanzaErrorCondition.RecipientUnavailable, "the session ended"), CancellationToken.None).ConfigureAwait(false);
            }
            else if (stanza.Name == "message" && type is not ("error" or "groupchat" or "headline") && !IsCopy(stanza))
            {
                await RerouteMessageAsync(stanza).ConfigureAwait(false);
                rerouted++;
            }
        }

        Session.Log.Info("{Count} unacknowledged stanzas of {Jid} handled at session end ({Messages} messages rerouted)", pending.Count, Session.Jid, rerouted);
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
        if (Session.Home is { } home)
        {
            // Cluster mode: the account is homed on another node, with its other sessions and its offline store.
            await home.RedeliverAsync(message).ConfigureAwait(false);
            return;
        }

        await RedeliverAsync(_module.Context, Session.Jid.Bare, message).ConfigureAwait(false);
    }

    /// <summary>
    /// A message a session of <paramref name="account"/> never acknowledged, the session over: to the account's available
    /// resources of non-negative priority (marked as late, XEP-0203), else offline storage, else bounced.
    /// </summary>
    internal static async Task RedeliverAsync(IModuleContext context, Jid account, Element message)
    {
        var late = Delayed(message, account.Domain);
        var delivered = false;
        foreach (var r in context.Sessions.Resources(account))
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

        var from = Jid.TryParse(message.GetAttribute("from"), out var f) ? f : Jid.Parse(account.Domain);
        var ctx = new StanzaContext(message, from, account, null, context.Router);
        if (!await context.FireAsync(HookNames.MessageOffline, ctx, CancellationToken.None).ConfigureAwait(false))
        {
            await context.Router.BounceAsync(message, new StanzaError(StanzaErrorCondition.RecipientUnavailable, "the recipient's session ended before it received this"), CancellationToken.None).ConfigureAwait(false);
        }
    }

    /// <summary>XEP-0203: a message that reaches its client late says when the server got it.</summary>
    private Element Delayed(Element stanza) => Delayed(stanza, Session.Jid.Domain);

    private static Element Delayed(Element stanza, string domain)
    {
        if (stanza.Name != "message" || stanza.Child("delay", Forwarded.DelayNamespace) is not null)
        {
            return stanza;
        }

        return stanza.Clone().Add(Forwarded.Delay(DateTimeOffset.UtcNow, domain));
    }
}
