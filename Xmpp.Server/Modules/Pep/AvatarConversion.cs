using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using Xmpp.Core.Addressing;
using Xmpp.Core.Xml;
using Xmpp.Server.Routing;

namespace Xmpp.Server.Modules.Pep;

/// <summary>
/// XEP-0398: avatars published on PEP (XEP-0084) and vCard photos (XEP-0054/XEP-0153) are one avatar.
/// A new PEP avatar is written into the vCard's PHOTO; a vCard with a new PHOTO publishes the PEP avatar
/// (data, then metadata); and the account's broadcast presence carries the avatar's SHA-1 in
/// vcard-temp:x:update, so clients that only know XEP-0153 see avatars set by those that only know
/// XEP-0084, and the other way round.
/// </summary>
public sealed partial class PepModule
{
    public const string AvatarDataNode = "urn:xmpp:avatar:data";
    public const string AvatarMetadataNode = "urn:xmpp:avatar:metadata";
    private const string VCardNs = "vcard-temp";
    private const string VCardUpdateNs = "vcard-temp:x:update";

    /// <summary>The current avatar hash of accounts seen so far ("" for none), for presence.</summary>
    private ConcurrentDictionary<Jid, string> _avatarHash = new();

    private void RegisterAvatarConversion(IModuleContext context)
    {
        context.OnAccountArrived(bare => _avatarHash.TryRemove(bare, out _));
        context.Disco.AddFeature("urn:xmpp:pep-vcard-conversion:0", IqTarget.Bare);
        context.Hook(VCard.VCardModule.Changed, OnVCardChangedAsync);

        // Before the presence module broadcasts (priority 0): the hash goes into what it sends.
        context.Hook(HookNames.PresenceBroadcast, InjectAvatarHashAsync, priority: 5);
    }

    /// <summary>XEP-0153 §4.1 in presence, from the PEP avatar when there is one.</summary>
    private async ValueTask<bool> InjectAvatarHashAsync(StanzaContext ctx, CancellationToken ct)
    {
        if (ctx.Type is not null)
        {
            return false;
        }

        var hash = await AvatarHashAsync(ctx.From.Bare, ct).ConfigureAwait(false);
        if (hash is null)
        {
            return false;
        }

        var presence = ctx.Stanza.Copy();
        presence.RemoveChildren("x", VCardUpdateNs);
        presence.AddChild("x", VCardUpdateNs).AddChild("photo").AddText(hash);
        ctx.Stanza = presence;
        return false;
    }

    /// <summary>The SHA-1 of the current avatar, "" when it was removed, null when the account never had one on PEP.</summary>
    private async ValueTask<string?> AvatarHashAsync(Jid owner, CancellationToken ct)
    {
        if (_avatarHash.TryGetValue(owner, out var known))
        {
            return known;
        }

        if (await Store.GetNodeAsync(owner.Domain, owner.Local!, AvatarMetadataNode, ct).ConfigureAwait(false) is null)
        {
            return null;
        }

        var last = await Store.GetItemsAsync(owner.Domain, owner.Local!, AvatarMetadataNode, 1, null, ct).ConfigureAwait(false);
        var hash = last.Count == 1 && last[0].Xml.Length > 0
            ? ElementParser.Parse(last[0].Xml).Child("info", AvatarMetadataNode)?.GetAttribute("id") ?? string.Empty
            : string.Empty;
        if (_avatarHash.Count > 100_000)
        {
            _avatarHash.Clear();
        }

        _avatarHash[owner] = hash;
        return hash;
    }

