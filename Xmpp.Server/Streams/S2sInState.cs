namespace Xmpp.Server.Streams;

/// <summary>
/// Where a server stream opened to us is (we are the receiving server, RFC 6120 §4-§6 and XEP-0220 terms). Every
/// restart (after STARTTLS, after SASL) goes back to <see cref="AwaitingHeader"/>.
/// </summary>
public enum S2sInState
{
    /// <summary>The transport is up (TLS too, on a direct-TLS port); the peer's stream header has not come yet.</summary>
    AwaitingHeader,

    /// <summary>Features offered while TLS is required and not negotiated: STARTTLS only (RFC 6120 §5.3.1).</summary>
    AwaitingStartTls,

    /// <summary>Features offered (SASL EXTERNAL when the certificate proves the peer's domain, dialback); no domain authenticated yet.</summary>
    AwaitingAuthentication,

    /// <summary>At least one domain authenticated (SASL EXTERNAL, or dialback for each domain): stanzas from those domains flow.</summary>
    Authenticated,

    /// <summary>Our closing tag is out; what the peer still sends is dropped (RFC 6120 §4.4).</summary>
    Closing,
}

/// <summary>What a first-level element of an incoming server stream is, for the transition table.</summary>
public enum S2sInElementKind
{
    /// <summary>&lt;starttls/&gt; (RFC 6120 §5).</summary>
    StartTls,

    /// <summary>&lt;auth/&gt; (RFC 6120 §6; XEP-0178 EXTERNAL).</summary>
    SaslAuth,

    /// <summary>Any other element of the SASL namespace (no exchange has steps: EXTERNAL is the only mechanism).</summary>
    SaslOther,

    /// <summary>&lt;db:result/&gt; without a type: the originating server asks to send from a domain (XEP-0220 §2.1).</summary>
    DialbackResult,

    /// <summary>&lt;db:verify/&gt;: a receiving server asks us, the authoritative server, about a key (XEP-0220 §2.2).</summary>
    DialbackVerify,

    /// <summary>Any other dialback element (a typed result, which only we send on this stream).</summary>
    DialbackOther,

    /// <summary>A message, presence or iq.</summary>
    Stanza,

    /// <summary>The peer's &lt;stream:error/&gt;: it ends the stream (RFC 6120 §4.9.1.2).</summary>
    StreamError,

    /// <summary>Anything else.</summary>
    Unknown,
}

/// <summary>What the incoming server stream does with an element it may take in its state.</summary>
public enum S2sInAction
{
    StartTls,
    SaslExternal,
    DialbackResult,
    DialbackVerify,
    Stanza,

    /// <summary>The peer ended the stream with an error: log it, close ours.</summary>
    PeerError,

    /// <summary>Dropped without an answer.</summary>
    Ignore,
}
