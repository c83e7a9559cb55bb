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