    /// <summary>New avatar metadata on PEP: remember its hash and, unless it came from the vCard, write it there.</summary>
    private async ValueTask OnAvatarMetadataAsync(Jid owner, Element metadata, bool fromVCard, CancellationToken ct)
    {
        var info = metadata.Elements().FirstOrDefault(e => e.Is("info", AvatarMetadataNode) && e.GetAttribute("url") is null)
            ?? metadata.Child("info", AvatarMetadataNode);
        var hash = info?.GetAttribute("id") ?? string.Empty;
        var changed = !_avatarHash.TryGetValue(owner, out var before) || before != hash;
        _avatarHash[owner] = hash;
        if (changed)
        {
            await RebroadcastPresenceAsync(owner, ct).ConfigureAwait(false);
        }

        if (fromVCard)
        {
            return;
        }

        var stored = await _context.Storage.Documents.GetAsync(owner.Domain, owner.Local!, VCard.VCardModule.Kind, string.Empty, ct).ConfigureAwait(false);
        var vcard = stored is null ? new Element("vCard", VCardNs) : ElementParser.Parse(stored);
        vcard.RemoveChildren("PHOTO", VCardNs);
        if (info?.GetAttribute("id") is { } id)
        {
            var data = await Store.GetItemsAsync(owner.Domain, owner.Local!, AvatarDataNode, null, [id], ct).ConfigureAwait(false);
            if (data.Count == 0 || data[0].Xml.Length == 0)
            {
                // Not published on this server (a URL avatar): nothing to copy.
                return;
            }

            var photo = vcard.AddChild("PHOTO");
            photo.AddChild("TYPE").AddText(info.GetAttribute("type") ?? "image/png");
            photo.AddChild("BINVAL").AddText(ElementParser.Parse(data[0].Xml).Text.Trim());
        }

        await _context.Storage.Documents.SetAsync(owner.Domain, owner.Local!, VCard.VCardModule.Kind, string.Empty, vcard.ToString(), ct).ConfigureAwait(false);
        _context.Log.Debug("PEP avatar of {Owner} copied into the vCard", owner);
    }

    /// <summary>A new vCard: its PHOTO, if it differs from the PEP avatar, is published there (data first, as XEP-0084 §4.1 says).</summary>
    private async ValueTask<bool> OnVCardChangedAsync(StanzaContext ctx, CancellationToken ct)
    {
        var owner = ctx.From.Bare;
        var vcard = ctx.Stanza.FirstElement()!;
        var binval = vcard.Child("PHOTO", VCardNs)?.ChildText("BINVAL", VCardNs);
        byte[] bytes;
        try
        {
            bytes = binval is null ? [] : Convert.FromBase64String(binval.Trim());
        }
        catch (FormatException)
        {
            return false;
        }

        var current = await AvatarHashAsync(owner, ct).ConfigureAwait(false);
        if (bytes.Length == 0)
        {
            if (!string.IsNullOrEmpty(current))
            {
                // §3.2: the photo was removed, so is the avatar (empty metadata).
                await PublishAvatarItemAsync(owner, AvatarMetadataNode, "current", new Element("metadata", AvatarMetadataNode), ct).ConfigureAwait(false);
            }

            return false;
        }

        // XEP-0153 and XEP-0084 both name an image by the hex SHA-1 of its bytes.
#pragma warning disable CA5350
        var id = Convert.ToHexStringLower(SHA1.HashData(bytes));
#pragma warning restore CA5350
        if (id == current)
        {
            return false;
        }

        var type = vcard.Child("PHOTO", VCardNs)!.ChildText("TYPE", VCardNs) ?? "image/png";
        await PublishAvatarItemAsync(owner, AvatarDataNode, id, new Element("data", AvatarDataNode).AddText(Convert.ToBase64String(bytes)), ct).ConfigureAwait(false);
        var metadata = new Element("metadata", AvatarMetadataNode);
        metadata.AddChild("info").SetAttribute("id", id).SetAttribute("bytes", bytes.Length.ToString(CultureInfo.InvariantCulture)).SetAttribute("type", type);
        await PublishAvatarItemAsync(owner, AvatarMetadataNode, id, metadata, ct).ConfigureAwait(false);
        _context.Log.Debug("vCard photo of {Owner} published as its PEP avatar {Id}", owner, id);
        return false;
    }

    /// <summary>XEP-0153 clients learn of a new avatar from presence: each available resource's presence goes out again with the new hash.</summary>
    private async ValueTask RebroadcastPresenceAsync(Jid owner, CancellationToken ct)
    {
        foreach (var r in _context.Sessions.Resources(owner))
        {
            if (r.IsAvailable && r.LastPresence is { } last)
            {
                var again = last.Clone().SetAttribute("to", null).SetAttribute("from", r.Jid.ToString());
                await _context.Router.RouteAsync(again, r.Jid, r, ct).ConfigureAwait(false);
            }
        }
    }

    private async ValueTask PublishAvatarItemAsync(Jid owner, string node, string id, Element payload, CancellationToken ct)
    {
        var publish = new Element("publish", Namespace).SetAttribute("node", node);
        publish.AddChild("item").SetAttribute("id", id).Add(payload);
        await PublishAsync(owner, publish, null, ct, mirror: false).ConfigureAwait(false);
    }
}
