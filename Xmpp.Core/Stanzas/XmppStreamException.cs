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

    public StreamError ToStreamError() => new(Condition, Message);
}
