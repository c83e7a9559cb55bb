using System.Globalization;
using Xmpp.Core.Xml;

namespace Xmpp.Core.Stanzas;

/// <summary>Stanza forwarding (XEP-0297), the wrapper of carbons (XEP-0280) and archive results (XEP-0313).</summary>
[Specification("XEP-0297", "1.0", Note = "Forwarding wrappers for carbons and archive results.")]
public static class Forwarded
{
    public const string Namespace = "urn:xmpp:forward:0";

    public const string DelayNamespace = "urn:xmpp:delay";

    /// <summary>&lt;forwarded&gt; around a stanza, with the XEP-0203 time it was first handled when given.</summary>
    public static Element Wrap(Element stanza, DateTimeOffset? stamp = null)
    {
        var forwarded = new Element("forwarded", Namespace);
        if (stamp is { } when)
        {
            forwarded.Add(Delay(when, from: null));
        }

        return forwarded.Add(stanza);
    }

    /// <summary>An XEP-0203 &lt;delay/&gt; with the UTC stamp in XEP-0082 form (seconds, with milliseconds when non-zero).</summary>
    public static Element Delay(DateTimeOffset when, string? from)
    {
        var utc = when.UtcDateTime;
        var format = utc.Millisecond == 0 ? "yyyy-MM-dd'T'HH:mm:ss'Z'" : "yyyy-MM-dd'T'HH:mm:ss.fff'Z'";
        return new Element("delay", DelayNamespace)
            .SetAttribute("from", from)
            .SetAttribute("stamp", utc.ToString(format, CultureInfo.InvariantCulture));
    }
}
