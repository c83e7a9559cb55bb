using System.Text;
using System.Text.RegularExpressions;
using Xmpp.Core;

namespace Xmpp.Server.Net;

/// <summary>What a unit of a connection's output is.</summary>
public enum OutputUnitKind
{
    /// <summary>The stream header (its start tag as written).</summary>
    Header,

    /// <summary>A top-level element, standalone: stanzas carry xmlns='jabber:client', stream elements declare their prefix.</summary>
    Element,

    /// <summary>The stream's closing tag.</summary>
    Close,
}

public readonly record struct OutputUnit(OutputUnitKind Kind, string Text);

/// <summary>
/// Cuts what a connection writes (an XML stream: header, top-level elements, closing tag) at top-level
/// boundaries, for transports that carry elements rather than bytes: WebSocket messages (RFC 7395) and
/// BOSH bodies (XEP-0206). Our own output is well-formed, so tags are found by their angle brackets
/// (quotes skipped inside tags).
/// </summary>
public static partial class OutputSplitter
{
    /// <summary>The complete units in <paramref name="pending"/>, which keeps what is not complete yet.</summary>
    public static List<OutputUnit> Take(StringBuilder pending)
    {
        var units = new List<OutputUnit>();
        var s = pending.ToString();
        var pos = 0;
        var consumed = 0;
        var depth = 0;
        var start = -1;
        while (pos < s.Length)
        {
            var lt = s.IndexOf('<', pos);
            if (lt < 0)
            {
                break;
            }

            var gt = TagEnd(s, lt);
            if (gt < 0)
            {
                break;
            }

            var tag = s.AsSpan(lt, gt - lt + 1);
            pos = gt + 1;
            if (tag.StartsWith("<?"))
            {
                consumed = pos;
                continue;
            }

            if (tag.StartsWith("<stream:stream"))
            {
                units.Add(new OutputUnit(OutputUnitKind.Header, tag.ToString()));
                consumed = pos;
                continue;
            }

            if (tag.StartsWith("</stream:stream"))
            {
                units.Add(new OutputUnit(OutputUnitKind.Close, string.Empty));
                consumed = pos;
                continue;
            }

            var closing = tag.StartsWith("</");
            var selfClosing = tag.EndsWith("/>");
            if (depth == 0 && !closing)
            {
                start = lt;
            }

            depth += closing ? -1 : selfClosing ? 0 : 1;
            if (depth == 0 && start >= 0)
            {
                units.Add(new OutputUnit(OutputUnitKind.Element, Standalone(s[start..pos])));
                start = -1;
                consumed = pos;
            }
        }

        pending.Remove(0, consumed);
        return units;
    }

    /// <summary>The attributes of a start tag, by qualified name (values as written, still escaped).</summary>
    public static IEnumerable<(string Name, string Value)> HeaderAttributes(string header)
    {
        foreach (Match m in HeaderAttribute().Matches(header))
        {
            yield return (m.Groups[1].Value, m.Groups[3].Value);
        }
    }

    private static int TagEnd(string s, int lt)
    {
        char quote = '\0';
        for (var i = lt + 1; i < s.Length; i++)
        {
            var c = s[i];
            if (quote != '\0')
            {
                if (c == quote)
                {
                    quote = '\0';
                }
            }
            else if (c is '\'' or '"')
            {
                quote = c;
            }
            else if (c == '>')
            {
                return i;
            }
        }

        return -1;
    }

    /// <summary>A top-level element on its own: stanzas get xmlns='jabber:client', stream elements their prefix's declaration.</summary>
    private static string Standalone(string element)
    {
        var nameEnd = element.IndexOfAny([' ', '>', '/'], 1);
        var name = element[1..nameEnd];
        var startTagEnd = TagEnd(element, 0);
        var startTag = element[..(startTagEnd + 1)];
        if (name.StartsWith("stream:", StringComparison.Ordinal))
        {
            return startTag.Contains("xmlns:stream", StringComparison.Ordinal)
                ? element
                : element.Insert(nameEnd, " xmlns:stream='" + Ns.Stream + "'");
        }

        return DefaultNamespace().IsMatch(startTag) ? element : element.Insert(nameEnd, " xmlns='" + Ns.Client + "'");
    }

    [GeneratedRegex("\\sxmlns=['\"]")]
    private static partial Regex DefaultNamespace();

    [GeneratedRegex("\\s([a-zA-Z:]+)=(['\"])(.*?)\\2")]
    private static partial Regex HeaderAttribute();
}
