using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Text;
using Xmpp.Core;
using Xmpp.Core.Sasl;
using Xmpp.Core.Xml;

namespace Xmpp.Bench;

/// <summary>
/// A minimal XMPP client for load: STARTTLS (any certificate), SCRAM-SHA-1 (the mechanism Prosody, ejabberd
/// and ours share), bind, then raw stanzas. Writes are serialised; reads happen on one loop per client.
/// </summary>
internal sealed class BenchClient : IAsyncDisposable
{
    private readonly TcpClient _tcp;
    private readonly SemaphoreSlim _write = new(1, 1);
    private Stream _stream;
    private XmppStreamReader? _reader;

    private BenchClient(TcpClient tcp)
    {
        _tcp = tcp;
        _stream = Stream.Null;
    }

    public string Jid { get; private set; } = string.Empty;

    /// <summary>A login that has not finished by then counts as failed (a server that never answers one).</summary>
    private static readonly TimeSpan LoginTimeout = TimeSpan.FromSeconds(30);

    public static async Task<BenchClient> LoginAsync(Target target, string user, string resource, CancellationToken cancellationToken)
    {
        var tcp = new TcpClient { NoDelay = true };
        var client = new BenchClient(tcp);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(LoginTimeout);
        var ct = timeout.Token;
        var step = "connect";
        try
        {
            await tcp.ConnectAsync(target.Host, target.Port, ct).ConfigureAwait(false);
            client._stream = tcp.GetStream();
            step = "stream header";
            var features = await client.OpenAsync(target.Domain, ct).ConfigureAwait(false);
            if (features.Child("starttls", Ns.Tls) is null)
            {
                throw new InvalidOperationException("no STARTTLS offered");
            }

            step = "starttls";
            await client.SendAsync("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>", ct).ConfigureAwait(false);
            var proceed = await client.ReadAsync(ct).ConfigureAwait(false);
            if (proceed?.Name != "proceed")
            {
                throw new InvalidOperationException("STARTTLS refused");
            }

            step = "TLS handshake";
            var ssl = new SslStream(client._stream, false, (_, _, _, _) => true);
            await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
            {
                TargetHost = target.Domain,
                EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
                AllowTlsResume = target.TlsResume,
            }, ct).ConfigureAwait(false);
            client._stream = ssl;
            await client.OpenAsync(target.Domain, ct).ConfigureAwait(false);

            step = "SASL";
            var scram = new ScramClient(ScramHash.Sha1, user, target.Password, saltedPassword: target.Scram.For(ScramHash.Sha1, user, target.Password));
            await client.SendAsync($"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>{B64(scram.ClientFirst())}</auth>", ct).ConfigureAwait(false);
            var challenge = await client.ReadAsync(ct).ConfigureAwait(false);
            if (challenge?.Name != "challenge")
            {
                throw new InvalidOperationException($"SASL: {challenge?.FirstElement()?.Name ?? challenge?.Name}");
            }

            var final = scram.ClientFinal(Encoding.UTF8.GetString(Convert.FromBase64String(challenge.Text)));
            await client.SendAsync($"<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{B64(final)}</response>", ct).ConfigureAwait(false);
            var success = await client.ReadAsync(ct).ConfigureAwait(false);
            if (success?.Name != "success")
            {
                throw new InvalidOperationException($"SASL: {success?.FirstElement()?.Name ?? success?.Name} for {user}");
            }

            step = "bind";
            var after = await client.OpenAsync(target.Domain, ct).ConfigureAwait(false);
            await client.SendAsync($"<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>{resource}</resource></bind></iq>", ct).ConfigureAwait(false);
            while (true)
            {
                var e = await client.ReadAsync(ct).ConfigureAwait(false) ?? throw new InvalidOperationException("closed during bind");
                if (e.Name == "iq" && e.GetAttribute("id") == "bind")
                {
                    client.Jid = e.Child("bind", Ns.Bind)?.ChildText("jid", Ns.Bind) ?? throw new InvalidOperationException("bind failed");
                    break;
                }
            }

            // Servers that still require the RFC 3921 session (none of ours, but old configurations) get it.
            if (after.Child("session", Ns.Session) is { } session && session.Child("optional", Ns.Session) is null)
            {
                await client.SendAsync("<iq type='set' id='sess'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>", ct).ConfigureAwait(false);
                while ((await client.ReadAsync(ct).ConfigureAwait(false))?.GetAttribute("id") != "sess")
                {
                }
            }

            return client;
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            await client.DisposeAsync().ConfigureAwait(false);
            throw new TimeoutException($"login of {user} timed out after {LoginTimeout.TotalSeconds:0} s at {step}");
        }
        catch
        {
            await client.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    public async Task SendAsync(string xml, CancellationToken ct)
    {
        var bytes = Encoding.UTF8.GetBytes(xml);
        await _write.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            await _stream.WriteAsync(bytes, ct).ConfigureAwait(false);
            await _stream.FlushAsync(ct).ConfigureAwait(false);
        }
        finally
        {
            _write.Release();
        }
    }

    /// <summary>The next element, or null when the stream ended.</summary>
    public async Task<Element?> ReadAsync(CancellationToken ct)
    {
        while (true)
        {
            var ev = await _reader!.ReadAsync(ct).ConfigureAwait(false);
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

    private async Task<Element> OpenAsync(string domain, CancellationToken ct)
    {
        _reader?.Dispose();
        _reader = new XmppStreamReader(_stream, new XmlReaderLimits { MaxStanzaBytes = 1 << 20 });
        await SendAsync($"<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='{domain}' version='1.0'>", ct).ConfigureAwait(false);
        var features = await ReadAsync(ct).ConfigureAwait(false);
        return features ?? throw new InvalidOperationException("no stream features");
    }

    private static string B64(string s) => Convert.ToBase64String(Encoding.UTF8.GetBytes(s));

    public async Task CloseAsync()
    {
        try
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            await SendAsync("</stream:stream>", cts.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException or SocketException)
        {
            // Already gone.
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            _reader?.Dispose();
        }
        catch (InvalidOperationException)
        {
            // A read is still pending.
        }

        try
        {
            await _stream.DisposeAsync().ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or SocketException)
        {
            // Already gone.
        }

        _tcp.Dispose();
        _write.Dispose();
    }
}

/// <summary>Where and as whom to connect: accounts are PREFIX1..PREFIXn on DOMAIN, all with one password.</summary>
internal sealed record Target(string Host, int Port, string Domain, string Prefix, string Password, ScramCache Scram)
{
    /// <summary>
    /// Whether a client may resume a TLS session an earlier client of this process was given (.NET caches the
    /// tickets per host): the default, as clients that reconnect do. Off (--tls-resume false), every login is a
    /// full handshake with the certificate's signature, as after a server restart.
    /// </summary>
    public bool TlsResume { get; init; } = true;

    public string User(int i) => Prefix + i.ToString(System.Globalization.CultureInfo.InvariantCulture);
}
