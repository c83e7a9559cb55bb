using Xmpp.Core.Stanzas;

namespace Xmpp.Server.Modules;

/// <summary>Thrown by an iq handler to answer with a stanza error.</summary>
public sealed class StanzaErrorException : Exception
{
    public StanzaErrorException(StanzaError error)
        : base(error.Text ?? error.Condition.ToString()) => Error = error;

    public StanzaErrorException(StanzaErrorCondition condition, string? text = null)
        : this(new StanzaError(condition, text))
    {
    }

    public StanzaErrorException()
        : this(StanzaErrorCondition.UndefinedCondition)
    {
    }

    public StanzaErrorException(string message)
        : this(StanzaErrorCondition.UndefinedCondition, message)
    {
    }

    public StanzaErrorException(string message, Exception innerException)
        : base(message, innerException) => Error = new StanzaError(StanzaErrorCondition.InternalServerError);

    public StanzaError Error { get; }
}
