using Xmpp.Core.Addressing;

namespace Xmpp.Server.Sessions;

/// <summary>
/// Where the bound sessions are: by full JID and by account. The in-process <see cref="SessionManager"/>
/// implements it; a clustered registry (Orleans grains, or Redis) can replace it without touching modules.
/// </summary>
public interface ISessionRegistry
{
    int Count { get; }

    IEnumerable<IClientSession> All { get; }

    /// <summary>Registers a session; returns the session it replaced (same full JID), which the caller closes.</summary>
    IClientSession? Bind(IClientSession session);

    /// <summary>Removes a session if it is still the one registered under its JID.</summary>
    bool Unbind(IClientSession session);

    IClientSession? Find(Jid full);

    /// <summary>The bound resources of an account (available or not).</summary>
    IReadOnlyList<IClientSession> Resources(Jid bare);
}
