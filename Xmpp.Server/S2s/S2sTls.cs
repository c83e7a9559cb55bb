using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using NLog;
using Xmpp.Core.Xml;
using Xmpp.Server.Hosting;
using Xmpp.Server.Streams;
using Xmpp.Server.Tls;

namespace Xmpp.Server.S2s;

/// <summary>
/// What the incoming and the outgoing server-to-server streams share: their transport (jabber:server with the
/// db: prefix declared), the TLS options of each role, and the peer's certificate once TLS is up. The streams
/// themselves run on the connection core (<see cref="StreamConnection"/>).
/// </summary>
public static class S2sTls
{
    /// <summary>A byte-stream transport for a server-to-server stream on a connected or accepted socket.</summary>
    public static Streams.Transports.ByteStreamTransport Transport(ServerContext ctx, System.Net.Sockets.Socket socket, bool directTls) =>
        Streams.Transports.ByteStreamTransport.ForSocket(socket, ReaderLimits(ctx), Xmpp.Core.Ns.Server, dialback: true, description: directTls ? " (direct TLS)" : string.Empty);

    /// <summary>The restricted-XML limits of a server stream: jabber:server content, the s2s stanza size.</summary>
    public static XmlReaderLimits ReaderLimits(ServerContext ctx, string contentNamespace = Xmpp.Core.Ns.Server) => new()
    {
        MaxStanzaBytes = ctx.Options.Limits.S2sStanzaSize,
        MaxDepth = ctx.Options.Limits.MaxDepth,
        MaxAttributes = ctx.Options.Limits.MaxAttributes,
        MaxNamespaceDeclarations = ctx.Options.Limits.MaxNamespaces,
        ContentNamespace = contentNamespace,
    };

    private static readonly SslApplicationProtocol[] XmppServerProtocol = [new SslApplicationProtocol("xmpp-server")];

    /// <summary>
    /// TLS as the receiving server: our certificate for the domain (or the SNI name), the peer's certificate
    /// requested; options from the shared, policy-restricted contexts (<see cref="TlsContexts"/>).
    /// </summary>
    public static ServerOptionsSelectionCallback ServerOptions(ServerContext ctx, string? domain, bool directTls) =>
        ctx.Tls.ServerOptionsCallback(
            sni => ctx.Certificates.Find(domain ?? sni) ?? ctx.Certificates.Default,
            directTls ? XmppServerProtocol : null,
            requestClientCertificate: true);

    /// <summary>TLS as the initiating server: SNI is the remote domain, our certificate offered for SASL EXTERNAL.</summary>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Security", "CA5359", Justification = "The peer's certificate is checked right after the handshake against the domain it claims (PeerCertificates); an untrusted one may still authenticate by dialback, as federation requires.")]
    public static ValueTask<SslClientAuthenticationOptions> ClientOptionsAsync(ServerContext ctx, string remoteDomain, string localDomain, bool directTls, CancellationToken ct)
    {
        var ours = ctx.Certificates.Find(localDomain) ?? ctx.Certificates.Default;
        return ctx.Tls.ClientOptionsAsync(ours, remoteDomain, directTls ? XmppServerProtocol : null, (_, _, _, _) => true, ct);
    }

    /// <summary>Logs the negotiated TLS and returns a copy of the peer's certificate (null if it sent none), the caller's to dispose.</summary>
    public static X509Certificate2? Established(IStreamTransport transport, Logger log)
    {
        if (transport.Tls is not { } ssl)
        {
            return null;
        }

        log.Info("s2s TLS established: {Protocol} {Cipher}", ssl.SslProtocol, ssl.NegotiatedCipherSuite);
        return ssl.RemoteCertificate is null ? null : new X509Certificate2(ssl.RemoteCertificate);
    }
}
