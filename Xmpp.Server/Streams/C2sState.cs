namespace Xmpp.Server.Streams;

/// <summary>
/// Where a client stream is in RFC 6120's negotiation (§4.3, §5, §6, §7), as processone/xmpp's xmpp_stream_in
/// names its states. Every restart (after STARTTLS, after SASL) goes back to <see cref="AwaitingHeader"/>.
/// </summary>
public enum C2sState
{
    /// <summary>The transport is up (TLS too, on a direct-TLS port); the client's stream header has not come yet.</summary>
    AwaitingHeader,

    /// <summary>Features offered while TLS is required and not negotiated: STARTTLS only (§5.3.1).</summary>
    AwaitingStartTls,

    /// <summary>Features offered with the SASL mechanisms (TLS is up, or not required): authentication next (§6).</summary>
    AwaitingAuthentication,

    /// <summary>A SASL exchange is in progress: challenges and responses (§6.4.2), or SASL2's (XEP-0388).</summary>
    Authenticating,

    /// <summary>Authenticated; features offered with resource binding (§7).</summary>
    AwaitingBind,

    /// <summary>A resource is bound, or a session resumed: stanzas flow (§8).</summary>
    Established,

    /// <summary>Our closing tag is out; what the client still sends is dropped until it closes too (§4.4).</summary>
    Closing,
}

/// <summary>What a first-level element of a client stream is, for the transition table.</summary>
public enum C2sElementKind
{
    /// <summary>&lt;starttls/&gt; (RFC 6120 §5).</summary>
    StartTls,

    /// <summary>&lt;auth/&gt; (RFC 6120 §6.4.2).</summary>
    SaslAuth,

    /// <summary>&lt;response/&gt; (RFC 6120 §6.4.2).</summary>
    SaslResponse,

    /// <summary>&lt;abort/&gt; (RFC 6120 §6.4.4).</summary>
    SaslAbort,

    /// <summary>Any other element of the SASL namespace.</summary>
    SaslOther,

    /// <summary>An iq set with &lt;bind/&gt; (RFC 6120 §7).</summary>
    Bind,

    /// <summary>An iq set with the obsolete &lt;session/&gt; (RFC 3921 §3).</summary>
    Session,

    /// <summary>An iq a module answers before authentication (XEP-0077 registration).</summary>
    PreAuthQuery,

    /// <summary>Any other message, presence or iq in jabber:client.</summary>
    Stanza,

    /// <summary>The client's &lt;stream:error/&gt;: it ends the stream (RFC 6120 §4.9.1.2).</summary>
    StreamError,

    /// <summary>A nonza of a namespace a module handles (XEP-0198, XEP-0352, XEP-0388): the module decides by the state.</summary>
    Extension,

    /// <summary>Anything else.</summary>
    Unknown,
}
