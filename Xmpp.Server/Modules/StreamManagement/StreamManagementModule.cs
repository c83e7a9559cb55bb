using System.Globalization;
using Xmpp.Core.Xml;
using Xmpp.Server.Net;

namespace Xmpp.Server.Modules.StreamManagement;

/// <summary>
/// Stream management (XEP-0198): acknowledgements both ways and resumption of a dropped session within
/// resume-timeout seconds, with what the client had not acknowledged sent again. A session that is not
/// resumed ends then: contacts see it go offline, and every unacknowledged message goes to another
/// resource, to offline storage, or back to its sender, never nowhere. The mechanism lives in the client
/// stream (Net/ClientConnection); this module switches it on and offers the feature.
/// </summary>
[Specification("XEP-0198", "1.6.1", Note = "Acks both ways, resumption within resume-timeout taking over a live or dropped connection, no unavailable presence while resumable; at session end unacknowledged messages go to other resources, offline storage or back to the sender.")]
public sealed class StreamManagementModule : IXmppModule
{
    public string Name => "sm";

    public void Register(IModuleContext context)
    {
        var timeout = context.Number("resume-timeout", 300, 0, 86_400);
        var maxUnacked = context.Number("max-unacked", 10_000, 1, 1_000_000);
        context.EnableStreamManagement(new StreamManagementOptions(TimeSpan.FromSeconds(timeout), maxUnacked));
        context.AddStreamFeature(new Element("sm", SmState.Namespace));
    }
}
