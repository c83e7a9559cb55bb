using Xmpp.Core.Xml;

namespace Xmpp.Server.Sessions;

/// <summary>
/// Cluster mode: the account of a session bound on this node (its edge, where the client's connection is) is homed
/// on another node, where the session's state lives and everything the client sends is handled (README, "Running a
/// cluster"). The session here keeps only what belongs to the stream: stream management, client state, the
/// connection itself.
/// </summary>
public interface ISessionHome
{
    /// <summary>The home node's name, for log lines.</summary>
    string Node { get; }

    /// <summary>
    /// Routes a stanza the client sent ('from' stamped) on the home node, from this session; completes once it was
    /// routed there (stored or delivered), so that acknowledging it (XEP-0198) never loses it.
    /// </summary>
    ValueTask RouteAsync(Element stanza, CancellationToken cancellationToken);

    /// <summary>
    /// A message the client never acknowledged, the session over (after <see cref="DetachAsync"/>): delivered on the home
    /// to the account's other sessions, stored offline or bounced, as for a session of the home.
    /// </summary>
    Task RedeliverAsync(Element message);

    /// <summary>The session ended here: it ends on the home too (contacts are told it went offline there).</summary>
    Task DetachAsync();
}
