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
    /// The content namespace of a stream that is not jabber:client: jabber:server (RFC 6120 §4.8.3) or
    /// jabber:component:accept (XEP-0114). Its elements are read as jabber:client, so that the rest of the
    /// server handles one stanza namespace whatever stream a stanza came from. Null on client streams.
    /// </summary>
    public string? ContentNamespace { get; init; }
}
