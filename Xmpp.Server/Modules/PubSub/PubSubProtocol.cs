using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;
using Xmpp.Server.Storage;

namespace Xmpp.Server.Modules.PubSub;

/// <summary>
/// What XEP-0060 services have in common, the generic one (pubsub.HOST) and PEP's per-account ones
/// (XEP-0163): the namespaces, item elements and the error conditions with their pubsub#errors
/// application elements (§7.1.3, §6.1.3 and the like).
/// </summary>
public static class PubSubProtocol
{
    public const string Namespace = "http://jabber.org/protocol/pubsub";
    public const string OwnerNamespace = "http://jabber.org/protocol/pubsub#owner";
    public const string EventNamespace = "http://jabber.org/protocol/pubsub#event";
    public const string ErrorsNamespace = "http://jabber.org/protocol/pubsub#errors";

    /// <summary>The node configuration form (§16.4.4).</summary>
    public const string NodeConfigFormType = "http://jabber.org/protocol/pubsub#node_config";

    /// <summary>Publishing options (§7.1.5), preconditions on the node's configuration.</summary>
    public const string PublishOptionsFormType = "http://jabber.org/protocol/pubsub#publish-options";

    /// <summary>An &lt;item/&gt; of the given namespace (pubsub or pubsub#event), with its payload or without.</summary>
    public static Element ItemElement(string ns, PubSubItem item, bool payload)
    {
        var element = new Element("item", ns).SetAttribute("id", item.Id).SetAttribute("publisher", item.Publisher);
        if (payload && item.Xml.Length > 0)
        {
            element.Add(ElementParser.Parse(item.Xml));
        }

        return element;
    }

    /// <summary>The 'node' attribute of a request, which must be there (§7.1.3.3 nodeid-required).</summary>
    public static string NodeName(Element command) =>
        command.GetAttribute("node") is { Length: > 0 } node ? node : throw Error(StanzaErrorCondition.BadRequest, "nodeid-required", "which node?");

    /// <summary>The positive max_items of an items request (§6.5.7), or null.</summary>
    public static int? MaxItems(Element items)
    {
        if (items.GetAttribute("max_items") is not { } text)
        {
            return null;
        }

        return int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var m) && m > 0
            ? m
            : throw new StanzaErrorException(StanzaErrorCondition.BadRequest, "max_items must be a positive integer");
    }

    /// <summary>The ids of the &lt;item/&gt; children of an items or retract request.</summary>
    public static List<string> ItemIds(Element command) =>
        command.Elements().Where(e => e.Is("item", Namespace)).Select(e => e.GetAttribute("id")).OfType<string>().ToList();

    /// <summary>A stanza error with a pubsub#errors application condition.</summary>
    public static StanzaErrorException Error(StanzaErrorCondition condition, string application, string? text) =>
        new(new StanzaError(condition, text) { Application = new Element(application, ErrorsNamespace) });

    /// <summary>§7.1.5: the node's configuration is not what the publish-options require.</summary>
    public static StanzaErrorException PreconditionNotMet(string? text) =>
        Error(StanzaErrorCondition.Conflict, "precondition-not-met", text);

    /// <summary>feature-not-implemented with &lt;unsupported feature='...'/&gt; (for what a service or node does not offer).</summary>
    public static StanzaErrorException Unsupported(string feature, string? text = null) =>
        new(new StanzaError(StanzaErrorCondition.FeatureNotImplemented, text)
        {
            Application = new Element("unsupported", ErrorsNamespace).SetAttribute("feature", feature),
        });
}
