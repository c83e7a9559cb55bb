using NLog;
using Xmpp.Core;
using Xmpp.Core.Addressing;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;
using Xmpp.Server.Routing;

namespace Xmpp.Server.Sessions;

/// <summary>What a bound session needs of the stream it is on.</summary>
public interface ISessionCarrier
{
    long ConnectionId { get; }

    /// <summary>Queues a stanza within the stream's output limits; a stream whose client does not read is closed.</summary>
    bool TryWrite(Element stanza);

    /// <summary>Queues an element that is not a stanza.</summary>
    void WriteNonza(Element element);

    Task FlushAsync();

    void Close(StreamError? streamError);
}

/// <summary>What becomes of a session when its stream is gone.</summary>
public enum SessionFate
{
    /// <summary>The session ends.</summary>
    End,

    /// <summary>The session waits, without a stream, for a new one to take it over.</summary>
    Kept,

    /// <summary>A new stream has the session already: nothing ends.</summary>
    TakenOver,
}

/// <summary>
/// A module's place between a session and its stream, after the send filter (XEP-0198 is the one): it sees every
/// stanza written to the client, in order, and every stanza handled from it, and may keep the session when
/// its stream is lost.
/// </summary>
public interface IDeliveryTracker
{
    /// <summary>Writes the stanza (through <see cref="ClientSession.Write"/>), or keeps it while the session has no stream.</summary>
    bool Send(Element stanza);

    /// <summary>
    /// A stanza from the client is about to be handled; false when the session is leaving this node (parked for
    /// another, XEP-0198): the stanza is then dropped uncounted, and its client sends it again after resuming.
    /// </summary>
    bool BeginHandling();

    /// <summary>
    /// A stanza from the client was handled. <paramref name="by"/>, the stream it came on, when that may have lost the
    /// session to a stream that resumed it meanwhile (cluster mode: a message handled once its forward to another node
    /// completed): it is then not counted.
    /// </summary>
    void Handled(ISessionCarrier? by = null);

    /// <summary>
    /// The session's stream <paramref name="lost"/> is gone: whether the session ends, waits for a new stream (the
    /// tracker detaches it), or was taken over by a new stream already. <paramref name="resumable"/> is false when
    /// the client closed the stream, we ended it with an error, or the server is stopping.
    /// </summary>
    SessionFate StreamGone(ISessionCarrier lost, bool resumable);

    /// <summary>A kept session is to end now (a new session of the same address, an administrator, shutdown).</summary>
    Task EndKeptAsync(string reason);

    /// <summary>The session ended: what the client never acknowledged is delivered elsewhere, stored or bounced.</summary>
    Task OnEndedAsync();
}

/// <summary>
/// A bound client session (RFC 6120 §7): what the rest of the server sees of a client, apart from the stream
/// that carries it. It usually lives as long as its stream; a tracker can keep it when the stream is lost
/// (XEP-0198) until a new stream adopts it or it ends.
/// </summary>
public sealed class ClientSession : IClientSession
{
    private readonly Hosting.ServerContext _ctx;
    private readonly Logger _log;
    private ISessionCarrier? _stream;
    private long _connectionId;
    private int _ended;

    public ClientSession(Hosting.ServerContext ctx, Jid jid, ISessionCarrier stream, Logger log)
    {
        _ctx = ctx;
        _log = log;
        Jid = jid;
        _stream = stream;
        _connectionId = stream.ConnectionId;
    }

    /// <summary>
    /// Cluster mode: a session that left another node without ending (parked during a drain, XEP-0198) arrives here
    /// with its state, waiting without a stream for its client to resume it.
    /// </summary>
    public ClientSession(Hosting.ServerContext ctx, Jid jid, Element state, Logger log)
    {
        _ctx = ctx;
        _log = log;
        Jid = jid;
        IsAvailable = state.GetAttribute("available") == "true";
        Priority = int.TryParse(state.GetAttribute("priority"), System.Globalization.NumberStyles.AllowLeadingSign, System.Globalization.CultureInfo.InvariantCulture, out var priority) ? priority : 0;
        RosterRequested = state.GetAttribute("roster") == "true";
        LastPresence = state.Child("presence", Ns.Client)?.Clone().Freeze();
        foreach (var child in state.Elements())
        {
            if (child.Name == "directed" && Jid.TryParse(child.GetAttribute("jid"), out var target))
            {
                DirectedPresence.Add(target);
            }
            else if (child.Name == "item" && child.GetAttribute("key") is { } key)
            {
                Items.Set(key, key);
            }
        }
    }

    public long ConnectionId => Volatile.Read(ref _stream)?.ConnectionId ?? _connectionId;

    public Jid Jid { get; }

    /// <summary>The log of the stream that bound the session.</summary>
    public Logger Log => _log;

    /// <summary>The stream the session is on; null while it waits for a new one.</summary>
    public ISessionCarrier? Stream => Volatile.Read(ref _stream);

    public bool IsHibernating => Stream is null && !IsEnded;

    public bool IsEnded => Volatile.Read(ref _ended) != 0;

    public bool IsAvailable { get; set; }

    public int Priority { get; set; }

    public Element? LastPresence { get; set; }

    public bool RosterRequested { get; set; }

    public ISet<Jid> DirectedPresence { get; } = new HashSet<Jid>();

    public SessionItems Items { get; } = new();

    public ISendFilter? SendFilter { get; set; }

    /// <summary>The delivery tracker (XEP-0198), when a module set one.</summary>
    public IDeliveryTracker? Tracker { get; set; }

