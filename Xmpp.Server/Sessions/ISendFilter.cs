using Xmpp.Core.Xml;

namespace Xmpp.Server.Sessions;

/// <summary>
/// Sits in front of a session's output (client state indication holds what can wait). Called for every
/// stanza the server sends to the session; returns true when it holds the stanza, to send later with
/// <see cref="IClientSession.SendUnfiltered"/>.
/// </summary>
public interface ISendFilter
{
    bool Hold(IClientSession session, Element stanza);

    /// <summary>Lets go of everything held, sent on with <see cref="IClientSession.SendUnfiltered"/>, and holds nothing more until told to.</summary>
    void Release(IClientSession session);
}
