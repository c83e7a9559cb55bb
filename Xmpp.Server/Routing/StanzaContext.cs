using Xmpp.Core.Addressing;
using Xmpp.Core.Xml;
using Xmpp.Server.Sessions;

namespace Xmpp.Server.Routing;

/// <summary>One stanza on its way through the hooks: validated addresses and where it came from.</summary>
public sealed class StanzaContext
{
    public StanzaContext(Element stanza, Jid from, Jid? to, IClientSession? origin, IStanzaRouter router)
    {
        Stanza = stanza;
        From = from;
        To = to;
        Origin = origin;
        Router = router;
    }

    /// <summary>
    /// The stanza as it goes on. It is frozen: a hook that changes it (an archive id, a stripped element) sets a
    /// changed <see cref="Element.Copy"/> here, for the hooks after it and delivery; what others already hold (a
    /// carbon, another session's queue) stays as it was.
    /// </summary>
    public Element Stanza { get; set; }

    public Jid From { get; }

    /// <summary>The recipient; for a stanza without 'to' from a client, the sender's bare JID.</summary>
    public Jid? To { get; }

    /// <summary>The local client session the stanza came from, if any.</summary>
    public IClientSession? Origin { get; }

    public IStanzaRouter Router { get; }

    public string Kind => Stanza.Name;

    public string? Type => Stanza.GetAttribute("type");

    /// <summary>Sends a reply (or any stanza) on through the router.</summary>
    public ValueTask SendAsync(Element stanza, CancellationToken cancellationToken) => Router.RouteAsync(stanza, null, cancellationToken);
}
