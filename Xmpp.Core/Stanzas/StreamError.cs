using Xmpp.Core.Xml;

namespace Xmpp.Core.Stanzas;

/// <summary>A stream-level error (RFC 6120 §4.9): always followed by closing the stream.</summary>
public sealed record StreamError(StreamErrorCondition Condition, string? Text = null)
{
    /// <summary>The condition element's character data, or null: RFC 6120 §4.9.3.19 puts the other host in &lt;see-other-host/&gt;.</summary>
    public string? ConditionContent { get; init; }

    public Element ToElement()
    {
        var error = new Element("error", Ns.Stream);
        var condition = new Element(ErrorNames.ToElementName(Condition), Ns.Streams);
        if (!string.IsNullOrEmpty(ConditionContent))
        {
            condition.AddText(ConditionContent);
        }

        error.Add(condition);
        if (!string.IsNullOrEmpty(Text))
        {
            error.Add(new Element("text", Ns.Streams).SetAttribute("lang", Ns.Xml, "en").AddText(Text));
        }

        return error;
    }
}
