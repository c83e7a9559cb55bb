using Xmpp.Core.Addressing;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;
using Xmpp.Server.Sessions;

namespace Xmpp.Server.Routing;

/// <summary>
/// The one place that decides where a stanza goes: local delivery through the hooks, a remote domain
/// ("route/remote", claimed by federation) or, later, another cluster node. Modules only see this.
/// </summary>
public interface IStanzaRouter
{
    /// <summary>Whether this server serves the domain.</summary>
    bool IsLocal(string domain);

    /// <summary>
    /// Whether this server answers for the domain on the network: its hosts, and the service domains its
    /// modules run (a multi-user chat service on <c>conference.HOST</c>). Federation accepts streams for
    /// these and sends from them; stanzas to a service domain go to "route/remote", where its module claims them.
    /// </summary>
    bool Serves(string domain);

    /// <summary>Routes a stanza whose 'from' is set and trusted (the server's own replies and notifications).</summary>
    ValueTask RouteAsync(Element stanza, IClientSession? origin, CancellationToken cancellationToken);

    /// <summary>Routes a stanza whose 'from' the receiving stream stamped with <paramref name="from"/>.</summary>
    ValueTask RouteAsync(Element stanza, Jid from, IClientSession? origin, CancellationToken cancellationToken);

    /// <summary>
    /// Routes a stanza whose addresses the caller holds parsed already (fan-out to contacts or occupants, replies):
    /// they must be what its 'from' and 'to' say; neither is parsed again.
    /// </summary>
    ValueTask RouteParsedAsync(Element stanza, Jid from, Jid to, CancellationToken cancellationToken);

    /// <summary>Sends the error reply for a stanza back to its sender, unless the stanza is itself an error or result.</summary>
    ValueTask BounceAsync(Element stanza, StanzaError error, CancellationToken cancellationToken);
}
