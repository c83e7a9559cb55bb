using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using NLog;
using Xmpp.Core;
using Xmpp.Core.Addressing;
using Xmpp.Core.Xml;
using Xmpp.Server.Hosting;
using Xmpp.Server.Streams.Transports;

namespace Xmpp.Server.Net;

/// <summary>
/// BOSH (XEP-0124, with XEP-0206's XMPP binding) on the HTTPS listener: every session is one
/// <see cref="Streams.C2sStateMachine"/> on a <see cref="BoshTransport"/>, which takes its elements from the
/// bodies clients POST and writes its output into the bodies it answers, so BOSH clients reach the same
/// stream state machine as TCP and WebSocket clients. Requests are taken in rid order within a window,
/// answers to lost requests are sent again, a request is held until the server has something to say (long polling, up to 'wait' seconds), and a
/// session whose client stops polling ends after 'inactivity' seconds like a dropped TCP connection.
/// Nothing here knows ASP.NET Core: the listener hands over the request body and writes the answer.
/// </summary>
[Specification("XEP-0124", "1.11.2", Note = "Sessions over HTTP POST: rid ordering and window, retransmission of lost answers, long polling with hold=1 and requests=2, inactivity timeout, terminate; no polling sessions, no key sequences (TLS carries the session).")]
[Specification("XEP-0206", "1.4", Note = "XMPP over BOSH at /http-bind: the stream header and restarts (xmpp:restart) translated, stream errors as remote-stream-error; the same client state machine as TCP.")]
public sealed class BoshManager
{
    public const string Path = "/http-bind";

    /// <summary>Longest wait for an answer (§7: the server may lower the client's wish).</summary>
    private const int MaxWait = 60;

    private readonly ServerContext _ctx;
    private readonly Logger _log;
    private readonly ConcurrentDictionary<string, BoshTransport> _sessions = new(StringComparer.Ordinal);

    public BoshManager(ServerContext ctx)
    {
        _ctx = ctx;
        _log = ctx.Logs.GetLogger("Bosh");
    }

    public int Count => _sessions.Count;

    /// <summary>Ends the sessions whose clients stopped polling (run until shutdown).</summary>
    public async Task SweepAsync(CancellationToken shutdown)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(2));
        try
        {
            while (await timer.WaitForNextTickAsync(shutdown).ConfigureAwait(false))
            {
                foreach (var session in _sessions.Values)
                {
                    if (session.IdleFor > TimeSpan.FromSeconds(BoshTransport.Inactivity))
                    {
                        _log.Info("BOSH session {Sid} inactive for {Seconds} s: ending it", session.Sid, BoshTransport.Inactivity);
                        session.EndInput();
                    }
                }
            }
        }
        catch (OperationCanceledException)
        {
        }

        foreach (var session in _sessions.Values)
        {
            session.EndInput();
        }
    }

    /// <summary>One POST: the request's body in, the answer's body out (HTTP 200 unless the request is not BOSH at all).</summary>
    public async Task<(int Status, byte[] Body)> HandleAsync(ReadOnlyMemory<byte> request, IPAddress remote, int remotePort, CancellationToken aborted, CancellationToken shutdown)
    {
        Element? body;
        try
        {
            // The same restricted XML as a stream (RFC 6120 §11), the body being one element more deep and big.
            var limits = Streams.C2sStateMachine.ReaderLimits(_ctx);
            using var parser = XmppStreamReader.ForMessages(limits with { MaxStanzaBytes = limits.MaxStanzaBytes + 4096, MaxDepth = limits.MaxDepth + 1 });
            body = parser.ParseMessage(request.Span);
        }
        catch (Core.Stanzas.XmppStreamException ex)
        {
            _log.Info("Refusing a BOSH request from {Remote}: {Reason}", remote, ex.Message);
            return (400, "not XML"u8.ToArray());
        }

        if (body is null || !body.Is("body", BoshTransport.Namespace) || !long.TryParse(body.GetAttribute("rid"), NumberStyles.None, CultureInfo.InvariantCulture, out var rid))
        {
            return (400, "a BOSH body with a rid is needed"u8.ToArray());
        }

        if (body.GetAttribute("sid") is not { } sid)
        {
            return await CreateAsync(body, rid, remote, remotePort, aborted, shutdown).ConfigureAwait(false);
        }

        if (!_sessions.TryGetValue(sid, out var session))
        {
            return (200, BoshTransport.Terminate("item-not-found"));
        }

        return (200, await session.RequestAsync(body, rid, aborted).ConfigureAwait(false));
    }

    private async Task<(int Status, byte[] Body)> CreateAsync(Element body, long rid, IPAddress remote, int remotePort, CancellationToken aborted, CancellationToken shutdown)
    {
        var to = body.GetAttribute("to");
        if (to is null || !Jid.TryPrepareDomain(to, out var host) || !_ctx.Router.IsLocal(host))
        {
            return (200, BoshTransport.Terminate("host-unknown"));
        }

        if (!_ctx.Connections.TryAdmit(remote, _ctx.Options.Limits.ConnectionsPerIp))
        {
            _log.Warn("Refusing a BOSH session from {Remote}: too many connections from that address", remote);
            return (200, BoshTransport.Terminate("policy-violation"));
        }

        var wait = int.TryParse(body.GetAttribute("wait"), NumberStyles.None, CultureInfo.InvariantCulture, out var w) ? Math.Clamp(w, 1, MaxWait) : MaxWait;
        var sid = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        var session = new BoshTransport(sid, host, wait, rid, new IPEndPoint(remote, remotePort), _log);
        _sessions[sid] = session;
        var connection = Streams.C2sStateMachine.Create(_ctx, session, directTls: false, shutdown);
        var run = _ctx.Connections.Start(connection, remote);
        _ = run.ContinueWith(_ => _sessions.TryRemove(new KeyValuePair<string, BoshTransport>(sid, session)), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        _log.Info("BOSH session {Sid} from {Remote} for {Host} (wait {Wait} s)", sid, remote, host, wait);

        session.Open(body.GetAttribute("lang", Ns.Xml));
        return (200, await session.FirstAnswerAsync(aborted).ConfigureAwait(false));
    }
}
