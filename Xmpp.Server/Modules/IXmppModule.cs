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

/// <summary>Declares the specification a module implements (for the compliance list in README and disco).</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true)]
public sealed class SpecificationAttribute(string name, string version) : Attribute
{
    public string Name { get; } = name;

    public string Version { get; } = version;
}
