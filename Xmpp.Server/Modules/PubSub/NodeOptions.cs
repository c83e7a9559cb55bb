using System.Globalization;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;

namespace Xmpp.Server.Modules.PubSub;

/// <summary>Who may subscribe to a node and retrieve its items (XEP-0060 §4.5).</summary>
public enum AccessModel
{
    Open,
    Presence,
    Roster,
    Authorize,
    Whitelist,
}

/// <summary>Who may publish to a node (§16.4.4, pubsub#publish_model).</summary>
public enum PublishModel
{
    Publishers,
    Subscribers,
    Open,
}

/// <summary>
/// A node's configuration on the pubsub service (§16.4.4, pubsub#node_config). Stored as the submitted
/// form it amounts to, so that every field, multi-valued ones too, reads back the way it was set.
/// </summary>
public sealed record NodeOptions
{
    public bool IsCollection { get; init; }

    /// <summary>The collection this node belongs to (pubsub#collection), or null for a node at the root.</summary>
    public string? Collection { get; init; }

    public string? Title { get; init; }

    public string? Description { get; init; }

    /// <summary>The payload's namespace (pubsub#type).</summary>
    public string? PayloadType { get; init; }

    public AccessModel Access { get; init; } = AccessModel.Open;

    /// <summary>The owner's roster groups whose contacts may subscribe, for the roster access model.</summary>
    public IReadOnlyList<string> RosterGroups { get; init; } = [];

    public PublishModel Publish { get; init; } = PublishModel.Publishers;

    public int MaxItems { get; init; } = 10;

    public bool PersistItems { get; init; } = true;

    public bool DeliverPayloads { get; init; } = true;

    public bool DeliverNotifications { get; init; } = true;

    public bool NotifyConfig { get; init; }

    public bool NotifyDelete { get; init; } = true;

    public bool NotifyRetract { get; init; } = true;

    /// <summary>Whether subscriptions are allowed (pubsub#subscribe).</summary>
    public bool Subscribe { get; init; } = true;

    /// <summary>never or on_sub (§6.1.7): the last item goes to a new subscriber.</summary>
    public string SendLastPublishedItem { get; init; } = "on_sub";

    /// <summary>headline or normal (§12.11).</summary>
    public string NotificationType { get; init; } = "headline";

    public static string Name(AccessModel access) => access.ToString().ToLowerInvariant();

    public static string Name(PublishModel publish) => publish.ToString().ToLowerInvariant();

    public string Serialize() => ToForm("submit", MaxItems).ToString();

    /// <summary>A stored configuration; max_items within today's limit.</summary>
    public static NodeOptions Parse(string text, int maxItemsLimit) =>
        DataForm.Values(ElementParser.Parse(text)) is { } values && new NodeOptions().With(values, int.MaxValue, creating: true, out _) is { } parsed
            ? parsed with { MaxItems = Math.Min(parsed.MaxItems, maxItemsLimit) }
            : new NodeOptions();

    /// <summary>
    /// This configuration with the submitted fields applied; null when a value is invalid (<paramref name="problem"/>
    /// says which). Fields this service does not know are ignored (§8.2.4: the form is the service's), but named in
    /// <paramref name="problem"/>, which publish-options treat as a precondition that cannot hold.
    /// </summary>
    public NodeOptions? With(Dictionary<string, List<string>> values, int maxItemsLimit, bool creating, out string? problem)
    {
        problem = null;
        var config = this;
        foreach (var (name, list) in values)
        {
            var value = list.Count > 0 ? list[0] : string.Empty;
            var next = Apply(config, name, value, list, maxItemsLimit, creating, out var invalid, out var unknown);
            if (invalid is not null)
            {
                problem = invalid;
                return null;
            }

            problem ??= unknown;
            config = next;
        }

        return config;
    }

