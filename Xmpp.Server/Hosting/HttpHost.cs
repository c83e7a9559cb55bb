using System.Net;
using System.Net.Security;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core.Features;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Xmpp.Core.Addressing;
using Xmpp.Server.Config;
using Xmpp.Server.Net;
using Xmpp.Server.Streams.Transports;
using Xmpp.Server.Tls;

namespace Xmpp.Server.Hosting;

/// <summary>
/// The HTTPS listener (Kestrel, with each host's certificate chosen by SNI): XMPP over WebSocket at
/// /xmpp-websocket (RFC 7395) and BOSH at /http-bind (XEP-0206), both reaching the same client stream
/// state machine as TCP, XEP-0156 host-meta (XML and JSON) that tells web clients where they are, and
/// the paths modules serve (file upload), with the configured CORS answers.
/// </summary>
[Specification("XEP-0156", "1.4.0", Note = "host-meta and host-meta.json on the HTTPS listener, advertising the WebSocket and BOSH endpoints, with the configured CORS origins.")]
public sealed class HttpHost : IAsyncDisposable
{
    public const string WebSocketPath = "/xmpp-websocket";
    private const string AltConnectionsWebSocket = "urn:xmpp:alt-connections:websocket";
    private const string AltConnectionsBosh = "urn:xmpp:alt-connections:xbosh";

    private readonly XmppServer _server;
    private BoshManager? _bosh;
    private CancellationToken _shutdown;
    private Task? _boshSweep;
    /// <summary>Stops Kestrel (a delegate, so that this class's layout names no ASP.NET Core type).</summary>
    private Func<Task>? _stop;

    public HttpHost(XmppServer server) => _server = server;

    /// <summary>The bound endpoints (for tests using port 0).</summary>
    public IReadOnlyList<IPEndPoint> Endpoints { get; private set; } = [];

    public async Task StartAsync(CancellationToken shutdown)
    {
        var ctx = _server.Context;
        var listeners = ctx.Options.Listeners.Where(l => l.Kind == ListenerKind.Https).ToList();
        if (listeners.Count == 0)
        {
            return;
        }

        await StartKestrelAsync(listeners, shutdown).ConfigureAwait(false);
    }

