namespace Xmpp.Server.S2s;

/// <summary>Which server opened a server-to-server stream.</summary>
public enum S2sDirection
{
    /// <summary>The peer opened it to us (we are the receiving server): it carries the peer's stanzas.</summary>
    Incoming,

    /// <summary>We opened it (we are the initiating server): it carries ours.</summary>
    Outgoing,
}

/// <summary>How a domain was authenticated on a server-to-server stream.</summary>
public enum S2sAuthentication
{
    /// <summary>SASL EXTERNAL with a certificate valid for the domain (XEP-0178).</summary>
    SaslExternal,

    /// <summary>Server Dialback: the key checked with the domain's authoritative server (XEP-0220).</summary>
    Dialback,

    /// <summary>A dialback request accepted at once because the certificate is valid for the domain (XEP-0344).</summary>
    DialbackOnCertificate,
}

/// <summary>A domain authenticated on a stream: on an incoming one the domain the peer sends from, on an outgoing one the remote domain.</summary>
/// <param name="Authentication">On an incoming stream how the peer proved the domain; on an outgoing one how we proved ours to it.</param>
/// <param name="CertificateProblem">Null when the peer's certificate is valid for the domain (a trusted chain, within its dates, the name as RFC 6125 matches it); else why not ("no certificate", "certificate not issued by a trusted authority", ...).</param>
public sealed record S2sPeer(string Domain, S2sAuthentication Authentication, string? CertificateProblem);

/// <summary>
/// One server-to-server stream as <see cref="S2sManager.Streams"/> sees it at one moment (a copy: the stream goes on).
/// </summary>
/// <param name="ConnectionId">The connection's id, or null for an outgoing stream that is still resolving or connecting.</param>
/// <param name="Local">Our domain on the stream.</param>
/// <param name="Claimed">The peer's domain as its stream header named it (incoming) or as we address it (outgoing).</param>
/// <param name="Peers">The domains authenticated on it (none while authenticating).</param>
/// <param name="Remote">The peer's IP address and port, once connected.</param>
/// <param name="State">Where the stream's state machine is (S2sInState or S2sOutState).</param>
/// <param name="Tls">The negotiated TLS version and cipher suite, or null for none.</param>
/// <param name="Stanzas">Stanzas received on an incoming stream, or taken to be sent on an outgoing one.</param>
public sealed record S2sStreamInfo(
    S2sDirection Direction,
    long? ConnectionId,
    string Local,
    string? Claimed,
    IReadOnlyList<S2sPeer> Peers,
    string? Remote,
    string State,
    string? Tls,
    bool DirectTls,
    DateTimeOffset Since,
    long Stanzas);
