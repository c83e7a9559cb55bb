using Xmpp.Core.Xml;

namespace Xmpp.Core.Stanzas;

/// <summary>A stanza error (RFC 6120 §8.3) with the error type the RFC recommends for each condition.</summary>
public sealed record StanzaError(StanzaErrorCondition Condition, string? Text = null, string? Type = null)
{
    public string ErrorType => Type ?? DefaultType(Condition);

    /// <summary>An application-specific condition (RFC 6120 §8.3.3.2), written after the defined one and the text.</summary>
    public Element? Application { get; init; }

    public static string DefaultType(StanzaErrorCondition condition) => condition switch
    {
        StanzaErrorCondition.BadRequest => "modify",
        StanzaErrorCondition.JidMalformed => "modify",
        StanzaErrorCondition.NotAcceptable => "modify",
        StanzaErrorCondition.PolicyViolation => "modify",
        StanzaErrorCondition.Redirect => "modify",
        StanzaErrorCondition.Gone => "cancel",
        StanzaErrorCondition.Forbidden => "auth",
        StanzaErrorCondition.NotAuthorized => "auth",
        StanzaErrorCondition.RegistrationRequired => "auth",
        StanzaErrorCondition.SubscriptionRequired => "auth",
        StanzaErrorCondition.InternalServerError => "cancel",
        StanzaErrorCondition.RecipientUnavailable => "wait",
        StanzaErrorCondition.RemoteServerTimeout => "wait",
        StanzaErrorCondition.ResourceConstraint => "wait",
        StanzaErrorCondition.UnexpectedRequest => "modify",
        _ => "cancel",
    };

    public Element ToElement(string? by = null)
    {
        var error = new Element("error", Ns.Client).SetAttribute("type", ErrorType);
        if (by is not null)
        {
            error.SetAttribute("by", by);
        }

        error.Add(new Element(ErrorNames.ToElementName(Condition), Ns.Stanzas));
        if (!string.IsNullOrEmpty(Text))
        {
            error.Add(new Element("text", Ns.Stanzas).SetAttribute("lang", Ns.Xml, "en").AddText(Text));
        }

        if (Application is not null)
        {
            error.Add(Application.Clone());
        }

        return error;
    }

    public static StanzaError ServiceUnavailable { get; } = new(StanzaErrorCondition.ServiceUnavailable);

    public static StanzaError BadRequest(string? text = null) => new(StanzaErrorCondition.BadRequest, text);
}
