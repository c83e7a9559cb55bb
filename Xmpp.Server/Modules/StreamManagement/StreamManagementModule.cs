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
        var timeout = Number(context, "resume-timeout", 300, 0, 86_400);
        var maxUnacked = Number(context, "max-unacked", 10_000, 1, 1_000_000);
        context.EnableStreamManagement(new StreamManagementOptions(TimeSpan.FromSeconds(timeout), maxUnacked));
        context.AddStreamFeature(new Element("sm", SmState.Namespace));
    }

    private static int Number(IModuleContext context, string name, int fallback, int min, int max)
    {
        var text = context.Option(name);
        if (text is null)
        {
            return fallback;
        }

        return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value >= min && value <= max
            ? value
            : throw new Config.ConfigException($"module sm: {name} must be a whole number from {min} to {max}, not '{text}'");
    }
}
