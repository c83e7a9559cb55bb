namespace Xmpp.Core.Xml;

/// <summary>The opening &lt;stream:stream&gt; tag as received.</summary>
public sealed record StreamHeader(
    string LocalName,
    string Namespace,
    string? DefaultNamespace,
    string? To,
    string? From,
    string? Version,
    string? Lang,
    string? Id);
