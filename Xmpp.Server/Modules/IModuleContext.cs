using NLog;
using Xmpp.Core.Xml;
using Xmpp.Server.Config;
using Xmpp.Server.Routing;
using Xmpp.Server.Sessions;
using Xmpp.Server.Storage;

namespace Xmpp.Server.Modules;

/// <summary>A request iq handler: returns the result payload (or null for an empty result), or throws <see cref="StanzaErrorException"/>.</summary>
public delegate ValueTask<Element?> IqHandler(StanzaContext context, Element payload, CancellationToken cancellationToken);

/// <summary>What a module can see of the server and register with it.</summary>
public interface IModuleContext
{
    ServerOptions Options { get; }

    /// <summary>This module's attributes from &lt;modules&gt; in the configuration.</summary>
    IReadOnlyDictionary<string, string> ModuleOptions { get; }

    Logger Log { get; }

    SessionManager Sessions { get; }

    Router Router { get; }

    IStorage Storage { get; }

    DiscoRegistry Disco { get; }

    /// <summary>Registers a stanza hook (see <see cref="HookNames"/>).</summary>
    void Hook(string name, StanzaHandler handler, int priority = 0);

    /// <summary>Registers a request handler for iq type get or set with payload NS:NAME addressed to the given targets.</summary>
    void HandleIq(string type, string ns, string name, IqTarget targets, IqHandler handler);
}

[Flags]
public enum IqTarget
{
    Host = 1,
    Bare = 2,
}
