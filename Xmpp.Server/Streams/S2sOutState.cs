namespace Xmpp.Server.Streams;

/// <summary>
/// Where our stream to a remote domain is (we are the initiating server, RFC 6120 §4-§6, XEP-0178, XEP-0220).
/// Every restart (after STARTTLS, after SASL) sends our header again and goes back to <see cref="AwaitingHeader"/>.
/// </summary>
public enum S2sOutState
{
    /// <summary>Resolving and connecting (before the connection core runs): stanzas wait in the pending queue.</summary>
    Connecting,

    /// <summary>Our header is sent; the peer's has not come yet.</summary>
    AwaitingHeader,

    /// <summary>The peer's header came; its stream features are next (RFC 6120 §4.3.2).</summary>
    AwaitingFeatures,

    /// <summary>&lt;starttls/&gt; sent; &lt;proceed/&gt; or &lt;failure/&gt; next (RFC 6120 §5.4.2).</summary>
    AwaitingProceed,

    /// <summary>&lt;auth mechanism='EXTERNAL'/&gt; sent (XEP-0178 §2); &lt;success/&gt; or &lt;failure/&gt; next.</summary>
    AwaitingSaslResult,

    /// <summary>&lt;db:result/&gt; with our key sent (XEP-0220 §2.1); the typed answer next.</summary>
    AwaitingDialbackResult,

    /// <summary>Authenticated: the pending stanzas went out, new ones are written as they come.</summary>
    Ready,

    /// <summary>Our closing tag is out, or the stream failed: nothing more is sent, what the peer sends is dropped.</summary>
    Closing,
}

/// <summary>What a first-level element on our outgoing server stream is, for the transition table.</summary>
public enum S2sOutElementKind
{
    /// <summary>&lt;stream:features/&gt;.</summary>
    Features,

    /// <summary>&lt;proceed/&gt; (RFC 6120 §5.4.2.3).</summary>
    TlsProceed,

    /// <summary>&lt;failure/&gt; of the TLS namespace (RFC 6120 §5.4.2.2).</summary>
    TlsFailure,

    /// <summary>&lt;success/&gt; (RFC 6120 §6.4.6).</summary>
    SaslSuccess,

    /// <summary>&lt;failure/&gt;, or any other element of the SASL namespace.</summary>
    SaslFailure,

    /// <summary>&lt;db:result/&gt;: the receiving server's answer (XEP-0220 §2.1.3).</summary>
    DialbackResult,

    /// <summary>&lt;db:verify/&gt;: the authoritative server's answer to a question we asked (XEP-0220 §2.2.2).</summary>
    DialbackVerify,

    /// <summary>The peer's &lt;stream:error/&gt;: it ends the stream (RFC 6120 §4.9.1.2).</summary>
    StreamError,

    /// <summary>Anything else (a stanza: the peer sends its own on a stream of its own).</summary>
    Other,
}

/// <summary>What the outgoing server stream does with an element it may take in its state.</summary>
public enum S2sOutAction
{
    /// <summary>The next step from the peer's features: STARTTLS, SASL EXTERNAL, dialback, or ready.</summary>
    Negotiate,

    /// <summary>TLS as the initiating side, then a new stream.</summary>
    StartTls,

    /// <summary>The peer refused TLS: the stream fails.</summary>
    TlsRefused,

    /// <summary>SASL EXTERNAL succeeded: a new stream, after which stanzas flow.</summary>
    SaslSuccess,

    /// <summary>SASL EXTERNAL refused: dialback is tried on the same stream.</summary>
    SaslRefused,

    /// <summary>The receiving server's verdict on our dialback key.</summary>
    DialbackResult,

    /// <summary>Completes the matching db:verify question.</summary>
    VerifyAnswer,

    /// <summary>The peer ended the stream with an error: log it, close ours.</summary>
    PeerError,

    /// <summary>Dropped without an answer.</summary>
    Ignore,
}
