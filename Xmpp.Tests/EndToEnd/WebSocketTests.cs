using System.Net.WebSockets;
using System.Text;
using Xmpp.Core.Xml;
using Xmpp.Server.Config;

namespace Xmpp.Tests.EndToEnd;

/// <summary>XMPP over WebSocket (RFC 7395) and host-meta (XEP-0156) on the HTTPS listener.</summary>
public sealed class WebSocketTests
{
    private const string Framing = "urn:ietf:params:xml:ns:xmpp-framing";

    private static async Task<TestServer> StartAsync()
    {
        var server = await TestServer.StartAsync(
            o => o with { Listeners = [.. o.Listeners, new ListenerOptions(ListenerKind.Https, "127.0.0.1", 0)] },
            "alice@localhost:alice-pass", "bob@localhost:bob-pass");
        await server.Server.HttpReady;
        return server;
    }

    private sealed class WsClient : IAsyncDisposable
    {
        private readonly ClientWebSocket _ws = new();

        public static async Task<WsClient> ConnectAsync(int port, string? protocol = "xmpp")
        {
            var c = new WsClient();
            if (protocol is not null)
            {
                c._ws.Options.AddSubProtocol(protocol);
            }

            c._ws.Options.RemoteCertificateValidationCallback = (_, _, _, _) => true;
            await c._ws.ConnectAsync(new Uri($"wss://127.0.0.1:{port}/xmpp-websocket"), CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));
            return c;
        }

        public string? SubProtocol => _ws.SubProtocol;

        public Task SendAsync(string xml) => _ws.SendAsync(Encoding.UTF8.GetBytes(xml), WebSocketMessageType.Text, true, CancellationToken.None);

