using System.Globalization;
using System.Security.Cryptography;
using Xmpp.Core;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;
using Xmpp.Server.Routing;

namespace Xmpp.Server.Modules.Muc;

/// <summary>
/// XEP-0486 MUC avatars: the room's vcard-temp (XEP-0054), set by its owners and read by anyone who may
/// see the room; its photos' hashes in muc#roominfo (XEP-0153's method), and a 104 to the occupants when
/// it changes. A persistent room keeps it in storage beside its own document.
/// </summary>
internal sealed partial class MucRoom
{
    public const string VCardNs = "vcard-temp";

    /// <summary>The vCard the owners set, or null when none is (or an empty one removed it).</summary>
    public Element? VCard { get; private set; }

    /// <summary>Whether storage holds the vCard as it is now (false: the next save of a persistent room writes it).</summary>
    public bool VCardSaved { get; set; }

    /// <summary>The hex SHA-1 of each photo's data, in order (XEP-0486 §3.3 and §5.1: one value per PHOTO).</summary>
    public IReadOnlyList<string> AvatarHashes { get; private set; } = [];

    /// <summary>The vCard read back from storage when the service loads a persistent room.</summary>
    public void RestoreVCard(Element vcard)
    {
        VCard = vcard;
        AvatarHashes = Hashes(vcard);
        VCardSaved = true;
    }

    /// <summary>XEP-0486 §3.4: anyone who may see the room reads its vCard; without one, an empty vCard (XEP-0054 §3.1).</summary>
    private Element GetVCard() => VCard?.Clone() ?? new Element("vCard", VCardNs);

    /// <summary>
    /// XEP-0486 §3.2: owners publish (or, with an empty vCard, remove) the room's vCard; anyone else gets
    /// forbidden. The occupants then hear of a configuration change (104) and ask the room again.
    /// </summary>
    private async ValueTask SetVCardAsync(StanzaContext ctx, Element vcard, Outbox outbox, CancellationToken ct)
    {
        if (AffiliationOf(ctx.From) != Affiliation.Owner)
        {
            throw new StanzaErrorException(StanzaErrorCondition.Forbidden, "only owners may set the room's avatar");
        }

        var empty = vcard.ElementCount() == 0 && vcard.Text.Trim().Length == 0;
        var stored = empty ? null : vcard.Clone();
        if (stored is not null && stored.ToString().Length > Service.Settings.MaxVCardSize)
        {
            throw new StanzaErrorException(StanzaErrorCondition.NotAcceptable, $"the vCard is larger than this service keeps ({Service.Settings.MaxVCardSize} characters)");
        }

        var hashes = stored is null ? [] : Hashes(stored);
        VCard = stored;
        AvatarHashes = hashes;
        VCardSaved = false;
        await Service.SaveAsync(this, ct).ConfigureAwait(false);
        BroadcastStatus([104], outbox);
        Service.Log.Info("{Owner} {Action} the avatar of {Room} ({Photos} photos)", ctx.From.Bare, stored is null ? "removed" : "set", Jid, hashes.Count);
    }

    /// <summary>The hashes of a vCard's photos; a photo whose data is not base64 makes the vCard unacceptable.</summary>
    private static List<string> Hashes(Element vcard)
    {
        var hashes = new List<string>();
        foreach (var photo in vcard.Elements().Where(e => e.Is("PHOTO", VCardNs)))
        {
            if (photo.ChildText("BINVAL", VCardNs) is not { } binval)
            {
                continue; // an EXTVAL (a link): nothing to hash
            }

            var bytes = new byte[binval.Length];
            if (!Convert.TryFromBase64String(binval.Trim(), bytes, out var length))
            {
                throw new StanzaErrorException(StanzaErrorCondition.BadRequest, "a PHOTO's BINVAL is not base64");
            }

            // XEP-0153's hash, which XEP-0486 §3.3 names: SHA-1 identifies the image, it protects nothing.
#pragma warning disable CA5350
            hashes.Add(Convert.ToHexStringLower(SHA1.HashData(bytes.AsSpan(0, length))));
#pragma warning restore CA5350
        }

        return hashes;
    }

    /// <summary>A groupchat message from the room with only status codes, to every session in it (§10.2.1).</summary>
    private void BroadcastStatus(IEnumerable<int> codes, Outbox outbox)
    {
        var list = codes.ToList();
        foreach (var o in _byNick.Values)
        {
            foreach (var (jid, _) in o.Sessions)
            {
                var m = new Element("message", Ns.Client).SetAttribute("from", Jid.ToString()).SetAttribute("to", jid.ToString())
                    .SetAttribute("type", "groupchat").SetAttribute("id", NewId());
                var x = m.AddChild("x", MucUser);
                foreach (var code in list)
                {
                    x.AddChild("status").SetAttribute("code", code.ToString(CultureInfo.InvariantCulture));
                }

                outbox.Add(m);
            }
        }
    }
}
