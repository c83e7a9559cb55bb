namespace Xmpp.Server.Streams;

/// <summary>Where an external component's stream is (XEP-0114 §3).</summary>
public enum ComponentState
{
    /// <summary>The component's stream header has not come yet.</summary>
    AwaitingHeader,

    /// <summary>Our header, with the stream id, is sent: the handshake is next (XEP-0114 §3, example 3).</summary>
    AwaitingHandshake,

    /// <summary>The handshake succeeded: the stream is the route to the component's domain, stanzas flow both ways.</summary>
    Established,

    /// <summary>Our closing tag is out; what the component still sends is dropped (RFC 6120 §4.4).</summary>
    Closing,
}

/// <summary>What a first-level element of a component stream is, for the transition table.</summary>
public enum ComponentElementKind
{
    /// <summary>&lt;handshake/&gt; in jabber:component:accept.</summary>
    Handshake,

    /// <summary>A message, presence or iq.</summary>
    Stanza,

    /// <summary>The component's &lt;stream:error/&gt;: it ends the stream (RFC 6120 §4.9.1.2).</summary>
    StreamError,

    /// <summary>Anything else.</summary>
    Unknown,
}

/// <summary>What the component stream does with an element it may take in its state.</summary>
public enum ComponentAction
{
    Handshake,
    Stanza,

    /// <summary>The component ended the stream with an error: log it, close ours.</summary>
    PeerError,

    /// <summary>Dropped without an answer.</summary>
    Ignore,
}