    private static NodeOptions Apply(NodeOptions config, string name, string value, List<string> list, int maxItemsLimit, bool creating, out string? invalid, out string? unknown)
    {
        invalid = null;
        unknown = null;
        switch (name)
        {
            case "FORM_TYPE":
                return config;
            case "pubsub#node_type":
                if (value is not ("leaf" or "collection"))
                {
                    invalid = "node_type must be leaf or collection";
                    return config;
                }

                if (!creating && (value == "collection") != config.IsCollection)
                {
                    invalid = "a node's type is set when it is created";
                    return config;
                }

                return config with { IsCollection = value == "collection" };
            case "pubsub#collection":
                var parents = list.Where(v => v.Length > 0).ToList();
                if (parents.Count > 1)
                {
                    invalid = "a node belongs to at most one collection here";
                    return config;
                }

                return config with { Collection = parents.Count == 1 ? parents[0] : null };
            case "pubsub#title":
                return config with { Title = value.Length == 0 ? null : value };
            case "pubsub#description":
                return config with { Description = value.Length == 0 ? null : value };
            case "pubsub#type":
                return config with { PayloadType = value.Length == 0 ? null : value };
            case "pubsub#access_model":
                if (!Enum.TryParse<AccessModel>(value, ignoreCase: true, out var access) || value != Name(access))
                {
                    invalid = $"access model '{value}' is not supported (open, presence, roster, authorize, whitelist)";
                    return config;
                }

                return config with { Access = access };
            case "pubsub#roster_groups_allowed":
                return config with { RosterGroups = list.Where(v => v.Length > 0).Distinct(StringComparer.Ordinal).ToList() };
            case "pubsub#publish_model":
                if (!Enum.TryParse<PublishModel>(value, ignoreCase: true, out var publish) || value != Name(publish))
                {
                    invalid = $"publish model '{value}' is not supported (publishers, subscribers, open)";
                    return config;
                }

                return config with { Publish = publish };
            case "pubsub#max_items":
                if (value == "max")
                {
                    return config with { MaxItems = maxItemsLimit };
                }

                if (int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var max) && max >= 1 && max <= maxItemsLimit)
                {
                    return config with { MaxItems = max };
                }

                invalid = $"max_items must be 1 to {maxItemsLimit} or 'max'";
                return config;
            case "pubsub#send_last_published_item":
                // on_sub_and_presence needs the subscribers' presence, which a service does not follow: on_sub.
                if (value is not ("never" or "on_sub" or "on_sub_and_presence"))
                {
                    invalid = "send_last_published_item must be never or on_sub";
                    return config;
                }

                return config with { SendLastPublishedItem = value == "never" ? "never" : "on_sub" };
            case "pubsub#notification_type":
                if (value is not ("headline" or "normal"))
                {
                    invalid = "notification_type must be headline or normal";
                    return config;
                }

                return config with { NotificationType = value };
            default:
                return ApplyFlag(config, name, value, out invalid, out unknown);
        }
    }

    private static NodeOptions ApplyFlag(NodeOptions config, string name, string value, out string? invalid, out string? unknown)
    {
        invalid = null;
        unknown = null;
        if (!FlagNames.Contains(name))
        {
            unknown = $"unknown option {name}";
            return config;
        }

        if (DataForm.ParseBoolean(value) is not { } flag)
        {
            invalid = $"{name} must be a boolean";
            return config;
        }

        return name switch
        {
            "pubsub#persist_items" => config with { PersistItems = flag },
            "pubsub#deliver_payloads" => config with { DeliverPayloads = flag },
            "pubsub#deliver_notifications" => config with { DeliverNotifications = flag },
            "pubsub#notify_config" => config with { NotifyConfig = flag },
            "pubsub#notify_delete" => config with { NotifyDelete = flag },
            "pubsub#notify_retract" => config with { NotifyRetract = flag },
            _ => config with { Subscribe = flag },
        };
    }

    private static readonly HashSet<string> FlagNames =
    [
        "pubsub#persist_items", "pubsub#deliver_payloads", "pubsub#deliver_notifications", "pubsub#notify_config",
        "pubsub#notify_delete", "pubsub#notify_retract", "pubsub#subscribe",
    ];

    /// <summary>Whether a publish-options precondition holds (§7.1.5): every given field has the node's value.</summary>
    public bool Satisfies(Dictionary<string, List<string>> options, int maxItemsLimit, out string? problem)
    {
        var wanted = With(options, maxItemsLimit, creating: false, out problem);
        if (wanted is null || problem is not null)
        {
            return false;
        }

        problem = wanted == this || Equivalent(wanted) ? null : "the node's configuration differs from the publish options";
        return problem is null;
    }

    private bool Equivalent(NodeOptions other) => other with { RosterGroups = RosterGroups } == this && other.RosterGroups.SequenceEqual(RosterGroups, StringComparer.Ordinal);

    /// <summary>The configuration as a form: "form" for the owner to fill in (§8.2), "submit" to store it.</summary>
    public Element ToForm(string type, int maxItemsLimit)
    {
        var form = DataForm.Create(type, PubSubProtocol.NodeConfigFormType);
        Field(form, "pubsub#title", "text-single", Title ?? string.Empty);
        Field(form, "pubsub#description", "text-single", Description ?? string.Empty);
        Field(form, "pubsub#type", "text-single", PayloadType ?? string.Empty);
        Field(form, "pubsub#node_type", "list-single", IsCollection ? "collection" : "leaf").Options("leaf", "collection");
        DataForm.AddField(form, "pubsub#collection", "text-multi", Collection is null ? [] : [Collection]);
        Field(form, "pubsub#access_model", "list-single", Name(Access)).Options(Enum.GetValues<AccessModel>().Select(Name).ToArray());
        DataForm.AddField(form, "pubsub#roster_groups_allowed", "list-multi", [.. RosterGroups]);
        Field(form, "pubsub#publish_model", "list-single", Name(Publish)).Options(Enum.GetValues<PublishModel>().Select(Name).ToArray());
        var maxItems = Field(form, "pubsub#max_items", "text-single", MaxItems.ToString(CultureInfo.InvariantCulture));
        Field(form, "pubsub#persist_items", "boolean", Bool(PersistItems));
        Field(form, "pubsub#deliver_payloads", "boolean", Bool(DeliverPayloads));
        Field(form, "pubsub#deliver_notifications", "boolean", Bool(DeliverNotifications));
        Field(form, "pubsub#notify_config", "boolean", Bool(NotifyConfig));
        Field(form, "pubsub#notify_delete", "boolean", Bool(NotifyDelete));
        Field(form, "pubsub#notify_retract", "boolean", Bool(NotifyRetract));
        Field(form, "pubsub#subscribe", "boolean", Bool(Subscribe));
        Field(form, "pubsub#send_last_published_item", "list-single", SendLastPublishedItem).Options("never", "on_sub");
        Field(form, "pubsub#notification_type", "list-single", NotificationType).Options("headline", "normal");
        if (type == "form")
        {
            maxItems.SetAttribute("label", $"Items kept (1 to {maxItemsLimit.ToString(CultureInfo.InvariantCulture)}, or max)");
        }

        return form;
    }

    private static Element Field(Element form, string var, string type, string value) => DataForm.AddField(form, var, type, value);

    private static string Bool(bool value) => value ? "true" : "false";
}

