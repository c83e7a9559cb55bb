using Xmpp.Core.Caps;
using Xmpp.Core.Xml;

namespace Xmpp.Server.Modules.Console;

/// <summary>
/// Which client a session runs, as far as its presence tells: the node of its XEP-0115 caps (§4: "a URI that
/// uniquely identifies a software application, typically a URL at the website of the project or company"), shown by
/// name for well-known projects and as its host name otherwise. No query is sent for it.
/// </summary>
internal static class ClientNames
{
    /// <summary>The host names of well-known clients' caps nodes ("www." removed), and their names.</summary>
    private static readonly Dictionary<string, string> Known = new(StringComparer.OrdinalIgnoreCase)
    {
        ["gajim.org"] = "Gajim",
        ["conversations.im"] = "Conversations",
        ["dino.im"] = "Dino",
        ["profanity.im"] = "Profanity",
        ["profanity-im.github.io"] = "Profanity",
        ["pidgin.im"] = "Pidgin",
        ["igniterealtime.org"] = "Smack",
        ["slixmpp.com"] = "slixmpp",
        ["conversejs.org"] = "Converse.js",
        ["monal.im"] = "Monal",
        ["monal-im.org"] = "Monal",
        ["psi-im.org"] = "Psi",
        ["psi-plus.com"] = "Psi+",
        ["movim.eu"] = "Movim",
        ["siskin.im"] = "Siskin IM",
        ["beagle.im"] = "BeagleIM",
        ["cheogram.com"] = "Cheogram",
        ["blabber.im"] = "blabber.im",
        ["poez.io"] = "Poezio",
        ["kaidan.im"] = "Kaidan",
        ["swift.im"] = "Swift",
        ["snikket.org"] = "Snikket",
        ["quicksy.im"] = "Quicksy",
        ["xabber.com"] = "Xabber",
        ["adium.im"] = "Adium",
        ["miranda-ng.org"] = "Miranda NG",
        ["mcabber.com"] = "mcabber",
        ["bitlbee.org"] = "BitlBee",
        ["jitsi.org"] = "Jitsi",
        ["yaxim.org"] = "yaxim",
        ["chatsecure.org"] = "ChatSecure",
    };

    /// <summary>Longest name shown for an unknown node.</summary>
    private const int MaxLength = 64;

    /// <summary>The client's name from a presence's caps, or null when it has none.</summary>
    public static string? FromPresence(Element? presence) =>
        presence?.Child("c", EntityCapabilities.Namespace)?.GetAttribute("node") is { Length: > 0 } node ? FromNode(node) : null;

    /// <summary>A caps node's client: a well-known name, else the node's host name, else the node itself (shortened).</summary>
    public static string FromNode(string node)
    {
        if (Uri.TryCreate(node, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https" && uri.Host.Length > 0)
        {
            var host = uri.Host.StartsWith("www.", StringComparison.OrdinalIgnoreCase) ? uri.Host[4..] : uri.Host;
            return Known.TryGetValue(host, out var name) ? name : host;
        }

        return node.Length <= MaxLength ? node : node[..MaxLength] + "…";
    }
}
