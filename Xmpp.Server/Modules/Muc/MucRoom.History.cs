using System.Globalization;
using Xmpp.Core;
using Xmpp.Core.Addressing;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;

namespace Xmpp.Server.Modules.Muc;

/// <summary>
/// XEP-0045 §7.2.15 the discussion history sent on entry, and who may read the room's archive (XEP-0313 §4 on
/// a MUC service, as XEP-0045 §7.2.15 points to).
/// </summary>
internal sealed partial class MucRoom
{
    public void AddHistory(Element message, DateTimeOffset at)
    {
        _history.AddLast(new HistoryEntry(message, at, message.ChildText("body", Ns.Client)?.Length ?? 0));
        TrimHistory();
    }

    /// <summary>The history keeps at most the configured number of messages (muc#roomconfig_historylength).</summary>
    private void TrimHistory()
    {
        while (_history.Count > Math.Max(Config.HistoryLength, 0))
        {
            _history.RemoveFirst();
        }
    }

    /// <summary>§7.2.15 history: the room's recent messages within the client's maxstanzas, maxchars, seconds and since.</summary>
    private void SendHistory(Jid session, Element? request, List<Element> outbox)
    {
        var maxStanzas = Attribute(request, "maxstanzas") ?? int.MaxValue;
        var maxChars = Attribute(request, "maxchars") ?? int.MaxValue;
        DateTimeOffset? since = null;
        if (Attribute(request, "seconds") is { } seconds)
        {
            since = DateTimeOffset.UtcNow.AddSeconds(-seconds);
        }

        if (request?.GetAttribute("since") is { } sinceText &&
            DateTimeOffset.TryParse(sinceText, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var s) &&
            (since is null || s > since))
        {
            since = s;
        }

        var picked = new List<HistoryEntry>();
        var chars = 0;
        for (var node = _history.Last; node is not null && picked.Count < maxStanzas; node = node.Previous)
        {
            if (since is { } t && node.Value.At < t)
            {
                break;
            }

            chars += node.Value.Characters;
            if (chars > maxChars)
            {
                break;
            }

            picked.Add(node.Value);
        }

        for (var i = picked.Count - 1; i >= 0; i--)
        {
            var m = picked[i].Message.Clone();
            m.SetAttribute("to", session.ToString());
            m.Add(Forwarded.Delay(picked[i].At, Jid.ToString()));
            outbox.Add(m);
        }
    }

    private static int? Attribute(Element? e, string name) =>
        int.TryParse(e?.GetAttribute(name), NumberStyles.None, CultureInfo.InvariantCulture, out var v) ? v : null;

    private void MayReadArchive(Jid requester)
    {
        if (!Config.Archived || !Config.Persistent)
        {
            throw new StanzaErrorException(StanzaErrorCondition.ServiceUnavailable, "this room keeps no archive");
        }

        var open = !Config.MembersOnly && Config.Password is null && Config.Public;
        if (!open && !_bySession.ContainsKey(requester) && AffiliationOf(requester) < Affiliation.Member)
        {
            throw new StanzaErrorException(StanzaErrorCondition.Forbidden, "the archive of this room is for its members and occupants");
        }
    }
}
