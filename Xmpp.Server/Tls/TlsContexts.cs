using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using NLog;

namespace Xmpp.Server.Tls;

/// <summary>
/// Builds the TLS options of every stream (c2s, s2s both ways, HTTPS) and checks every handshake against
/// <see cref="TlsPolicy"/>.
/// <para>
/// Why the options carry no CipherSuitesPolicy on Linux: .NET there (Interop.OpenSsl.AllocateSslHandle)
/// makes connections from one shared SSL_CTX per side, protocols, certificate and, for a server, ALPN or
/// not (a process-wide cache), but only when no CipherSuitesPolicy is given. With one, every connection
/// builds its own SSL_CTX with the certificate, about 12 KiB each (bench/README.md). So the shared SSL_CTX
/// itself is restricted to the policy's suites before any connection uses it: on first use of a
/// certificate for a <see cref="TlsRole"/>, a handshake with ourselves in memory makes the runtime create
/// it; it is restricted (SSL_CTX_set_cipher_list, SSL_CTX_set_ciphersuites) and checked: a second
/// handshake must get the same context, and its connection the policy's suites only. The first connection
/// stays open for the certificate's life, holding the runtime's reference on the context, so that the
/// cache never evicts it and builds an unrestricted one in its place.
/// </para>
/// <para>
/// Fail-safe: when any of that is not as expected (another runtime or OpenSSL), the options carry the
/// CipherSuitesPolicy again, at the old memory cost, with one warning. Every handshake is checked after the
/// fact too: a connection whose negotiated suite, or whose list of suites, is outside the policy is closed,
/// and from then on every connection has the policy in its options.
/// </para>
/// </summary>
public sealed class TlsContexts
{
    /// <summary>The name our in-memory handshakes give (a reserved name: RFC 2606).</summary>
    private const string PreparationHost = "tls-context.invalid";

    private static readonly TimeSpan PreparationTimeout = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Serializes restricting shared contexts. The runtime's cache of them is process-wide (a native resource
    /// of the process, Interop.OpenSsl's s_sslContexts), so this gate is too: two servers in one process (the
    /// tests) with the same certificate must not configure its context at the same time.
    /// </summary>
    private static readonly SemaphoreSlim PreparationGate = new(1, 1);

    private readonly Logger _log;
    private readonly Func<SslStream, IntPtr> _contextOf;
    private int _fallenBack;

    public TlsContexts(Logger log)
        : this(log, OpenSsl.ContextOf)
    {
    }

    /// <param name="log">Where the one warning goes.</param>
    /// <param name="contextOf">How a connection's SSL_CTX is found (tests replace it to play another runtime).</param>
    internal TlsContexts(Logger log, Func<SslStream, IntPtr> contextOf)
    {
        _log = log;
        _contextOf = contextOf;
    }

    /// <summary>Whether connections share restricted contexts: false off Linux, and once fallen back to a policy per connection.</summary>
    public bool Sharing => OperatingSystem.IsLinux() && Volatile.Read(ref _fallenBack) == 0;

    /// <summary>Options for a handshake as the server with a host's certificate.</summary>
    public async ValueTask<SslServerAuthenticationOptions> ServerOptionsAsync(HostCertificate certificate, IReadOnlyList<SslApplicationProtocol>? protocols, bool requestClientCertificate, CancellationToken ct)
    {
        var role = protocols is { Count: > 0 } ? TlsRole.ServerWithAlpn : TlsRole.Server;
        var shared = await SharedAsync(certificate, role, ct).ConfigureAwait(false);
        return ServerOptions(certificate, protocols, requestClientCertificate, shared);
    }

    /// <summary>Options for a handshake as the client, offering a host's certificate.</summary>
    public async ValueTask<SslClientAuthenticationOptions> ClientOptionsAsync(HostCertificate certificate, string targetHost, IReadOnlyList<SslApplicationProtocol>? protocols, RemoteCertificateValidationCallback validate, CancellationToken ct)
    {
        // The runtime shares no context for a client without a host name to key its sessions by.
        var shared = !string.IsNullOrEmpty(targetHost) && !System.Net.IPAddress.TryParse(targetHost, out _) &&
            await SharedAsync(certificate, TlsRole.Client, ct).ConfigureAwait(false);
        return ClientOptions(certificate, targetHost, protocols, validate, shared);
    }

    /// <summary>
    /// The options callback of a handshake as the server: the certificate chosen by the name the client asked
    /// for (SNI, null without), then <see cref="ServerOptionsAsync"/>. <paramref name="chosen"/> learns the
    /// certificate. After the handshake, <see cref="Established"/> must accept the connection.
    /// </summary>
    public ServerOptionsSelectionCallback ServerOptionsCallback(Func<string?, HostCertificate> certificateFor, IReadOnlyList<SslApplicationProtocol>? protocols, bool requestClientCertificate, Action<HostCertificate>? chosen = null) =>
        (_, hello, _, token) =>
        {
            var certificate = certificateFor(hello.ServerName);
            chosen?.Invoke(certificate);
            return ServerOptionsAsync(certificate, protocols, requestClientCertificate, token);
        };

