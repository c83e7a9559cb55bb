using System.Net;
using NLog;
using Xmpp.Core.Sasl;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;
using Xmpp.Server.Sessions;

namespace Xmpp.Server.Streams;

/// <summary>
/// A client stream as the modules that extend the stream level see it (XEP-0198 stream management, XEP-0388
/// SASL2, XEP-0386 Bind2, XEP-0352 client state): its state, what it negotiated, and the few transitions a
/// module may make happen.
/// </summary>
public interface IC2sContext
{
    C2sState State { get; }

    long ConnectionId { get; }

    IPEndPoint Remote { get; }

    Logger Log { get; }

    /// <summary>The host the client asked for in its stream header, once known.</summary>
    string? Host { get; }

    /// <summary>The account's username once authenticated.</summary>
    string? User { get; }

    /// <summary>The bound session, once a resource is bound (or a session resumed).</summary>
    ClientSession? Session { get; }

    bool IsSecure { get; }

    /// <summary>The channel bindings of the stream's TLS, null without TLS negotiated on this transport.</summary>
    IChannelBindingSource? ChannelBinding { get; }

    /// <summary>The SASL mechanisms this stream offers (RFC 6120 §6.3.3), -PLUS first.</summary>
    IReadOnlyList<string> Mechanisms { get; }

    /// <summary>The stream's SASL exchanges and their accounting (shared by every profile).</summary>
    SaslNegotiation Sasl { get; }

    /// <summary>Queues a first-level element that is not a stanza.</summary>
    void Send(Element element);

    Task FlushAsync();

    /// <summary>
    /// A profile without a stream restart (XEP-0388) authenticated the account: the stream goes on to binding.
    /// <paramref name="profile"/> names it in the log line.
    /// </summary>
    void Authenticated(SaslOutcome success, string profile);

    /// <summary>
    /// Takes a resource for the authenticated account within the session limit (RFC 6120 §7.6.2.1); the session
    /// is reachable only after <see cref="Register"/>. Returns the error instead when refused.
    /// </summary>
    StanzaError? Reserve(string resource);

    /// <summary>
    /// Creates the session for the reserved resource: the stream is established, but the session is not reachable
    /// yet (what may only follow the client's answer to the bind, XEP-0386, is sent first).
    /// </summary>
    ClientSession CreateSession();

    /// <summary>
    /// Makes the new session reachable (the session manager, replacing one of the same address) and announces it
    /// to modules; <paramref name="how"/> goes into the log line (" (Bind2)").
    /// </summary>
    ValueTask PublishAsync(Element request, string how, CancellationToken cancellationToken);

    /// <summary>A profile without restart could not complete the login (XEP-0386 binding refused): authentication starts over.</summary>
    void ResetAuthentication();

    /// <summary>What modules keep for this stream (a SASL2 exchange in progress...), under keys of their own.</summary>
    SessionItems Items { get; }

    /// <summary>
    /// Resumption (XEP-0198 §5): this stream takes over a session that another stream had, without a new bind;
    /// the session manager and modules see the same session continue.
    /// </summary>
    void Adopt(ClientSession session);

    /// <summary>Offers the stream features for the current state (after a profile without restart).</summary>
    void SendFeatures();

    void Close(StreamError? streamError);
}