/// <summary>A subscription's options (§6.3, pubsub#subscribe_options).</summary>
public sealed record SubscriptionOptions
{
    public const string FormType = "http://jabber.org/protocol/pubsub#subscribe_options";

    /// <summary>Whether notifications are delivered at all (pubsub#deliver).</summary>
    public bool Deliver { get; init; } = true;

    /// <summary>For a collection (XEP-0248): notified of items, or of new nodes.</summary>
    public string SubscriptionType { get; init; } = "items";

    /// <summary>For a collection: "1" (its own children) or "all" (every descendant).</summary>
    public string Depth { get; init; } = "1";

    public string Serialize() => ToForm("submit").ToString();

    public static SubscriptionOptions Parse(string text) =>
        text.Length > 0 && DataForm.Values(ElementParser.Parse(text)) is { } values && new SubscriptionOptions().With(values, out _) is { } parsed
            ? parsed
            : new SubscriptionOptions();

    /// <summary>These options with a submitted form applied; null when a field is unknown or invalid (§6.3.5 invalid-options).</summary>
    public SubscriptionOptions? With(Dictionary<string, List<string>> values, out string? problem)
    {
        problem = null;
        var options = this;
        foreach (var (name, list) in values)
        {
            var value = list.Count > 0 ? list[0] : string.Empty;
            switch (name)
            {
                case "FORM_TYPE":
                    break;
                case "pubsub#deliver" when DataForm.ParseBoolean(value) is { } deliver:
                    options = options with { Deliver = deliver };
                    break;
                case "pubsub#subscription_type" when value is "items" or "nodes":
                    options = options with { SubscriptionType = value };
                    break;
                case "pubsub#subscription_depth" when value is "1" or "all":
                    options = options with { Depth = value };
                    break;
                default:
                    problem = $"{name}: not an option of this service, or an invalid value";
                    return null;
            }
        }

        return options;
    }

    public Element ToForm(string type)
    {
        var form = DataForm.Create(type, FormType);
        DataForm.AddField(form, "pubsub#deliver", "boolean", Deliver ? "true" : "false");
        DataForm.AddField(form, "pubsub#subscription_type", "list-single", SubscriptionType).Options("items", "nodes");
        DataForm.AddField(form, "pubsub#subscription_depth", "list-single", Depth).Options("1", "all");
        return form;
    }
}

internal static class FormFieldExtensions
{
    /// <summary>Adds the options of a list field; returns the field.</summary>
    public static Element Options(this Element field, params string[] options)
    {
        foreach (var o in options)
        {
            field.AddChild("option", DataForm.Namespace).AddChild("value", DataForm.Namespace).AddText(o);
        }

        return field;
    }
}
