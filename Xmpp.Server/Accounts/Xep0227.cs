using System.Xml.Linq;
using Xmpp.Core.Sasl;

namespace Xmpp.Server.Accounts;

/// <summary>
/// XEP-0227 (Portable Import/Export Format) names, as version 1.1 and the servers that write it (Prosody's
/// mod_storage_xep0227 and ejabberd's export_piefxis) use them.
/// </summary>
[Specification("XEP-0227", "1.1", Note = "export and import: SCRAM credentials (or plaintext passwords), rosters with pending requests, vCards, private XML, offline messages, PEP nodes and items, MAM archives; Prosody's per-user files and ejabberd's XInclude files.")]
public static class Xep0227
{
    public const string Pie = "urn:xmpp:pie:0";
    public const string Scram = "urn:xmpp:pie:0#scram";
    public const string Mam = "urn:xmpp:pie:0#mam";
    public const string XInclude = "http://www.w3.org/2001/XInclude";
    public const string RosterNs = "jabber:iq:roster";
    public const string PrivateNs = "jabber:iq:private";
    public const string VCardNs = "vcard-temp";
    public const string PubSub = "http://jabber.org/protocol/pubsub";
    public const string PubSubOwner = "http://jabber.org/protocol/pubsub#owner";
    public const string MamNs = "urn:xmpp:mam:2";
    public const string Forward = "urn:xmpp:forward:0";
    public const string Delay = "urn:xmpp:delay";
    public const string Client = "jabber:client";

    public static readonly XNamespace PieX = Pie;
    public static readonly XNamespace ScramX = Scram;

    /// <summary>The SCRAM hash of a mechanism name ("SCRAM-SHA-1", ...), or null.</summary>
    public static ScramHash? HashOf(string? mechanism)
    {
        foreach (var h in ScramHashes.All)
        {
            if (h.MechanismName() == mechanism)
            {
                return h;
            }
        }

        return null;
    }
}
