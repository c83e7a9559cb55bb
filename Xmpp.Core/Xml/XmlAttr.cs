namespace Xmpp.Core.Xml;

/// <summary>One attribute of an <see cref="Element"/>. <see cref="Namespace"/> is empty for unqualified attributes.</summary>
public readonly record struct XmlAttr(string LocalName, string Namespace, string Value);
