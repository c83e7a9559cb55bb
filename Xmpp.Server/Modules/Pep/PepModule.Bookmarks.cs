using Xmpp.Core.Addressing;
using Xmpp.Core.Xml;
using Xmpp.Server.Routing;

namespace Xmpp.Server.Modules.Pep;

/// <summary>
/// XEP-0411: bookmarks kept in step both ways, between XEP-0402's native bookmarks (a PEP node) and
/// XEP-0048's legacy storage in private XML (XEP-0049).
/// </summary>
public sealed partial class PepModule
{
    /// <summary>XEP-0402 native bookmarks, and the XEP-0048 storage they are kept in step with (XEP-0411).</summary>
    public const string BookmarksNode = "urn:xmpp:bookmarks:1";
    private const string LegacyBookmarks = "storage:bookmarks";
    private const string LegacyKey = "storage " + LegacyBookmarks;

    /// <summary>Legacy bookmarks were stored in private XML: publish what is new or changed, retract what is gone.</summary>
    private async ValueTask<bool> OnPrivateStoredAsync(StanzaContext ctx, CancellationToken ct)
    {
        if (ctx.Stanza.FirstElement()?.Child("storage", LegacyBookmarks) is not { } storage)
        {
            return false;
        }

        var owner = ctx.From.Bare;
        var wanted = new Dictionary<string, Element>(StringComparer.Ordinal);
        foreach (var c in storage.Elements().Where(e => e.Is("conference", LegacyBookmarks)))
        {
            if (Jid.TryParse(c.GetAttribute("jid"), out var room))
            {
                var native = new Element("conference", BookmarksNode)
                    .SetAttribute("name", c.GetAttribute("name"))
                    .SetAttribute("autojoin", c.GetAttribute("autojoin") is "true" or "1" ? "true" : null);
                foreach (var child in new[] { "nick", "password" })
                {
                    if (c.ChildText(child, LegacyBookmarks) is { } text)
                    {
                        native.AddChild(child).AddText(text);
                    }
                }

                wanted[room.Bare.ToString()] = native;
            }
        }

        var existing = await Store.GetNodeAsync(owner.Domain, owner.Local!, BookmarksNode, ct).ConfigureAwait(false) is null
            ? []
            : await Store.GetItemsAsync(owner.Domain, owner.Local!, BookmarksNode, null, null, ct).ConfigureAwait(false);
        foreach (var gone in existing.Where(i => !wanted.ContainsKey(i.Id)))
        {
            var retract = new Element("retract", Namespace).SetAttribute("node", BookmarksNode).SetAttribute("notify", "true");
            retract.AddChild("item").SetAttribute("id", gone.Id);
            await RetractAsync(owner, retract, ct, mirror: false).ConfigureAwait(false);
        }

        foreach (var (room, native) in wanted)
        {
            if (existing.Any(i => i.Id == room && i.Xml == native.ToString()))
            {
                continue;
            }

            var publish = new Element("publish", Namespace).SetAttribute("node", BookmarksNode);
            publish.AddChild("item").SetAttribute("id", room).Add(native);
            try
            {
                await PublishAsync(owner, publish, BookmarkOptions(), ct, mirror: false).ConfigureAwait(false);
            }
            catch (StanzaErrorException)
            {
                // The node was made with other options by a client: publish under its own configuration.
                await PublishAsync(owner, publish, null, ct, mirror: false).ConfigureAwait(false);
            }
        }

        _context.Log.Debug("Legacy bookmarks of {Owner} mirrored to PEP: {Count} rooms", owner, wanted.Count);
        return false;
    }

    /// <summary>Native bookmarks changed: the legacy document is rewritten from them, keeping its URL bookmarks.</summary>
    private async ValueTask MirrorToLegacyAsync(Jid owner, CancellationToken ct)
    {
        var storage = new Element("storage", LegacyBookmarks);
        if (await _context.Storage.Documents.GetAsync(owner.Domain, owner.Local!, PrivateStorage.PrivateStorageModule.Kind, LegacyKey, ct).ConfigureAwait(false) is { } old)
        {
            foreach (var url in ElementParser.Parse(old).Elements().Where(e => e.Is("url", LegacyBookmarks)))
            {
                storage.Add(url);
            }
        }

        foreach (var item in await Store.GetItemsAsync(owner.Domain, owner.Local!, BookmarksNode, null, null, ct).ConfigureAwait(false))
        {
            if (item.Xml.Length == 0 || ElementParser.Parse(item.Xml) is not { } native || !native.Is("conference", BookmarksNode))
            {
                continue;
            }

            var conference = storage.AddChild("conference").SetAttribute("jid", item.Id)
                .SetAttribute("name", native.GetAttribute("name"))
                .SetAttribute("autojoin", native.GetAttribute("autojoin") is "true" or "1" ? "true" : "false");
            foreach (var child in new[] { "nick", "password" })
            {
                if (native.ChildText(child, BookmarksNode) is { } text)
                {
                    conference.AddChild(child).AddText(text);
                }
            }
        }

        await _context.Storage.Documents.SetAsync(owner.Domain, owner.Local!, PrivateStorage.PrivateStorageModule.Kind, LegacyKey, storage.ToString(), ct).ConfigureAwait(false);
    }

    /// <summary>XEP-0402 §3's publish-options for the bookmarks node.</summary>
    private static Dictionary<string, List<string>> BookmarkOptions() => new(StringComparer.Ordinal)
    {
        ["FORM_TYPE"] = [NodeConfig.PublishOptionsFormType],
        ["pubsub#persist_items"] = ["true"],
        ["pubsub#max_items"] = ["max"],
        ["pubsub#send_last_published_item"] = ["never"],
        ["pubsub#access_model"] = ["whitelist"],
    };
}
