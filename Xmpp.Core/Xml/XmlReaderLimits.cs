namespace Xmpp.Core.Xml;

/// <summary>Bounds applied while parsing one stream.</summary>
public sealed record XmlReaderLimits
{
    /// <summary>Maximum size of one first-level element in bytes (Prosody's c2s default: 256 KiB).</summary>
    public int MaxStanzaBytes { get; init; } = 256 * 1024;

    /// <summary>Maximum nesting depth inside a stanza.</summary>
    public int MaxDepth { get; init; } = 64;

    /// <summary>Maximum number of attributes on one element (namespace declarations not counted).</summary>
    public int MaxAttributes { get; init; } = 64;

    /// <summary>Maximum number of namespace declarations on one element.</summary>
    public int MaxNamespaceDeclarations { get; init; } = 32;

    /// <summary>
    /// Server-to-server streams: elements in jabber:server are read as jabber:client, so that the rest of
    /// the server handles one stanza namespace whatever stream a stanza came from (RFC 6120 §4.8.3).
    /// </summary>
    public bool ServerNamespaceAsClient { get; init; }
}
