using Xmpp.Core.Xml;

namespace Xmpp.Core.Stanzas;

/// <summary>A stream-level error (RFC 6120 §4.9): always followed by closing the stream.</summary>
public sealed record StreamError(StreamErrorCondition Condition, string? Text = null)
{
    public Element ToElement()
    {
        var error = new Element("error", Ns.Stream);
        error.Add(new Element(ErrorNames.ToElementName(Condition), Ns.Streams));
        if (!string.IsNullOrEmpty(Text))
        {
            error.Add(new Element("text", Ns.Streams).SetAttribute("lang", Ns.Xml, "en").AddText(Text));
        }

        return error;
    }
}