    /// <summary>
    /// Cluster mode: set when the session's account is homed on another node (this node is the session's edge): what
    /// the client sends is routed there, and the session is not in this node's registry but in the home's.
    /// </summary>
    public ISessionHome? Home => Volatile.Read(ref _home);

    private ISessionHome? _home;

    /// <summary>
    /// Sets <see cref="Home"/>; false when the session ended meanwhile, so that its end may not have seen the home:
    /// the caller then ends it there. (Both fences are full: either this sees the end or the end sees the home.)
    /// </summary>
    public bool SetHome(ISessionHome? home)
    {
        Interlocked.Exchange(ref _home, home);
        return !IsEnded;
    }

    public bool TrySend(Element stanza)
    {
        if (SendFilter is { } filter && filter.Hold(this, stanza))
        {
            return true;
        }

        return SendUnfiltered(stanza);
    }

    public bool SendUnfiltered(Element stanza) => Tracker is { } tracker ? tracker.Send(stanza) : Write(stanza);

    /// <summary>Writes to the current stream, past filter and tracker; false without a stream or when it refuses.</summary>
    public bool Write(Element stanza) => Stream?.TryWrite(stanza) ?? false;

    public Task FlushAsync() => Stream?.FlushAsync() ?? Task.CompletedTask;

    public void Close(StreamError? streamError)
    {
        if (Stream is { } stream)
        {
            stream.Close(streamError);
        }
        else if (!IsEnded && Tracker is { } tracker)
        {
            _ = tracker.EndKeptAsync(streamError?.Text ?? "closed");
        }
    }

    /// <summary>A new stream takes the session over (resumption); the previous one, if still there, is told apart.</summary>
    public ISessionCarrier? Attach(ISessionCarrier stream)
    {
        var previous = Interlocked.Exchange(ref _stream, stream);
        _connectionId = stream.ConnectionId;
        return previous;
    }

    /// <summary>The stream is gone but the session stays (kept by its tracker).</summary>
    public void Detach(ISessionCarrier stream) => Interlocked.CompareExchange(ref _stream, null, stream);

    /// <summary>
    /// Cluster mode: what the rest of the server knows of this session (presence, priority, roster interest,
    /// directed presence, the modules' flags), for <see cref="ClientSession(Hosting.ServerContext, Jid, Element, Logger)"/>
    /// on another node. Items that are not flags (a value equal to its key) stay behind.
    /// </summary>
    public Element Snapshot()
    {
        var state = new Element("session", ParkedNamespace)
            .SetAttribute("available", IsAvailable ? "true" : "false")
            .SetAttribute("priority", Priority.ToString(System.Globalization.CultureInfo.InvariantCulture))
            .SetAttribute("roster", RosterRequested ? "true" : "false");
        if (LastPresence is { } presence)
        {
            state.Add(presence.Clone());
        }

        foreach (var target in DirectedPresence)
        {
            state.Add(new Element("directed", ParkedNamespace).SetAttribute("jid", target.ToString()));
        }

        foreach (var key in Items.Flags())
        {
            state.Add(new Element("item", ParkedNamespace).SetAttribute("key", key));
        }

        return state;
    }

    /// <summary>The namespace of a parked session's snapshot (never on the wire).</summary>
    public const string ParkedNamespace = "urn:xmppserver:parked";

    /// <summary>
    /// Cluster mode: the session leaves this node without ending, to wait for its client on another one (XEP-0198
    /// resumption after a drain): out of the session manager, with no hook fired, so nobody is told it went
    /// offline. Returns the stream it was on, for the caller to close; null when it had ended already.
    /// </summary>
    public ISessionCarrier? Vacate()
    {
        if (Interlocked.Exchange(ref _ended, 1) != 0)
        {
            return null;
        }

        var stream = Interlocked.Exchange(ref _stream, null);
        _ctx.Sessions.Unbind(this);
        return stream;
    }

    /// <summary>
    /// The session is over: out of the session manager, modules told (unavailable presence to contacts), the
    /// tracker's unacknowledged stanzas handled. Once.
    /// </summary>
    public async Task EndAsync()
    {
        if (Interlocked.Exchange(ref _ended, 1) != 0)
        {
            return;
        }

        _stream = null;
        if (Home is { } home)
        {
            await EndAtHomeAsync(home).ConfigureAwait(false);
            return;
        }

        _ctx.Sessions.Unbind(this);
        try
        {
            var context = new StanzaContext(new Element("presence", Ns.Client), Jid, null, this, _ctx.Router);
            await _ctx.Hooks.FireAsync(HookNames.ResourceUnbound, context, CancellationToken.None).ConfigureAwait(false);
            if (Tracker is { } tracker)
            {
                await tracker.OnEndedAsync().ConfigureAwait(false);
            }
        }
        catch (Exception ex)
        {
            _log.Error(ex, "Error while ending the session of {Jid}", Jid);
        }
    }

    /// <summary>An edge session ends on its home first (its contacts told there), then its unacknowledged stanzas are handled.</summary>
    private async Task EndAtHomeAsync(ISessionHome home)
    {
        try
        {
            await home.DetachAsync().ConfigureAwait(false);
            if (Tracker is { } tracker)
            {
                await tracker.OnEndedAsync().ConfigureAwait(false);
            }
        }
        catch (Exception ex)
        {
            _log.Error(ex, "Error while ending the session of {Jid} on its home node {Node}", Jid, home.Node);
        }
    }
}
