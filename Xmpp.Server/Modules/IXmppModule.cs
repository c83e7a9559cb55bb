namespace Xmpp.Server.Modules;

/// <summary>
/// One protocol feature (usually one XEP), registering everything it does through the context:
/// disco features, hooks, iq handlers. The core knows nothing of individual XEPs.
/// </summary>
public interface IXmppModule
{
    /// <summary>The name used in server.config.xml's &lt;modules&gt;.</summary>
    string Name { get; }

    void Register(IModuleContext context);
}

/// <summary>
/// A module whose memory matters across a reload (caps of online contacts, unread counts, rate windows,
/// per-account locks): the new generation's instance takes the previous one's state, by reference, right
/// after registering. Caches that the store can refill need not.
/// </summary>
public interface IKeepsStateAcrossReload
{
    void TakeOver(IXmppModule previous);
}