    /// <summary>
    /// The handshake as the server on a stream of one's own (the certificate chosen by the name the client asked
    /// for), checked (<see cref="Established"/>), its idle buffers released; the stream is disposed when it fails.
    /// </summary>
    public async Task<HostCertificate> AuthenticateAsServerAsync(SslStream ssl, Func<string?, HostCertificate> certificateFor, IReadOnlyList<SslApplicationProtocol>? protocols, bool requestClientCertificate, CancellationToken ct)
    {
        HostCertificate? chosen = null;
        await ssl.AuthenticateAsServerAsync(ServerOptionsCallback(certificateFor, protocols, requestClientCertificate, c => chosen = c), null, ct).ConfigureAwait(false);
        EstablishedOrDispose(ssl);
        return chosen!;
    }

    /// <summary>The handshake as the client on a stream of one's own; as <see cref="AuthenticateAsServerAsync"/>.</summary>
    public async Task AuthenticateAsClientAsync(SslStream ssl, HostCertificate certificate, string targetHost, IReadOnlyList<SslApplicationProtocol>? protocols, RemoteCertificateValidationCallback validate, CancellationToken ct)
    {
        var options = await ClientOptionsAsync(certificate, targetHost, protocols, validate, ct).ConfigureAwait(false);
        await ssl.AuthenticateAsClientAsync(options, ct).ConfigureAwait(false);
        EstablishedOrDispose(ssl);
    }

    /// <summary>
    /// After every handshake made with these options: an <see cref="AuthenticationException"/> when
    /// <see cref="Check"/> fails (the caller closes the connection).
    /// </summary>
    public void Established(SslStream ssl)
    {
        if (!Check(ssl))
        {
            throw new AuthenticationException("the TLS connection could negotiate suites outside the policy");
        }
    }

    private void EstablishedOrDispose(SslStream ssl)
    {
        try
        {
            Established(ssl);
        }
        catch (AuthenticationException)
        {
            ssl.Dispose();
            throw;
        }

        OpenSsl.ReleaseBuffersWhenIdle(ssl);
    }

    /// <summary>
    /// Whether a connection is within the policy: its negotiated suite, and (where it can be read) every suite
    /// its SSL could have negotiated. When not, everything falls back to the policy per connection.
    /// </summary>
    public bool Check(SslStream ssl)
    {
        if (TlsPolicy.CipherSuites is null)
        {
            // Windows: the system's policy applies.
            return true;
        }

        if (!TlsPolicy.Allows(ssl.NegotiatedCipherSuite))
        {
            FallBack($"a connection negotiated {ssl.NegotiatedCipherSuite}");
            return false;
        }

        if (OpenSsl.CipherSuitesOf(ssl) is { } suites && !WithinPolicy(suites))
        {
            FallBack("a connection could have negotiated " + string.Join(' ', suites.Where(s => !TlsPolicy.Allows(s))));
            return false;
        }

        return true;
    }

    private static bool WithinPolicy(TlsCipherSuite[]? suites) => suites is { Length: > 0 } && suites.All(TlsPolicy.Allows);

    private static SslServerAuthenticationOptions ServerOptions(HostCertificate certificate, IReadOnlyList<SslApplicationProtocol>? protocols, bool requestClientCertificate, bool shared) => new()
    {
        ServerCertificateContext = certificate.Context,
        EnabledSslProtocols = TlsPolicy.Protocols,

        // Without a policy the runtime makes the connection from the shared context, restricted to it; it
        // shares contexts only with resumption allowed.
        CipherSuitesPolicy = shared ? null : TlsPolicy.CipherSuites,
        AllowTlsResume = true,
        ClientCertificateRequired = requestClientCertificate,
        CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
        AllowRenegotiation = false,
        ApplicationProtocols = protocols is null ? null : [.. protocols],
    };

    private static SslClientAuthenticationOptions ClientOptions(HostCertificate certificate, string targetHost, IReadOnlyList<SslApplicationProtocol>? protocols, RemoteCertificateValidationCallback validate, bool shared) => new()
    {
        TargetHost = targetHost,
        EnabledSslProtocols = TlsPolicy.Protocols,
        CipherSuitesPolicy = shared ? null : TlsPolicy.CipherSuites,
        AllowTlsResume = true,
        CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
        ClientCertificateContext = certificate.Context,
        RemoteCertificateValidationCallback = validate,
        ApplicationProtocols = protocols is null ? null : [.. protocols],
    };

    private async ValueTask<bool> SharedAsync(HostCertificate certificate, TlsRole role, CancellationToken ct)
    {
        if (!Sharing)
        {
            return false;
        }

        var ready = await certificate.SharedContexts.ReadyAsync(role, () => PrepareAsync(certificate, role)).WaitAsync(ct).ConfigureAwait(false);
        return ready && Sharing;
    }

