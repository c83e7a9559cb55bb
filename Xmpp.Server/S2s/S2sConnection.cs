using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using NLog;
using Xmpp.Core;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;
using Xmpp.Server.Hosting;
using Xmpp.Server.Net;
using Xmpp.Server.Tls;

namespace Xmpp.Server.S2s;

/// <summary>
/// What incoming and outgoing server-to-server streams share: the transport (with TLS), the output queue
/// (stanzas written in jabber:server), the stream header with the dialback namespace, closing.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Reliability", "CA1001", Justification = "RunAsync owns the transport and disposes it in its teardown.")]
public abstract class S2sConnection : IConnection
{
    private readonly OutputQueue _out;
    private int _closing;
    private bool _headerSent;

    protected S2sConnection(ServerContext ctx, S2sManager manager, string loggerName, CancellationToken shutdown)
    {
        Ctx = ctx;
        Manager = manager;
        Log = ctx.Logs.GetLogger(loggerName);
        Cts = CancellationTokenSource.CreateLinkedTokenSource(shutdown);
        ConnectionId = ctx.Connections.NextId();
        _out = new OutputQueue(() => Transport!, Ns.Server, ctx.Metrics);
    }

    public long ConnectionId { get; }

    protected ServerContext Ctx { get; }

    protected S2sManager Manager { get; }

    protected Logger Log { get; }

    protected CancellationTokenSource Cts { get; }

    protected Socket? Socket { get; set; }

    protected ActivityStream? Activity { get; set; }

    protected Stream? Transport { get; set; }

    protected bool Tls { get; private set; }

    /// <summary>The peer's certificate, once TLS is up (null if it sent none).</summary>
    protected X509Certificate2? PeerCertificate { get; private set; }

    protected bool IsClosing => Volatile.Read(ref _closing) != 0;

    /// <summary>Our side's local domain (for the closing header when nothing was sent yet).</summary>
    protected abstract string LocalDomain { get; }

    public abstract Task RunAsync();

    public abstract void CheckIdle(long now);

    protected void Attach(Socket socket)
    {
        Socket = socket;
        Activity = new ActivityStream(new NetworkStream(socket, ownsSocket: true));
        Transport = Activity;
    }

    protected Task WriterAsync() => _out.RunAsync(
        reason =>
        {
            Log.Debug("s2s writer stopped: {Reason}", reason);
            try
            {
                Cts.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // Already torn down.
            }
        },
        Cts.Token);

    protected XmppStreamReader NewReader() => new(Transport!, new XmlReaderLimits
    {
        MaxStanzaBytes = Ctx.Options.Limits.S2sStanzaSize,
        MaxDepth = Ctx.Options.Limits.MaxDepth,
        MaxAttributes = Ctx.Options.Limits.MaxAttributes,
        MaxNamespaceDeclarations = Ctx.Options.Limits.MaxNamespaces,
        ContentNamespace = Ns.Server,
    });

    protected void SendHeader(string from, string? to, string? id)
    {
        _headerSent = true;
        var sb = new StringBuilder(320);
        sb.Append("<?xml version='1.0'?><stream:stream xmlns='").Append(Ns.Server)
          .Append("' xmlns:stream='").Append(Ns.Stream).Append("' xmlns:db='").Append(Ns.Dialback).Append('\'');
        if (id is not null)
        {
            sb.Append(" id='").Append(id).Append('\'');
        }

        sb.Append(" from='");
        ElementWriter.Escape(sb, from);
        sb.Append('\'');
        if (to is not null)
        {
            sb.Append(" to='");
            ElementWriter.Escape(sb, to);
            sb.Append('\'');
        }

        sb.Append(" version='1.0' xml:lang='en'>");
        SendRaw(sb.ToString());
    }

    protected void SendRaw(string xml) => _out.EnqueueRaw(xml);

    /// <summary>
    /// Writes a nonza. Dialback elements are written with the db: prefix declared on the stream header:
    /// COMPAT: ejabberd 23 (its xmpp codec matches the literal name "db:result") ignores an unprefixed
    /// &lt;result xmlns='jabber:server:dialback'/&gt;, although it is the same element in XML namespaces.
    /// </summary>
    protected void SendElement(Element e)
    {
        var sb = new StringBuilder(256);
        if (e.Namespace != Ns.Dialback)
        {
            ElementWriter.Write(sb, e, Ns.Server, Ns.Server);
            SendRaw(sb.ToString());
            return;
        }

        sb.Append("<db:").Append(e.Name);
        foreach (var a in e.Attributes)
        {
            sb.Append(' ').Append(a.LocalName).Append("='");
            ElementWriter.Escape(sb, a.Value, attribute: true);
            sb.Append('\'');
        }

        sb.Append('>');
        foreach (var n in e.Nodes)
        {
            if (n is Element child)
            {
                ElementWriter.Write(sb, child, Ns.Server, Ns.Server);
            }
            else
            {
                ElementWriter.Escape(sb, (string)n);
            }
        }

        sb.Append("</db:").Append(e.Name).Append('>');
        SendRaw(sb.ToString());
    }

