using Xmpp.Core.Addressing;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;

namespace Xmpp.Server.Sessions;

/// <summary>A bound client session as the rest of the server sees it (RFC 6120 §7, RFC 6121 §4).</summary>
public interface IClientSession
{
    long ConnectionId { get; }

    /// <summary>The bound full JID.</summary>
    Jid Jid { get; }

    /// <summary>The connection is gone and the session waits to be resumed (XEP-0198): stanzas are kept, not seen.</summary>
    bool IsHibernating { get; }

    /// <summary>Whether the client has sent available presence and not unavailable since (RFC 6121 §4.2).</summary>
    bool IsAvailable { get; set; }

    /// <summary>Priority of the last available presence (RFC 6121 §4.7.2.3), -128..127.</summary>
    int Priority { get; set; }

    /// <summary>The last broadcast presence, with 'from' stamped.</summary>
    Element? LastPresence { get; set; }

    /// <summary>Whether this resource requested the roster, which makes it an "interested resource" for roster pushes (RFC 6121 §2.1.6).</summary>
    bool RosterRequested { get; set; }

    /// <summary>
    /// Entities this resource sent directed available presence to (RFC 6121 §4.6), which get unavailable
    /// presence when it goes offline. Only touched from the session's own stanza processing.
    /// </summary>
    ISet<Jid> DirectedPresence { get; }

    /// <summary>What modules keep for this session.</summary>
    SessionItems Items { get; }

    /// <summary>A filter in front of <see cref="TrySend"/>, set by a module (XEP-0352), or null.</summary>
    ISendFilter? SendFilter { get; set; }

    /// <summary>Queues a stanza past the <see cref="SendFilter"/> (what it held, when it lets go).</summary>
    bool SendUnfiltered(Element stanza);

    /// <summary>Queues a stanza for this client without waiting; false when the session is closing or its queue is full.</summary>
    bool TrySend(Element stanza);

    /// <summary>
    /// Completes when everything queued so far has been written to the connection; cancelled if the
    /// connection ends first.
    /// </summary>
    Task FlushAsync();

    /// <summary>Ends the stream, with a stream error when given.</summary>
    void Close(StreamError? streamError);
}
