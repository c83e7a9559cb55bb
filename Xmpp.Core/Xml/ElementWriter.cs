using System.Text;

namespace Xmpp.Core.Xml;

/// <summary>
/// Serialises <see cref="Element"/> trees. Hand-written rather than XmlWriter: stanzas are written
/// thousands of times per second and need no more than escaping and namespace bookkeeping.
/// A child declares xmlns only where its namespace differs from its parent's, so stanzas inherit
/// the stream's default namespace (jabber:client or jabber:server).
/// </summary>
public static class ElementWriter
{
    public static string ToXml(Element element, string? parentNamespace)
    {
        var sb = new StringBuilder(256);
        Write(sb, element, parentNamespace);
        return sb.ToString();
    }

    public static void Write(StringBuilder sb, Element e, string? parentNamespace) => Write(sb, e, parentNamespace, contentNamespace: null);

    /// <summary>
    /// Writes an element; with a <paramref name="contentNamespace"/>, jabber:client elements are written in
    /// it: jabber:server on server-to-server streams (RFC 6120 §4.8.3), jabber:component:accept on
    /// component streams (XEP-0114).
    /// </summary>
    public static void Write(StringBuilder sb, Element e, string? parentNamespace, string? contentNamespace)
    {
        var ns = contentNamespace is not null && e.Namespace == Ns.Client ? contentNamespace : e.Namespace;
        sb.Append('<').Append(e.Name);
        if (ns != parentNamespace)
        {
            sb.Append(" xmlns='");
            Escape(sb, ns, attribute: true);
            sb.Append('\'');
        }

        var prefixCount = 0;
        foreach (var a in e.Attributes)
        {
            sb.Append(' ');
            if (a.Namespace.Length == 0)
            {
                sb.Append(a.LocalName);
            }
            else if (a.Namespace == Ns.Xml)
            {
                sb.Append("xml:").Append(a.LocalName);
            }
            else
            {
                // Rare: a foreign-namespace attribute gets a prefix declared right here.
                var prefix = "a" + prefixCount++;
                sb.Append("xmlns:").Append(prefix).Append("='");
                Escape(sb, a.Namespace, attribute: true);
                sb.Append("' ").Append(prefix).Append(':').Append(a.LocalName);
            }

            sb.Append("='");
            Escape(sb, a.Value, attribute: true);
            sb.Append('\'');
        }

        if (e.Nodes.Count == 0)
        {
            sb.Append("/>");
            return;
        }

        sb.Append('>');
        foreach (var n in e.Nodes)
        {
            if (n is Element child)
            {
                Write(sb, child, ns, contentNamespace);
            }
            else
            {
                Escape(sb, (string)n);
            }
        }

        sb.Append("</").Append(e.Name).Append('>');
    }

    /// <summary>Escapes text for both attribute values (single-quoted) and character data.</summary>
    public static void Escape(StringBuilder sb, string s) => Escape(sb, s, attribute: false);

    /// <summary>
    /// Escapes text; in an attribute value also tab and line feed, which a parser would otherwise turn into
    /// spaces (XML 1.0 §3.3.3 attribute-value normalisation), changing a value that arrived as character
    /// references (found by fuzzing: a forwarded attribute changed on the way).
    /// </summary>
    public static void Escape(StringBuilder sb, string s, bool attribute)
    {
        var start = 0;
        for (var i = 0; i < s.Length; i++)
        {
            var rep = Replacement(s, i, attribute);
            if (rep is not null)
            {
                sb.Append(s, start, i - start).Append(rep);
                start = i + 1;
            }
        }

        sb.Append(s, start, s.Length - start);
    }

    /// <summary>What the character at <paramref name="i"/> is written as, or null when it is written as it is.</summary>
    internal static string? Replacement(string s, int i, bool attribute) => s[i] switch
    {
        '<' => "&lt;",
        '>' => "&gt;",
        '&' => "&amp;",
        '\'' => "&apos;",
        '"' => "&quot;",
        '\r' => "&#xD;",
        '\t' when attribute => "&#x9;",
        '\n' when attribute => "&#xA;",

        // Characters XML 1.0 forbids (controls, lone surrogates, U+FFFE/F) never reach the wire.
        < ' ' when s[i] is not ('\t' or '\n') => "\uFFFD",
        '\uFFFE' or '\uFFFF' => "\uFFFD",
        >= '\uD800' and <= '\uDBFF' when i + 1 >= s.Length || !char.IsLowSurrogate(s[i + 1]) => "\uFFFD",
        >= '\uDC00' and <= '\uDFFF' when i == 0 || !char.IsHighSurrogate(s[i - 1]) => "\uFFFD",
        _ => null,
    };

    public static string Escape(string s)
    {
        var sb = new StringBuilder(s.Length + 8);
        Escape(sb, s);
        return sb.ToString();
    }
}
