using System.Buffers;
using System.Text;

namespace Xmpp.Core.Xml;

/// <summary>
/// Serialises <see cref="Element"/> trees straight to UTF-8 bytes, for transports that send each element as a
/// message of its own (WebSocket frames, BOSH bodies): the same output as <see cref="ElementWriter"/>, with no
/// text in between.
/// </summary>
public static class Utf8ElementWriter
{
    private static readonly UTF8Encoding Utf8 = new(false);

    /// <summary>An element; like <see cref="ElementWriter.Write(StringBuilder, Element, string?, string?)"/>.</summary>
    public static void Write(IBufferWriter<byte> w, Element e, string? parentNamespace, string? contentNamespace = null)
    {
        var ns = contentNamespace is not null && e.Namespace == Ns.Client ? contentNamespace : e.Namespace;
        w.Write("<"u8);
        Text(w, e.Name);
        if (ns != parentNamespace)
        {
            w.Write(" xmlns='"u8);
            Escape(w, ns, attribute: true);
            w.Write("'"u8);
        }

        Attributes(w, e);
        Content(w, e, ns, contentNamespace, prefix: null);
    }

    /// <summary>
    /// An element under a prefix (&lt;stream:features xmlns:stream='…'&gt;), declared on it when
    /// <paramref name="declare"/>; its children are written as usual, their parent namespace being <paramref name="childrenParent"/>.
    /// </summary>
    public static void WritePrefixed(IBufferWriter<byte> w, string prefix, Element e, bool declare, string? childrenParent)
    {
        w.Write("<"u8);
        Text(w, prefix);
        w.Write(":"u8);
        Text(w, e.Name);
        if (declare)
        {
            w.Write(" xmlns:"u8);
            Text(w, prefix);
            w.Write("='"u8);
            Escape(w, e.Namespace, attribute: true);
            w.Write("'"u8);
        }

        Attributes(w, e);
        Content(w, e, childrenParent, contentNamespace: null, prefix);
    }

    private static void Attributes(IBufferWriter<byte> w, Element e)
    {
        var prefixCount = 0;
        var attributes = e.Attributes;

        // Indexed rather than foreach: an enumerator over the interface would be one allocation per element.
        for (var i = 0; i < attributes.Count; i++)
        {
            var a = attributes[i];
            w.Write(" "u8);
            if (a.Namespace.Length == 0)
            {
                Text(w, a.LocalName);
            }
            else if (a.Namespace == Ns.Xml)
            {
                w.Write("xml:"u8);
                Text(w, a.LocalName);
            }
            else
            {
                // Rare: a foreign-namespace attribute gets a prefix declared right here.
                var prefix = "a" + prefixCount++;
                w.Write("xmlns:"u8);
                Text(w, prefix);
                w.Write("='"u8);
                Escape(w, a.Namespace, attribute: true);
                w.Write("' "u8);
                Text(w, prefix);
                w.Write(":"u8);
                Text(w, a.LocalName);
            }

            w.Write("='"u8);
            Escape(w, a.Value, attribute: true);
            w.Write("'"u8);
        }
    }

    private static void Content(IBufferWriter<byte> w, Element e, string? ns, string? contentNamespace, string? prefix)
    {
        var nodes = e.Nodes;
        if (nodes.Count == 0)
        {
            w.Write("/>"u8);
            return;
        }

        w.Write(">"u8);
        for (var i = 0; i < nodes.Count; i++)
        {
            var n = nodes[i];
            if (n is Element child)
            {
                Write(w, child, ns, contentNamespace);
            }
            else
            {
                Escape(w, (string)n, attribute: false);
            }
        }

        w.Write("</"u8);
        if (prefix is not null)
        {
            Text(w, prefix);
            w.Write(":"u8);
        }

        Text(w, e.Name);
        w.Write(">"u8);
    }

    /// <summary>Text with nothing to escape (names, known literals).</summary>
    public static void Text(IBufferWriter<byte> w, ReadOnlySpan<char> s)
    {
        if (s.IsEmpty)
        {
            return;
        }

        var n = Utf8.GetBytes(s, w.GetSpan(Utf8.GetMaxByteCount(s.Length)));
        w.Advance(n);
    }

    /// <summary>Escapes text as <see cref="ElementWriter.Escape(StringBuilder, string, bool)"/> does, encoding it on the way.</summary>
    public static void Escape(IBufferWriter<byte> w, string s, bool attribute)
    {
        var start = 0;
        for (var i = 0; i < s.Length; i++)
        {
            var rep = ElementWriter.Replacement(s, i, attribute);
            if (rep is not null)
            {
                Text(w, s.AsSpan(start, i - start));
                Text(w, rep);
                start = i + 1;
            }
        }

        Text(w, s.AsSpan(start));
    }
}
