using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Xmpp.Core;
using Xmpp.Core.Sasl;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;
using Xmpp.Server.Tls;

namespace Xmpp.Tests.EndToEnd;

/// <summary>A test client that speaks raw XML over TCP and TLS and waits, bounded, for what the server sends.</summary>
public sealed class RawXmppClient : IAsyncDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);
    private readonly TcpClient _tcp;
    private Stream _stream;
    private XmppStreamReader? _reader;
    private long _syncId;

    private RawXmppClient(TcpClient tcp, Stream stream)
    {
        _tcp = tcp;
        _stream = stream;
    }

    public SslStream? Tls { get; private set; }

    public StreamHeader? ServerHeader { get; private set; }

    public Element? Features { get; private set; }

    public string? BoundJid { get; private set; }

    /// <summary>The disco#info this client answers caps queries with (tests of XEP-0115 set it).</summary>
    public Element? CapsQuery { get; set; }

    /// <param name="tlsOptions">For direct TLS: the client's TLS options (see <see cref="StartTlsAsync"/>).</param>
    /// <param name="address">The server's loopback address (cluster tests run nodes on 127.0.0.2, 127.0.0.3).</param>
    public static async Task<RawXmppClient> ConnectAsync(int port, bool directTls = false, SslClientAuthenticationOptions? tlsOptions = null, string address = "127.0.0.1")
    {
        var tcp = new TcpClient();
        await tcp.ConnectAsync(address, port).WaitAsync(Timeout);
        var client = new RawXmppClient(tcp, tcp.GetStream());
        if (directTls)
        {
            await client.HandshakeAsync(tlsOptions);
        }

        return client;
    }

    public async Task SendAsync(string xml)
    {
        var bytes = Encoding.UTF8.GetBytes(xml);
        await _stream.WriteAsync(bytes).AsTask().WaitAsync(Timeout);
        await _stream.FlushAsync().WaitAsync(Timeout);
    }

    public async Task SendBytesAsync(byte[] bytes)
    {
        await _stream.WriteAsync(bytes).AsTask().WaitAsync(Timeout);
        await _stream.FlushAsync().WaitAsync(Timeout);
    }

    /// <summary>Opens (or re-opens) the stream and reads the server's header and features.</summary>
    public Task<Element> OpenAsync(string to = "localhost") =>
        OpenWithHeaderAsync($"<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='{to}' version='1.0'>");

    /// <summary>A server-to-server stream header (jabber:server with the dialback namespace).</summary>
    public Task<Element> OpenServerStreamAsync(string from, string to) =>
        OpenWithHeaderAsync($"<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' from='{from}' to='{to}' version='1.0'>");

    public async Task<Element> OpenWithHeaderAsync(string header)
    {
        _reader?.Dispose();
        _reader = new XmppStreamReader(_stream);
        await SendAsync(header);
        var ev = await _reader.ReadAsync(CancellationToken.None).AsTask().WaitAsync(Timeout);
        Assert.That(ev.Kind, Is.EqualTo(XmppStreamEventKind.Header));
        ServerHeader = ev.Header;
        Features = await ReadAsync();
        return Features;
    }

    /// <summary>A XEP-0114 component stream: sends the header, reads the server's (no features follow); returns the stream id.</summary>
    public async Task<string> OpenComponentAsync(string domain)
    {
        _reader?.Dispose();
        _reader = new XmppStreamReader(_stream);
        await SendAsync($"<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='{domain}'>");
        var ev = await _reader.ReadAsync(CancellationToken.None).AsTask().WaitAsync(Timeout);
        Assert.That(ev.Kind, Is.EqualTo(XmppStreamEventKind.Header));
        ServerHeader = ev.Header;
        return ev.Header!.Id!;
    }

    public void ResetReader()
    {
        _reader?.Dispose();
        _reader = new XmppStreamReader(_stream);
    }

    public Task<Element> ReadAsync() => ReadWithinAsync(Timeout);

    /// <summary>The next element, waiting at most <paramref name="timeout"/> (for what the server does after a failure detection).</summary>
    public async Task<Element> ReadWithinAsync(TimeSpan timeout)
    {
        var ev = await _reader!.ReadAsync(CancellationToken.None).AsTask().WaitAsync(timeout);
        if (ev.Kind == XmppStreamEventKind.Header)
        {
            ServerHeader = ev.Header;
            ev = await _reader.ReadAsync(CancellationToken.None).AsTask().WaitAsync(timeout);
        }

        Assert.That(ev.Kind, Is.EqualTo(XmppStreamEventKind.Element), "expected an element, got " + ev.Kind);
        Received?.Add(ev.Element!);
        return ev.Element!;
    }

    /// <summary>When set, every element read is added to it (including those <see cref="ReadUntilAsync"/> skips).</summary>
    public List<Element>? Received { get; set; }

    /// <summary>The next element, or null when the stream ends or the connection drops (no assertion).</summary>
    public Task<Element?> ReadOrEndAsync() => ReadOrEndAsync(Timeout);

    /// <summary>The next element within <paramref name="timeout"/>, or null when the stream ends or the connection drops.</summary>
    public async Task<Element?> ReadOrEndAsync(TimeSpan timeout)
    {
        while (true)
        {
            XmppStreamEvent ev;
            try
            {
                ev = await _reader!.ReadAsync(CancellationToken.None).AsTask().WaitAsync(timeout);
            }
            catch (Exception ex) when (ex is IOException or System.Net.Sockets.SocketException or ObjectDisposedException or XmppStreamException)
            {
                return null;
            }

            switch (ev.Kind)
            {
                case XmppStreamEventKind.Element:
                    return ev.Element;
                case XmppStreamEventKind.Header:
                    continue;
                default:
                    return null;
            }
        }
    }

    /// <summary>Reads until an element matching the predicate arrives (skipping others, such as presence echoes).</summary>
    public async Task<Element> ReadUntilAsync(Func<Element, bool> predicate)
    {
        while (true)
        {
            var e = await ReadAsync();
            if (predicate(e))
            {
                return e;
            }
        }
    }

    /// <summary>Reads what the server sends until the stream ends; returns the stream error condition, if any.</summary>
    public async Task<string?> ReadStreamErrorAsync()
    {
        while (true)
        {
            var ev = await _reader!.ReadAsync(CancellationToken.None).AsTask().WaitAsync(Timeout);
            if (ev.Kind is XmppStreamEventKind.End or XmppStreamEventKind.Eof)
            {
                return null;
            }

            if (ev.Kind == XmppStreamEventKind.Element && ev.Element!.Is("error", Ns.Stream))
            {
                var condition = ev.Element.FirstElement()!.Name;
                var end = await _reader.ReadAsync(CancellationToken.None).AsTask().WaitAsync(Timeout);
                Assert.That(end.Kind, Is.AnyOf(XmppStreamEventKind.End, XmppStreamEventKind.Eof));
                return condition;
            }
        }
    }

    /// <summary>Opens the stream, negotiates STARTTLS and opens it again: ready for SASL.</summary>
    public async Task<Element> OpenTlsAsync(SslClientAuthenticationOptions? options = null)
    {
        await OpenAsync();
        await StartTlsAsync(options);
        return await OpenAsync();
    }

    /// <param name="options">Client TLS options (versions, cipher suites); TLS 1.2 or 1.3 to localhost when null.</param>
    public async Task StartTlsAsync(SslClientAuthenticationOptions? options = null)
    {
        await SendAsync("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
        var proceed = await ReadAsync();
        Assert.That(proceed.Name, Is.EqualTo("proceed"));
        await HandshakeAsync(options);
    }

    private async Task HandshakeAsync(SslClientAuthenticationOptions? options = null)
    {
        var ssl = new SslStream(_stream, false, (_, _, _, _) => true);
        await ssl.AuthenticateAsClientAsync(options ?? new SslClientAuthenticationOptions
        {
            TargetHost = "localhost",
            EnabledSslProtocols = System.Security.Authentication.SslProtocols.Tls12 | System.Security.Authentication.SslProtocols.Tls13,
        }).WaitAsync(Timeout);
        Tls = ssl;
        _stream = ssl;
    }

    /// <summary>Runs a SASL exchange; returns the success or failure element.</summary>
    /// <param name="supportsBinding">Without a binding type: send the gs2 flag "y" rather than "n".</param>
    public async Task<Element> AuthenticateAsync(string mechanism, string user, string password, string? bindingType = null, bool supportsBinding = false)
    {
        if (mechanism == "PLAIN")
        {
            var plain = Convert.ToBase64String(Encoding.UTF8.GetBytes($"\0{user}\0{password}"));
            await SendAsync($"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{plain}</auth>");
            return await ReadAsync();
        }

        var hash = mechanism.Contains("512", StringComparison.Ordinal) ? ScramHash.Sha512 : mechanism.Contains("256", StringComparison.Ordinal) ? ScramHash.Sha256 : ScramHash.Sha1;
        byte[]? cbData = null;
        if (bindingType == ChannelBindingTypes.TlsExporter)
        {
            cbData = TlsExporter.ChannelBinding(Tls!);
            Assert.That(cbData, Is.Not.Null, "tls-exporter data");
        }
        else if (bindingType == ChannelBindingTypes.TlsUnique)
        {
            // As Python's ssl module computes it (slixmpp sends this), and as .NET's own API gives it on this end.
            cbData = OpenSslFinished.Compute(Tls!);
            Assert.That(cbData, Is.Not.Null.And.Not.Empty, "tls-unique data");
            Assert.That(Xmpp.Server.Tls.TlsUnique.ChannelBinding(Tls!), Is.EqualTo(cbData), "SslStream's GetChannelBinding(Unique) on the client side");
        }
        else if (bindingType == ChannelBindingTypes.TlsServerEndPoint)
        {
            using var cert = new X509Certificate2(Tls!.RemoteCertificate!);
            cbData = Xmpp.Server.Tls.HostCertificate.ComputeEndPointBinding(cert);
        }

        var scram = new ScramClient(hash, user, password, bindingType: bindingType, bindingData: cbData, supportsBinding: supportsBinding);
        await SendAsync($"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='{mechanism}'>{B64(scram.ClientFirst())}</auth>");
        var challenge = await ReadAsync();
        if (challenge.Name != "challenge")
        {
            return challenge;
        }

        await SendAsync($"<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{B64(scram.ClientFinal(Encoding.UTF8.GetString(Convert.FromBase64String(challenge.Text))))}</response>");
        var result = await ReadAsync();
        if (result.Name == "success")
        {
            Assert.That(scram.VerifyServerFinal(Encoding.UTF8.GetString(Convert.FromBase64String(result.Text))), Is.True, "server signature");
        }

        return result;
    }

    /// <summary>STARTTLS (unless direct TLS) and SASL, no bind; returns the features after the restart.</summary>
    public async Task<Element> AuthenticateOnlyAsync(string user, string password)
    {
        await OpenAsync();
        await StartTlsAsync();
        await OpenAsync();
        var result = await AuthenticateAsync("SCRAM-SHA-256", user, password);
        Assert.That(result.Name, Is.EqualTo("success"), result.ToString());
        return await OpenAsync();
    }

    /// <summary>STARTTLS (unless direct TLS), SASL, bind, initial presence optional.</summary>
    public async Task<string> LoginAsync(string user, string password, string mechanism = "SCRAM-SHA-256", string? resource = "test", string? bindingType = null)
    {
        if (ServerHeader is null)
        {
            await OpenAsync();
        }

        if (Tls is null)
        {
            await StartTlsAsync();
            await OpenAsync();
        }

        var result = await AuthenticateAsync(mechanism, user, password, bindingType);
        Assert.That(result.Name, Is.EqualTo("success"), result.ToString());
        var features = await OpenAsync();
        Assert.That(features.Child("bind", Ns.Bind), Is.Not.Null);
        var res = resource is null ? string.Empty : $"<resource>{resource}</resource>";
        await SendAsync($"<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>{res}</bind></iq>");
        var bound = await ReadAsync();
        Assert.That(bound.GetAttribute("type"), Is.EqualTo("result"), bound.ToString());
        BoundJid = bound.Child("bind", Ns.Bind)!.ChildText("jid", Ns.Bind);
        return BoundJid!;
    }

    public async Task<Element> IqAsync(string xml)
    {
        await SendAsync(xml);
        var id = System.Text.RegularExpressions.Regex.Match(xml, "id='([^']+)'").Groups[1].Value;
        return await ReadUntilAsync(e => e.Name == "iq" && e.GetAttribute("id") == id);
    }

    /// <summary>
    /// A barrier: pings the server and returns everything that arrived before the answer. The server handles
    /// a connection's stanzas in order and queues deliveries synchronously, so whatever an earlier stanza
    /// caused for this client has arrived by then.
    /// </summary>
    public async Task<List<Element>> DrainAsync(string server = "localhost")
    {
        var id = "sync" + Interlocked.Increment(ref _syncId).ToString(System.Globalization.CultureInfo.InvariantCulture);
        await SendAsync($"<iq type='get' id='{id}' to='{server}'><ping xmlns='urn:xmpp:ping'/></iq>");
        var seen = new List<Element>();
        while (true)
        {
            var e = await ReadAsync();
            if (e.Name == "iq" && e.GetAttribute("id") == id)
            {
                return seen;
            }

            seen.Add(e);
        }
    }

    /// <summary>Resets the TCP connection (RST), as a crashed client or a lost network would.</summary>
    public void Abort()
    {
        _tcp.Client.LingerState = new LingerOption(true, 0);
        _tcp.Client.Close();
    }

    /// <summary>Sends the closing tag and waits for the server's.</summary>
    public async Task CloseAsync()
    {
        await SendAsync("</stream:stream>");
        while (true)
        {
            var ev = await _reader!.ReadAsync(CancellationToken.None).AsTask().WaitAsync(Timeout);
            if (ev.Kind is XmppStreamEventKind.End or XmppStreamEventKind.Eof)
            {
                return;
            }
        }
    }

    private static string B64(string s) => Convert.ToBase64String(Encoding.UTF8.GetBytes(s));

    public async ValueTask DisposeAsync()
    {
        try
        {
            _reader?.Dispose();
        }
        catch (InvalidOperationException)
        {
            // A timed-out read is still pending on it.
        }

        try
        {
            await _stream.DisposeAsync();
        }
        catch (IOException)
        {
        }

        _tcp.Dispose();
    }
}
