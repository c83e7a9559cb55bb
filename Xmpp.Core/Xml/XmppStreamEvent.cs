namespace Xmpp.Core.Xml;

public enum XmppStreamEventKind
{
    /// <summary>The opening stream tag.</summary>
    Header,

    /// <summary>A complete first-level child of the stream (a stanza or a nonza).</summary>
    Element,

    /// <summary>The peer closed the stream with &lt;/stream:stream&gt;.</summary>
    End,

    /// <summary>The connection ended without the closing tag.</summary>
    Eof,
}

public readonly record struct XmppStreamEvent(XmppStreamEventKind Kind, StreamHeader? Header = null, Element? Element = null);