    /// <summary>Apart from <see cref="StartAsync"/>, so that a server without an HTTPS listener never loads ASP.NET Core.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private async Task StartKestrelAsync(List<ListenerOptions> listeners, CancellationToken shutdown)
    {
        var ctx = _server.Context;
        // No defaults: no configuration files (and their change watcher), no logging providers; Kestrel and routing only.
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions { ApplicationName = "xmppserver", ContentRootPath = AppContext.BaseDirectory });
        builder.WebHost.UseKestrelCore();
        builder.Services.AddRoutingCore();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            foreach (var l in listeners)
            {
                foreach (var endpoint in XmppServer.Resolve(l))
                {
                    kestrel.Listen(endpoint, listen =>
                    {
                        // The options of every TLS stream (TlsContexts), with the certificate read at each
                        // handshake: a reload's new certificates serve new connections.
                        listen.UseHttps(new TlsHandshakeCallbackOptions
                        {
                            OnConnection = tls => ctx.Tls.ServerOptionsAsync(
                                (Jid.TryPrepareDomain(tls.ClientHelloInfo.ServerName ?? string.Empty, out var host) ? ctx.Certificates.Find(host) : null) ?? ctx.Certificates.Default,
                                [SslApplicationProtocol.Http2, SslApplicationProtocol.Http11],
                                requestClientCertificate: false,
                                tls.CancellationToken),
                        });

                        // After the handshake, the same check as theirs: outside the policy, the connection ends here.
                        listen.Use(next => connection =>
                            connection.Features.Get<ISslStreamFeature>()?.SslStream is { } ssl && !ctx.Tls.Check(ssl) ? Task.CompletedTask : next(connection));
                    });
                }
            }
        });
        var app = builder.Build();
        app.UseWebSockets(new WebSocketOptions { KeepAliveInterval = TimeSpan.FromSeconds(30) });
        app.Map(WebSocketPath, WebSocketAsync);
        _shutdown = shutdown;
        _bosh = new BoshManager(ctx);
        _boshSweep = _bosh.SweepAsync(shutdown);
        ctx.Metrics.Gauge("xmpp_bosh_sessions", "BOSH (XEP-0206) sessions.", () => _bosh.Count);
        app.Map(BoshManager.Path, BoshAsync);
        app.MapGet("/.well-known/host-meta", HostMetaXml);
        app.MapGet("/.well-known/host-meta.json", HostMetaJson);
        app.Map("/{**path}", ModuleRouteAsync);
        await app.StartAsync(shutdown).ConfigureAwait(false);
        _stop = async () =>
        {
            await app.StopAsync(CancellationToken.None).ConfigureAwait(false);
            await app.DisposeAsync().ConfigureAwait(false);
        };
        var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses ?? [];
        Endpoints = addresses.Select(a => new Uri(a)).Select(u => new IPEndPoint(IPAddress.Parse(u.Host.Trim('[', ']')), u.Port)).ToList();
        foreach (var a in addresses)
        {
            ctx.Logs.GetLogger("Http").Info("Listening for HTTPS (WebSocket at {Path}, host-meta) on {Address}", WebSocketPath, a);
        }
    }

    private async Task WebSocketAsync(HttpContext http)
    {
        var ctx = _server.Context;
        var log = ctx.Logs.GetLogger("Http");
        if (!http.WebSockets.IsWebSocketRequest)
        {
            http.Response.StatusCode = StatusCodes.Status426UpgradeRequired;
            return;
        }

        // RFC 7395 §3.1: the handshake must agree on the "xmpp" subprotocol.
        if (!http.WebSockets.WebSocketRequestedProtocols.Contains("xmpp"))
        {
            log.Info("Refusing a WebSocket from {Remote} without the xmpp subprotocol", http.Connection.RemoteIpAddress);
            http.Response.StatusCode = StatusCodes.Status400BadRequest;
            return;
        }

        var address = http.Connection.RemoteIpAddress ?? IPAddress.Loopback;
        if (!ctx.Connections.TryAdmit(address, ctx.Options.Limits.ConnectionsPerIp))
        {
            log.Warn("Refusing a WebSocket from {Remote}: too many connections from that address", address);
            http.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
            return;
        }

        var socket = await http.WebSockets.AcceptWebSocketAsync("xmpp").ConfigureAwait(false);
        var transport = new WebSocketTransport(socket, new IPEndPoint(address, http.Connection.RemotePort), Streams.C2sStateMachine.ReaderLimits(ctx), ctx.Options.Limits.StanzaSize + 4096);
        var connection = Streams.C2sStateMachine.Create(ctx, transport, directTls: false, http.RequestAborted);
        await ctx.Connections.Start(connection, address).ConfigureAwait(false);
    }

    /// <summary>XEP-0206 BOSH: a POSTed body in, the session's answer out (CORS for web clients of other origins).</summary>
    private async Task BoshAsync(HttpContext http)
    {
        var ctx = _server.Context;
        if (CorsAnswered(http, ["POST"]))
        {
            return;
        }

        if (!HttpMethods.IsPost(http.Request.Method))
        {
            http.Response.Headers.Allow = "POST, OPTIONS";
            http.Response.StatusCode = StatusCodes.Status405MethodNotAllowed;
            return;
        }

        var limit = ctx.Options.Limits.StanzaSize + 4096;
        if (http.Request.ContentLength > limit)
        {
            http.Response.StatusCode = StatusCodes.Status413PayloadTooLarge;
            return;
        }

        var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(limit + 1);
        try
        {
            var read = 0;
            int n;
            while (read <= limit && (n = await http.Request.Body.ReadAsync(buffer.AsMemory(read, limit + 1 - read), http.RequestAborted).ConfigureAwait(false)) > 0)
            {
                read += n;
            }

            if (read > limit)
            {
                http.Response.StatusCode = StatusCodes.Status413PayloadTooLarge;
                return;
            }

            var address = http.Connection.RemoteIpAddress ?? IPAddress.Loopback;
            var (status, body) = await _bosh!.HandleAsync(buffer.AsMemory(0, read), address, http.Connection.RemotePort, http.RequestAborted, _shutdown).ConfigureAwait(false);
            http.Response.StatusCode = status;
            http.Response.ContentType = "text/xml; charset=utf-8";
            http.Response.Headers.CacheControl = "no-store";
            http.Response.ContentLength = body.Length;
            await http.Response.Body.WriteAsync(body, http.RequestAborted).ConfigureAwait(false);
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// Paths that modules serve (file upload): the current module generation's handler, with the CORS
    /// answers of the configuration (a preflight OPTIONS is answered here, for the methods the module takes).
    /// </summary>
    private async Task ModuleRouteAsync(HttpContext http)
    {
        var ctx = _server.Context;
        var path = http.Request.Path.Value ?? "/";
        if (ctx.Modules.HttpRoutes.Find(path) is not var (handler, methods, cors))
        {
            http.Response.StatusCode = StatusCodes.Status404NotFound;
            return;
        }

        if (cors && CorsAnswered(http, methods))
        {
            return;
        }

        if (!methods.Contains(http.Request.Method, StringComparer.OrdinalIgnoreCase))
        {
            http.Response.Headers.Allow = string.Join(", ", methods);
            http.Response.StatusCode = StatusCodes.Status405MethodNotAllowed;
            return;
        }

        await handler(new AspNetExchange(http)).ConfigureAwait(false);
    }

    /// <summary>
    /// The CORS gate of BOSH and the modules' paths, by the configuration's cors-origins: a request from an
    /// origin not allowed gets 403, a preflight (OPTIONS) its answer for <paramref name="methods"/>. True
    /// when the request was answered here; otherwise the allowed origin is on the response and it goes on.
    /// </summary>
    private bool CorsAnswered(HttpContext http, string[] methods)
    {
        var origin = http.Request.Headers.Origin.ToString();
        // A page of this very server (the invitation page's form) is not a cross-origin caller: cors-origins
        // lists the other origins whose scripts may call in (Fetch, "CORS protocol").
        if (origin.Length > 0 && !string.Equals(origin, http.Request.Scheme + "://" + http.Request.Host.Value, StringComparison.OrdinalIgnoreCase))
        {
            if (_server.Context.Options.Http.AllowOrigin(origin) is not { } allowed)
            {
                _server.Context.Logs.GetLogger("Http").Info("Refusing a {Method} to {Path} from origin {Origin} (not in cors-origins)", http.Request.Method, http.Request.Path.Value, origin);
                http.Response.StatusCode = StatusCodes.Status403Forbidden;
                return true;
            }

            http.Response.Headers.AccessControlAllowOrigin = allowed;
            http.Response.Headers.Vary = "Origin";
        }

        if (!HttpMethods.IsOptions(http.Request.Method))
        {
            return false;
        }

        http.Response.Headers.AccessControlAllowMethods = string.Join(", ", methods.Append("OPTIONS"));
        http.Response.Headers.AccessControlAllowHeaders = "Authorization, Content-Type";
        http.Response.Headers.AccessControlMaxAge = "86400";
        http.Response.StatusCode = StatusCodes.Status204NoContent;
        return true;
    }

    private static string WebSocketUrl(HttpContext http) => "wss://" + http.Request.Host.Value + WebSocketPath;

    private static string BoshUrl(HttpContext http) => "https://" + http.Request.Host.Value + BoshManager.Path;

    /// <summary>XEP-0156 §3: the XRD document, readable by scripts of any origin.</summary>
    private IResult HostMetaXml(HttpContext http)
    {
        Cors(http);
        var href = System.Security.SecurityElement.Escape(WebSocketUrl(http));
        var bosh = System.Security.SecurityElement.Escape(BoshUrl(http));
        return Results.Text(
            $"<?xml version='1.0' encoding='utf-8'?>\n<XRD xmlns='http://docs.oasis-open.org/ns/xri/xrd-1.0'>\n  <Link rel='{AltConnectionsWebSocket}' href='{href}'/>\n  <Link rel='{AltConnectionsBosh}' href='{bosh}'/>\n</XRD>\n",
            "application/xrd+xml");
    }

    private IResult HostMetaJson(HttpContext http)
    {
        Cors(http);
        // Written with Utf8JsonWriter, not JsonSerializer: reflection-based serialization is disabled under
        // Native AOT (PublishAot), and the output is the same (the same default encoder).
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteStartArray("links");
            foreach (var (rel, href) in new[] { (AltConnectionsWebSocket, WebSocketUrl(http)), (AltConnectionsBosh, BoshUrl(http)) })
            {
                json.WriteStartObject();
                json.WriteString("rel", rel);
                json.WriteString("href", href);
                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteEndObject();
        }

        return Results.Text(buffer.WrittenSpan, "application/json");
    }

    /// <summary>The CORS answer for a simple request, by the configuration's cors-origins.</summary>
    private void Cors(HttpContext http)
    {
        if (_server.Context.Options.Http.AllowOrigin(http.Request.Headers.Origin.ToString() is { Length: > 0 } o ? o : null) is { } allowed)
        {
            http.Response.Headers.AccessControlAllowOrigin = allowed;
            http.Response.Headers.Vary = "Origin";
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_stop is not null)
        {
            await _stop().ConfigureAwait(false);
            _stop = null;
        }

        if (_boshSweep is not null)
        {
            await _boshSweep.ConfigureAwait(false);
        }
    }
}
