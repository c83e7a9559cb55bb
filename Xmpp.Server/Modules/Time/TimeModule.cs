using System.Globalization;
using Xmpp.Core.Xml;

namespace Xmpp.Server.Modules.Time;

/// <summary>
/// XEP-0202 Entity Time for the server itself: UTC in XEP-0082 DateTime form with millisecond precision,
/// and the server's offset from UTC (§3: "tzo" as ±hh:mm, "Z" not allowed there). Queries to an account's
/// full JID are routed to the client, which answers for itself.
/// </summary>
[Specification("XEP-0202", "2.0", Note = "Entity time of the server (UTC with milliseconds and its offset); queries to a full JID go to the client.")]
public sealed class TimeModule : IXmppModule
{
    public const string Namespace = "urn:xmpp:time";

    public string Name => "time";

    public void Register(IModuleContext context)
    {
        var clock = TimeProvider.System;
        context.Disco.AddFeature(Namespace, IqTarget.Host);
        context.HandleIq("get", Namespace, "time", IqTarget.Host, (_, _, _) => ValueTask.FromResult<Element?>(Answer(clock.GetLocalNow())));
    }

    /// <summary>The &lt;time/&gt; answer for a moment with its local offset.</summary>
    public static Element Answer(DateTimeOffset now)
    {
        var offset = now.Offset;
        var sign = offset < TimeSpan.Zero ? "-" : "+";
        var tzo = sign + offset.Duration().ToString(@"hh\:mm", CultureInfo.InvariantCulture);
        var time = new Element("time", Namespace);
        time.AddChild("tzo").AddText(tzo);
        time.AddChild("utc").AddText(now.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture));
        return time;
    }
}
