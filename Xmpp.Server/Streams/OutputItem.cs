using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;

namespace Xmpp.Server.Streams;

/// <summary>What an item of a stream's output is.</summary>
public enum OutputKind
{
    /// <summary>A stanza, counted against the stream's output limits.</summary>
    Stanza,

    /// <summary>A first-level element that is not a stanza (features, SASL, TLS, acknowledgements, dialback).</summary>
    Nonza,

    /// <summary>Our stream header.</summary>
    Header,

    /// <summary>The end of the stream, with a stream error before it when there is one; nothing follows.</summary>
    Close,
}

/// <summary>Our opening stream tag (RFC 6120 §4.7); the transport renders it (&lt;stream:stream&gt;, or &lt;open/&gt; on WebSocket).</summary>
/// <param name="From">Our domain.</param>
/// <param name="To">The peer, when it named itself.</param>
/// <param name="Id">The stream id, when this side assigns one (the responding side).</param>
/// <param name="Version">'1.0' (RFC 6120 §4.7.5), or null for none: XEP-0114's component streams have none.</param>
public sealed record OutgoingHeader(string From, string? To, string? Id, string? Version = "1.0");

/// <summary>One item of a stream's output, in the order it is written.</summary>
public readonly record struct OutputItem(OutputKind Kind, Element? Element = null, OutgoingHeader? Header = null, StreamError? Error = null)
{
    public static OutputItem Stanza(Element stanza) => new(OutputKind.Stanza, stanza);

    public static OutputItem Nonza(Element element) => new(OutputKind.Nonza, element);

    public static OutputItem Open(OutgoingHeader header) => new(OutputKind.Header, Header: header);

    public static OutputItem End(StreamError? error) => new(OutputKind.Close, Error: error);
}