        /// <summary>One message, parsed (each is one complete element), or null when the WebSocket closed.</summary>
        public async Task<Element?> ReadAsync()
        {
            var buffer = new byte[65536];
            using var ms = new MemoryStream();
            while (true)
            {
                var r = await _ws.ReceiveAsync(buffer, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));
                if (r.MessageType == WebSocketMessageType.Close)
                {
                    return null;
                }

                ms.Write(buffer, 0, r.Count);
                if (r.EndOfMessage)
                {
                    return ElementParser.Parse(Encoding.UTF8.GetString(ms.ToArray()));
                }
            }
        }

        public async Task<Element> ReadUntilAsync(Func<Element, bool> match)
        {
            while (true)
            {
                var e = await ReadAsync() ?? throw new InvalidOperationException("closed");
                if (match(e))
                {
                    return e;
                }
            }
        }

        public async ValueTask DisposeAsync()
        {
            if (_ws.State == WebSocketState.Open)
            {
                await _ws.CloseAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(5)).ContinueWith(_ => { }, TaskScheduler.Default);
            }

            _ws.Dispose();
        }
    }

    /// <summary>
    /// No channel binding over WebSocket (the TLS is the HTTPS listener's), so no -PLUS and no XEP-0440 list: a
    /// client that could bind says "y", rightly, and RFC 5802 §6 lets it in.
    /// </summary>
    [Test]
    public async Task Scram_with_the_y_flag_logs_in_where_no_plus_is_offered()
    {
        await using var server = await StartAsync();
        await using var ws = await WsClient.ConnectAsync(server.Server.PortOf(ListenerKind.Https));
        await ws.SendAsync($"<open xmlns='{Framing}' to='localhost' version='1.0'/>");
        await ws.ReadAsync();
        var features = (await ws.ReadAsync())!;
        Assert.That(features.ToString(), Does.Not.Contain("-PLUS").And.Not.Contain("urn:xmpp:sasl-cb:0"));
        var scram = new Xmpp.Core.Sasl.ScramClient(Xmpp.Core.Sasl.ScramHash.Sha256, "alice", "alice-pass", supportsBinding: true);
        await ws.SendAsync($"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'>{Convert.ToBase64String(Encoding.UTF8.GetBytes(scram.ClientFirst()))}</auth>");
        var challenge = (await ws.ReadAsync())!;
        Assert.That(challenge.Name, Is.EqualTo("challenge"), challenge.ToString());
        var final = scram.ClientFinal(Encoding.UTF8.GetString(Convert.FromBase64String(challenge.Text)));
        await ws.SendAsync($"<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{Convert.ToBase64String(Encoding.UTF8.GetBytes(final))}</response>");
        var success = (await ws.ReadAsync())!;
        Assert.That(success.Name, Is.EqualTo("success"), success.ToString());
        Assert.That(scram.VerifyServerFinal(Encoding.UTF8.GetString(Convert.FromBase64String(success.Text))), Is.True);
    }

    [Test]
    public async Task A_web_client_logs_in_and_chats_with_a_tcp_client()
    {
        await using var server = await StartAsync();
        await using var bob = await RawXmppClient.ConnectAsync(server.C2sPort);
        await bob.LoginAsync("bob", "bob-pass", resource: "tcp");

        await using var ws = await WsClient.ConnectAsync(server.Server.PortOf(ListenerKind.Https));
        Assert.That(ws.SubProtocol, Is.EqualTo("xmpp"));
        await ws.SendAsync($"<open xmlns='{Framing}' to='localhost' version='1.0'/>");
        var open = await ws.ReadAsync();
        Assert.That(open!.Is("open", Framing), open.ToString());
        Assert.That(open.GetAttribute("from"), Is.EqualTo("localhost"));
        Assert.That(open.GetAttribute("id"), Is.Not.Null);
        var features = await ws.ReadAsync();
        Assert.That(features!.Is("features", "http://etherx.jabber.org/streams"), features.ToString());
        Assert.That(features.ToString(), Does.Not.Contain("starttls"), "the WebSocket is encrypted already");
        Assert.That(features.ToString(), Does.Contain("SCRAM-SHA-256").And.Contain("PLAIN").And.Not.Contain("-PLUS"));

        var plain = Convert.ToBase64String(Encoding.UTF8.GetBytes("\0alice\0alice-pass"));
        await ws.SendAsync($"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{plain}</auth>");
        var success = await ws.ReadAsync();
        Assert.That(success!.Name, Is.EqualTo("success"), success.ToString());
        await ws.SendAsync($"<open xmlns='{Framing}' to='localhost' version='1.0'/>");
        Assert.That((await ws.ReadAsync())!.Is("open", Framing));
        var bindFeatures = await ws.ReadAsync();
        Assert.That(bindFeatures!.ToString(), Does.Contain("urn:ietf:params:xml:ns:xmpp-bind"));
        await ws.SendAsync("<iq xmlns='jabber:client' type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>web</resource></bind></iq>");
        var bound = await ws.ReadAsync();
        Assert.That(bound!.Namespace, Is.EqualTo("jabber:client"), "stanzas carry their namespace");
        Assert.That(bound.ToString(), Does.Contain("alice@localhost/web"));

        await ws.SendAsync("<message xmlns='jabber:client' to='bob@localhost/tcp' type='chat'><body>from the browser</body></message>");
        var got = await bob.ReadUntilAsync(e => e.Name == "message");
        Assert.That(got.ChildText("body", "jabber:client"), Is.EqualTo("from the browser"));
        Assert.That(got.GetAttribute("from"), Is.EqualTo("alice@localhost/web"));
        await bob.SendAsync("<message to='alice@localhost/web' type='chat'><body>from the terminal</body></message>");
        var answer = await ws.ReadUntilAsync(e => e.Name == "message");
        Assert.That(answer.ChildText("body", "jabber:client"), Is.EqualTo("from the terminal"));

        // §3.6: <close/> ends the stream; the server answers with its own and closes the WebSocket.
        await ws.SendAsync($"<close xmlns='{Framing}'/>");
        var close = await ws.ReadUntilAsync(e => e.Is("close", Framing));
        Assert.That(close, Is.Not.Null);
        Assert.That(await ws.ReadAsync(), Is.Null);
    }

    [Test]
    public async Task Without_the_xmpp_subprotocol_the_handshake_is_refused()
    {
        await using var server = await StartAsync();
        var ex = Assert.ThrowsAsync<WebSocketException>(async () => await WsClient.ConnectAsync(server.Server.PortOf(ListenerKind.Https), protocol: null));
        Assert.That(ex!.Message, Does.Contain("400"));
    }

    [Test]
    public async Task Host_meta_advertises_the_websocket_endpoint()
    {
        await using var server = await StartAsync();
        var port = server.Server.PortOf(ListenerKind.Https);
        using var handler = new HttpClientHandler { ServerCertificateCustomValidationCallback = (_, _, _, _) => true };
        using var http = new HttpClient(handler) { BaseAddress = new Uri($"https://127.0.0.1:{port}/") };
        var xml = await http.GetAsync(".well-known/host-meta");
        Assert.That(xml.Content.Headers.ContentType!.MediaType, Is.EqualTo("application/xrd+xml"));
        Assert.That(xml.Headers.GetValues("Access-Control-Allow-Origin"), Is.EqualTo(new[] { "*" }));
        Assert.That(await xml.Content.ReadAsStringAsync(), Does.Contain($"rel='urn:xmpp:alt-connections:websocket' href='wss://127.0.0.1:{port}/xmpp-websocket'"));
        var json = await http.GetStringAsync(".well-known/host-meta.json");
        Assert.That(json, Does.Contain("\"rel\":\"urn:xmpp:alt-connections:websocket\"").And.Contain($"wss://127.0.0.1:{port}/xmpp-websocket"));
    }
}
