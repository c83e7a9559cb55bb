using System.Globalization;
using System.Text;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;

namespace Xmpp.Server.Modules.Pep;

/// <summary>Who may see a node's items (XEP-0060 §4.5); PEP's default is presence (XEP-0163 §4.1).</summary>
public enum AccessModel
{
    Presence,
    Open,
    Whitelist,
}

/// <summary>
/// The node configuration options this service supports (XEP-0060 §16.4.4, pubsub#node_config), stored as
/// "name=value" lines. Only the owner publishes (publish_model publishers).
/// </summary>
public sealed record NodeConfig
{
    public const string FormType = PubSub.PubSubProtocol.NodeConfigFormType;

    public const string PublishOptionsFormType = PubSub.PubSubProtocol.PublishOptionsFormType;

    public AccessModel Access { get; init; } = AccessModel.Presence;

    public int MaxItems { get; init; } = 1;

    public bool PersistItems { get; init; } = true;

    /// <summary>never, on_sub or on_sub_and_presence.</summary>
    public string SendLastPublishedItem { get; init; } = "on_sub_and_presence";

    public bool NotifyRetract { get; init; } = true;

    public bool NotifyDelete { get; init; } = true;

    public bool DeliverPayloads { get; init; } = true;

    public string? Title { get; init; }

    public static string AccessName(AccessModel access) => access switch
    {
        AccessModel.Open => "open",
        AccessModel.Whitelist => "whitelist",
        _ => "presence",
    };

    public string Serialize()
    {
        var s = new StringBuilder();
        foreach (var (name, value) in Fields())
        {
            s.Append(name).Append('=').Append(value.Replace("\n", " ", StringComparison.Ordinal)).Append('\n');
        }

        return s.ToString();
    }

    public static NodeConfig Parse(string text, int maxItemsLimit)
    {
        var values = text.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split('=', 2))
            .Where(p => p.Length == 2)
            .ToDictionary(p => p[0], p => new List<string> { p[1] }, StringComparer.Ordinal);
        return new NodeConfig().With(values, maxItemsLimit, out _) ?? new NodeConfig();
    }

    /// <summary>
    /// This configuration with the submitted fields applied; null when a value is invalid (<paramref name="problem"/>
    /// says which). Unknown fields are listed in <paramref name="problem"/> too but do not fail.
    /// </summary>
    public NodeConfig? With(Dictionary<string, List<string>> values, int maxItemsLimit, out string? problem)
    {
        problem = null;
        var config = this;
        foreach (var (name, list) in values)
        {
            var value = list.Count > 0 ? list[0] : string.Empty;
            switch (name)
            {
                case "FORM_TYPE":
                    break;
                case "pubsub#access_model":
                    AccessModel? access = value switch
                    {
                        "presence" => AccessModel.Presence,
                        "open" => AccessModel.Open,
                        "whitelist" => AccessModel.Whitelist,
                        _ => null,
                    };
                    if (access is null)
                    {
                        problem = $"access model '{value}' is not supported (open, presence, whitelist)";
                        return null;
                    }

                    config = config with { Access = access.Value };
                    break;
                case "pubsub#max_items":
                    if (value == "max")
                    {
                        config = config with { MaxItems = maxItemsLimit };
                    }
                    else if (int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var max) && max >= 1 && max <= maxItemsLimit)
                    {
                        config = config with { MaxItems = max };
                    }
                    else
                    {
                        problem = $"max_items must be 1 to {maxItemsLimit} or 'max'";
                        return null;
                    }

                    break;
                case "pubsub#persist_items" or "pubsub#notify_retract" or "pubsub#notify_delete" or "pubsub#deliver_payloads":
                    if (DataForm.ParseBoolean(value) is not { } flag)
                    {
                        problem = $"{name} must be a boolean";
                        return null;
                    }

                    config = name switch
                    {
                        "pubsub#persist_items" => config with { PersistItems = flag },
                        "pubsub#notify_retract" => config with { NotifyRetract = flag },
                        "pubsub#notify_delete" => config with { NotifyDelete = flag },
                        _ => config with { DeliverPayloads = flag },
                    };
                    break;
                case "pubsub#send_last_published_item":
                    if (value is not ("never" or "on_sub" or "on_sub_and_presence"))
                    {
                        problem = "send_last_published_item must be never, on_sub or on_sub_and_presence";
                        return null;
                    }

                    config = config with { SendLastPublishedItem = value };
                    break;
                case "pubsub#title":
                    config = config with { Title = value.Length == 0 ? null : value };
                    break;
                case "pubsub#publish_model":
                    if (value != "publishers")
                    {
                        problem = "only the owner publishes on a personal node (publish_model publishers)";
                        return null;
                    }

                    break;
                default:
                    problem = $"unknown option {name}";
                    break;
            }
        }

        return config;
    }

    /// <summary>Whether a publish-options precondition holds (XEP-0060 §7.1.5): every given field has the node's value.</summary>
    public bool Satisfies(Dictionary<string, List<string>> options, int maxItemsLimit, out string? problem)
    {
        var wanted = With(options, maxItemsLimit, out problem);
        if (wanted is null || (problem is not null && problem.StartsWith("unknown", StringComparison.Ordinal)))
        {
            return false;
        }

        problem = wanted == this ? null : "the node's configuration differs from the publish options";
        return problem is null;
    }

    /// <summary>The node configuration form (§8.2), type "form" for the owner to fill in.</summary>
    public Element ToForm()
    {
        var form = DataForm.Create("form", FormType);
        foreach (var (name, value) in Fields())
        {
            var type = name switch
            {
                "pubsub#access_model" or "pubsub#send_last_published_item" or "pubsub#publish_model" => "list-single",
                "pubsub#persist_items" or "pubsub#notify_retract" or "pubsub#notify_delete" or "pubsub#deliver_payloads" => "boolean",
                _ => "text-single",
            };
            var field = DataForm.AddField(form, name, type, value);
            var options = name switch
            {
                "pubsub#access_model" => new[] { "open", "presence", "whitelist" },
                "pubsub#send_last_published_item" => ["never", "on_sub", "on_sub_and_presence"],
                "pubsub#publish_model" => ["publishers"],
                _ => [],
            };
            foreach (var o in options)
            {
                field.AddChild("option", DataForm.Namespace).AddChild("value", DataForm.Namespace).AddText(o);
            }
        }

        return form;
    }

    private IEnumerable<(string Name, string Value)> Fields()
    {
        yield return ("pubsub#access_model", AccessName(Access));
        yield return ("pubsub#max_items", MaxItems.ToString(CultureInfo.InvariantCulture));
        yield return ("pubsub#persist_items", PersistItems ? "true" : "false");
        yield return ("pubsub#send_last_published_item", SendLastPublishedItem);
        yield return ("pubsub#notify_retract", NotifyRetract ? "true" : "false");
        yield return ("pubsub#notify_delete", NotifyDelete ? "true" : "false");
        yield return ("pubsub#deliver_payloads", DeliverPayloads ? "true" : "false");
        yield return ("pubsub#publish_model", "publishers");
        if (Title is not null)
        {
            yield return ("pubsub#title", Title);
        }
    }
}
