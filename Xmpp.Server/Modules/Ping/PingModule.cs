using Xmpp.Core;
using Xmpp.Core.Xml;

namespace Xmpp.Server.Modules.Ping;

/// <summary>XEP-0199 XMPP Ping: the server answers pings to itself and on behalf of accounts.</summary>
[Specification("XEP-0199", "2.0.1", Note = "Ping to the server and to accounts; the server pings clients silent for half the idle timeout.")]
public sealed class PingModule : IXmppModule
{
    public string Name => "ping";

    public void Register(IModuleContext context)
    {
        context.Disco.AddFeature(Ns.Ping, IqTarget.Host);
        context.HandleIq("get", Ns.Ping, "ping", IqTarget.Host | IqTarget.Bare, (_, _, _) => ValueTask.FromResult<Element?>(null));
    }
}
