using System.Collections.Concurrent;
using NLog;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;
using Xmpp.Server.Hosting;
using Xmpp.Server.Routing;
using Xmpp.Server.Streams;

namespace Xmpp.Server.S2s;

/// <summary>
/// Federation: claims stanzas for remote domains from the router ("route/remote"), keeps one outgoing
/// stream per (local domain, remote domain) pair, answers and asks dialback questions, and bounces what
/// cannot be delivered. Incoming streams are accepted by the s2s listeners.
/// </summary>
[Specification("RFC 6120", "§3.2, §5, §13.7", Note = "Server streams: SRV lookup with fallback, STARTTLS, certificate identity checks, one outgoing stream per domain pair, bounces for what cannot be delivered.")]
public sealed class S2sManager
{
    private readonly ServerContext _ctx;
    private readonly Logger _log;
    private readonly ConcurrentDictionary<(string Local, string Remote), OutgoingS2sStateMachine> _outgoing = new();
    private CancellationToken _shutdown;

    public S2sManager(ServerContext ctx, Dialback dialback)
    {
        _ctx = ctx;
        Dialback = dialback;
        _log = ctx.Logs.GetLogger("S2s");
        Resolver = new SrvResolver(ctx.Options.S2s, ctx.Logs.GetLogger("Dns"));
        Certificates = PeerCertificates.Load(ctx.Options.S2s.CaFile);
    }

    /// <summary>The keys this server issues and checks, from the secret shared through the database.</summary>
    public Dialback Dialback { get; }

    public PeerCertificates Certificates { get; }

    public SrvResolver Resolver { get; }

    /// <summary>Incoming streams by connection id (for the metrics).</summary>
    internal ConcurrentDictionary<long, IncomingS2sStateMachine> Incoming { get; } = new();

    /// <summary>Server-to-server streams by direction and state, for the metrics endpoint.</summary>
    public IEnumerable<(string Labels, double Value)> CountByState()
    {
        int outReady = 0, outConnecting = 0, inAuthenticated = 0, inAuthenticating = 0;
        foreach (var stream in _outgoing.Values)
        {
            _ = stream.IsReady ? outReady++ : outConnecting++;
        }

        foreach (var stream in Incoming.Values)
        {
            _ = stream.IsAuthenticated ? inAuthenticated++ : inAuthenticating++;
        }

        return
        [
            ("{direction=\"out\",state=\"connecting\"}", outConnecting),
            ("{direction=\"out\",state=\"ready\"}", outReady),
            ("{direction=\"in\",state=\"authenticating\"}", inAuthenticating),
            ("{direction=\"in\",state=\"authenticated\"}", inAuthenticated),
        ];
    }

    /// <summary>Every server-to-server stream now, outgoing then incoming (copies, for the web console).</summary>
    public IReadOnlyList<S2sStreamInfo> Streams() =>
        [.. _outgoing.Values.Select(s => s.Describe()), .. Incoming.Values.Select(s => s.Describe())];

    /// <summary>
    /// Ends one stream as the idle timeout does: our closing tag after what is queued (what cannot be written any
    /// more is bounced); the next stanza opens a new stream, or the peer does. False when there is no such stream.
    /// </summary>
    /// <param name="by">Who asked, for the log.</param>
    public bool End(long connectionId, string by)
    {
        if (Incoming.TryGetValue(connectionId, out var incoming))
        {
            incoming.End(by);
            return true;
        }

        if (_outgoing.Values.FirstOrDefault(s => s.ConnectionId == connectionId) is { } outgoing)
        {
            outgoing.End(by);
            return true;
        }

        return false;
    }

    public void Register(HookBus hooks) => hooks.On(HookNames.RouteRemote, RouteAsync);

    public void Start(CancellationToken shutdown) => _shutdown = shutdown;

    private async ValueTask<bool> RouteAsync(StanzaContext ctx, CancellationToken ct)
    {
        var local = ctx.From.Domain;
        if (!_ctx.Router.Serves(local))
        {
            // An external component (XEP-0114) writing to another server: components do not federate
            // (their domain has no dialback or certificate of ours), so the sender learns it cannot be reached.
            _log.Warn("Refusing a {Kind} from {From} to {To}: only the server's own hosts and services federate", ctx.Kind, ctx.From, ctx.To);
            await BounceAsync([ctx.Stanza], StanzaErrorCondition.RemoteServerNotFound, $"{ctx.From.Domain} cannot reach other servers").ConfigureAwait(false);
            return true;
        }

        for (var attempt = 0; attempt < 2; attempt++)
        {
            var stream = GetOrStart(local, ctx.To!.Domain);
            switch (stream.Send(ctx.Stanza))
            {
                case Enqueued.Queued:
                    return true;
                case Enqueued.Full:
                    _log.Warn("Queue for {Remote} is full: bouncing a {Kind}", ctx.To.Domain, ctx.Kind);
                    await BounceAsync([ctx.Stanza], StanzaErrorCondition.RemoteServerTimeout, $"{ctx.To.Domain} is not keeping up").ConfigureAwait(false);
                    return true;
                default:
                    Remove(stream);
                    break;
            }
        }

        await BounceAsync([ctx.Stanza], StanzaErrorCondition.RemoteServerNotFound, $"no stream to {ctx.To!.Domain}").ConfigureAwait(false);
        return true;
    }

    /// <summary>Asks the authoritative server of <paramref name="remote"/> whether it issued this dialback key.</summary>
    public Task<bool> VerifyDialbackAsync(string local, string remote, string streamId, string key, CancellationToken ct) =>
        GetOrStart(local, remote).VerifyAsync(streamId, key.Trim(), ct);

    private OutgoingS2sStateMachine GetOrStart(string local, string remote)
    {
        while (true)
        {
            if (_outgoing.TryGetValue((local, remote), out var existing))
            {
                return existing;
            }

            var created = new OutgoingS2sStateMachine(_ctx, this, local, remote);
            if (_outgoing.TryAdd((local, remote), created))
            {
                _log.Debug("Opening an s2s stream from {Local} to {Remote}", local, remote);

                // The connect phase, then the stream on the connection core; it bounces what it cannot deliver.
                // Started from a client's flow, it must not inherit that flow's logging scope (its JID).
                using (ExecutionContext.SuppressFlow())
                {
                    _ = Task.Run(() => created.RunAsync(_shutdown));
                }

                return created;
            }
        }
    }

    internal void Remove(OutgoingS2sStateMachine stream) =>
        _outgoing.TryRemove(new KeyValuePair<(string, string), OutgoingS2sStateMachine>((stream.Local, stream.Remote), stream));

    /// <summary>
    /// Errors back to the local senders of undeliverable stanzas (RFC 6120 §8.3.3.1/.2); presence is dropped
    /// (RFC 6121: the server does not bounce presence to remote contacts it cannot reach).
    /// </summary>
    internal async Task BounceAsync(IEnumerable<Element> stanzas, StanzaErrorCondition condition, string text)
    {
        foreach (var stanza in stanzas)
        {
            if (stanza.Name == "presence")
            {
                continue;
            }

            try
            {
                await _ctx.Router.BounceAsync(stanza, new StanzaError(condition, text), CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                _log.Error(ex, "Bouncing a {Kind} failed", stanza.Name);
            }
        }
    }
}