    [System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1031", Justification = "Whatever goes wrong here, connections fall back to the policy in their options, which is safe.")]
    private async Task<bool> PrepareAsync(HostCertificate certificate, TlsRole role)
    {
        await PreparationGate.WaitAsync().ConfigureAwait(false);
        try
        {
            using var timeout = new CancellationTokenSource(PreparationTimeout);
            var problem = await RestrictAsync(certificate, role, timeout.Token).ConfigureAwait(false);
            if (problem is not null)
            {
                FallBack(problem);
                return false;
            }

            _log.Debug("TLS: {Role} connections with the certificate of {Host} share one SSL_CTX restricted to the policy", role, certificate.Host);

            // Retired meanwhile (a reload): the context is no longer held, so these connections have the policy.
            return !certificate.SharedContexts.Disposed;
        }
        catch (Exception ex)
        {
            FallBack($"{ex.GetType().Name}: {ex.Message}");
            return false;
        }
        finally
        {
            PreparationGate.Release();
        }
    }

    /// <summary>Restricts and checks the role's shared context; null when done, else what was not as expected.</summary>
    private async Task<string?> RestrictAsync(HostCertificate certificate, TlsRole role, CancellationToken ct)
    {
        var first = await HandshakeAsync(certificate, role, ct).ConfigureAwait(false);
        var kept = false;
        try
        {
            var context = _contextOf(first);
            if (context == IntPtr.Zero)
            {
                return "the SSL_CTX of a connection was not found";
            }

            // Already restricted when another certificate object with the same certificate (a reload) did it:
            // then other connections may be using it, and it must not be written again.
            if (!WithinPolicy(OpenSsl.CipherSuitesOfContext(context)) &&
                !OpenSsl.RestrictContext(context, TlsPolicy.OpenSslCipherList, TlsPolicy.OpenSslCipherSuites))
            {
                return "OpenSSL refused the policy's cipher list";
            }

            using (var second = await HandshakeAsync(certificate, role, ct).ConfigureAwait(false))
            {
                if (_contextOf(second) != context)
                {
                    return "two connections did not share one SSL_CTX";
                }

                if (!WithinPolicy(OpenSsl.CipherSuitesOf(second)))
                {
                    return "a connection made from the restricted SSL_CTX did not have the policy's suites";
                }
            }

            certificate.SharedContexts.Keep(first);
            kept = true;
            return null;
        }
        finally
        {
            if (!kept)
            {
                await first.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// A handshake in memory between our options for the role (shared context) and a peer with the policy in
    /// its options (a context of its own, touching no shared one); returns our end. TLS 1.3 only, so that the
    /// server stores no session.
    /// </summary>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Security", "CA5359", Justification = "Our own certificate, in a handshake with ourselves in memory that carries no data.")]
    private static async Task<SslStream> HandshakeAsync(HostCertificate certificate, TlsRole role, CancellationToken ct)
    {
        var (a, b) = MemoryDuplexStream.CreatePair();
        var ours = new SslStream(a, leaveInnerStreamOpen: false);
        var peer = new SslStream(b, leaveInnerStreamOpen: false);
        RemoteCertificateValidationCallback acceptAny = (_, _, _, _) => true;
        var done = false;
        try
        {
            Task[] handshakes;
            if (role == TlsRole.Client)
            {
                var peerOptions = ServerOptions(certificate, null, requestClientCertificate: false, shared: false);
                peerOptions.EnabledSslProtocols = SslProtocols.Tls13;
                handshakes =
                [
                    ours.AuthenticateAsClientAsync(ClientOptions(certificate, PreparationHost, null, acceptAny, shared: true), ct),
                    peer.AuthenticateAsServerAsync(peerOptions, ct),
                ];
            }
            else
            {
                var peerOptions = ClientOptions(certificate, PreparationHost, null, acceptAny, shared: false);
                peerOptions.EnabledSslProtocols = SslProtocols.Tls13;
                peerOptions.ClientCertificateContext = null;
                var protocols = role == TlsRole.ServerWithAlpn ? new[] { new SslApplicationProtocol("xmpp-client") } : null;
                handshakes =
                [
                    ours.AuthenticateAsServerAsync(ServerOptions(certificate, protocols, requestClientCertificate: false, shared: true), ct),
                    peer.AuthenticateAsClientAsync(peerOptions, ct),
                ];
            }

            // When one end fails, the other would wait for the timeout: closing both ends it now.
            if (!(await Task.WhenAny(handshakes).ConfigureAwait(false)).IsCompletedSuccessfully)
            {
                await ours.DisposeAsync().ConfigureAwait(false);
                await peer.DisposeAsync().ConfigureAwait(false);
            }

            await Task.WhenAll(handshakes).ConfigureAwait(false);
            done = true;
            return ours;
        }
        finally
        {
            await peer.DisposeAsync().ConfigureAwait(false);
            if (!done)
            {
                await ours.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    private void FallBack(string reason)
    {
        if (Interlocked.Exchange(ref _fallenBack, 1) == 0)
        {
            _log.Warn(
                "TLS: connections cannot share an SSL_CTX restricted to the policy ({Reason}); each now builds its own with the policy, about 12 KiB more memory per connection",
                reason);
        }
    }
}
