using System.Runtime.InteropServices;
using Xmpp.Core;
using Xmpp.Core.Xml;

namespace Xmpp.Server.Modules.Version;

/// <summary>XEP-0092 Software Version of the server. The operating system is shown only with show-os="true".</summary>
[Specification("XEP-0092", "1.1", Note = "Software version of the server; the OS only with show-os=\"true\".")]
public sealed class VersionModule : IXmppModule
{
    public string Name => "version";

    /// <summary>The build's version (Directory.Build.props), without the source revision.</summary>
    public static string ProductVersion => BuildVersion.Value;

    public void Register(IModuleContext context)
    {
        var showOs = context.Option("show-os") == "true";

        context.Disco.AddFeature(Ns.Version, IqTarget.Host);
        context.HandleIq("get", Ns.Version, "query", IqTarget.Host, (_, _, _) =>
        {
            var query = new Element("query", Ns.Version);
            query.AddChild("name").AddText("XmppServer");
            query.AddChild("version").AddText(ProductVersion);
            if (showOs)
            {
                query.AddChild("os").AddText(RuntimeInformation.OSDescription);
            }

            return ValueTask.FromResult<Element?>(query);
        });
    }
}
