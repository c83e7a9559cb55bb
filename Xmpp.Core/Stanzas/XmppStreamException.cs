namespace Xmpp.Core.Stanzas;

/// <summary>Thrown by the stream front end when the peer's input requires a stream error.</summary>
public sealed class XmppStreamException : Exception
{
    public XmppStreamException(StreamErrorCondition condition, string message)
        : base(message)
    {
        Condition = condition;
    }

    public XmppStreamException(StreamErrorCondition condition, string message, Exception inner)
        : base(message, inner)
    {
        Condition = condition;
    }

    public XmppStreamException()
        : this(StreamErrorCondition.UndefinedCondition, "stream error")
    {
    }

    public XmppStreamException(string message)
        : this(StreamErrorCondition.UndefinedCondition, message)
    {
    }

    public XmppStreamException(string message, Exception innerException)
        : this(StreamErrorCondition.UndefinedCondition, message, innerException)
    {
    }

    public StreamErrorCondition Condition { get; }

    /// <summary>The condition element's character data (RFC 6120 §4.9.3.19: see-other-host names the other host), or null.</summary>
    public string? ConditionContent { get; init; }

    public StreamError ToStreamError() => new(Condition, Message) { ConditionContent = ConditionContent };
}