    protected EnqueueResult Enqueue(Element stanza) =>
        IsClosing ? EnqueueResult.Closed : _out.TryEnqueue(stanza, Ctx.Options.S2s.QueueLimit, Ctx.Options.Limits.OutputBytes);

    protected Task FlushAsync() => _out.FlushAsync();

    /// <summary>Stanzas queued but never written (the stream failed), for bouncing.</summary>
    protected List<Element> Unsent() => _out.Drain();

    public void Close(StreamError? streamError)
    {
        if (Interlocked.Exchange(ref _closing, 1) != 0)
        {
            return;
        }

        if (streamError is not null)
        {
            Ctx.Metrics.StreamError("s2s", streamError.Condition);
        }

        string? header = null;
        if (!_headerSent)
        {
            _headerSent = true;
            header = "<?xml version='1.0'?><stream:stream xmlns='" + Ns.Server + "' xmlns:stream='" + Ns.Stream + "' from='" + LocalDomain + "' version='1.0'>";
        }

        _out.Close(header, streamError);
        try
        {
            Cts.CancelAfter(Ctx.Options.Limits.CloseTimeout);
        }
        catch (ObjectDisposedException)
        {
            // Already torn down.
        }
    }

    /// <summary>TLS as the receiving server: our certificate for the domain, the peer's certificate requested.</summary>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Security", "CA5359", Justification = "The peer's certificate is checked right after the handshake against the domain it claims (PeerCertificates); an untrusted one may still authenticate by dialback, as federation requires.")]
    protected async Task StartTlsAsServerAsync(string? domain, bool directTls, CancellationToken ct)
    {
        var ssl = new SslStream(Transport!, leaveInnerStreamOpen: false, (_, cert, _, _) =>
        {
            // Validated afterwards against the domain the peer claims (PeerCertificates).
            return true;
        });
        await ssl.AuthenticateAsServerAsync(
            (_, hello, _, _) =>
            {
                var chosen = Ctx.Certificates.Find(domain ?? hello.ServerName) ?? Ctx.Certificates.Default;
                return ValueTask.FromResult(new SslServerAuthenticationOptions
                {
                    ServerCertificateContext = chosen.Context,
                    EnabledSslProtocols = TlsPolicy.Protocols,
                    CipherSuitesPolicy = TlsPolicy.CipherSuites,
                    ClientCertificateRequired = true,
                    CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
                    AllowRenegotiation = false,
                    ApplicationProtocols = directTls ? [new SslApplicationProtocol("xmpp-server")] : null,
                });
            },
            null,
            ct).ConfigureAwait(false);
        OnTls(ssl);
    }

    /// <summary>TLS as the initiating server: SNI is the remote domain, our certificate offered for SASL EXTERNAL.</summary>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Security", "CA5359", Justification = "The peer's certificate is checked right after the handshake against the domain it claims (PeerCertificates); an untrusted one may still authenticate by dialback, as federation requires.")]
    protected async Task StartTlsAsClientAsync(string remoteDomain, string localDomain, bool directTls, CancellationToken ct)
    {
        var ssl = new SslStream(Transport!, leaveInnerStreamOpen: false);
        var ours = Ctx.Certificates.Find(localDomain) ?? Ctx.Certificates.Default;
        await ssl.AuthenticateAsClientAsync(
            new SslClientAuthenticationOptions
            {
                TargetHost = remoteDomain,
                EnabledSslProtocols = TlsPolicy.Protocols,
                CipherSuitesPolicy = TlsPolicy.CipherSuites,
                CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
                ClientCertificateContext = ours.Context,
                RemoteCertificateValidationCallback = (_, _, _, _) => true,
                ApplicationProtocols = directTls ? [new SslApplicationProtocol("xmpp-server")] : null,
            },
            ct).ConfigureAwait(false);
        OnTls(ssl);
    }

    private void OnTls(SslStream ssl)
    {
        OpenSsl.ReleaseBuffersWhenIdle(ssl);
        Transport = ssl;
        Tls = true;
        PeerCertificate = ssl.RemoteCertificate is null ? null : new X509Certificate2(ssl.RemoteCertificate);
        Log.Info("s2s TLS established: {Protocol} {Cipher}", ssl.SslProtocol, ssl.NegotiatedCipherSuite);
    }

    /// <summary>Closes the transport after the writer has finished (or timed out).</summary>
    protected async Task DisposeTransportAsync(Task writer)
    {
        Close(null);
        await Teardown.ReleaseAsync(writer, Ctx.Options.Limits.CloseTimeout, Cts, Transport, Socket, Log).ConfigureAwait(false);
        PeerCertificate?.Dispose();
    }

}
