using Xmpp.Core.Addressing;

namespace Xmpp.Server.Modules.PubSub;

/// <summary>An entity's standing with a node (XEP-0060 §4.1), ordered by privilege.</summary>
public enum NodeAffiliation
{
    Outcast = -1,
    None = 0,
    Member = 1,
    PublishOnly = 2,
    Publisher = 3,
    Owner = 4,
}

/// <summary>A subscription's state (§4.2); "none" is the absence of one.</summary>
public enum SubscriptionState
{
    Pending,
    Unconfigured,
    Subscribed,
}

/// <summary>One subscription: several may exist for one JID (multi-subscribe, §6.1.6), told apart by their SubID.</summary>
internal sealed record NodeSubscription(string SubId, Jid Jid, SubscriptionState State, SubscriptionOptions Options);

/// <summary>A node of the service in memory: its configuration, affiliations and subscriptions (its items stay in storage).</summary>
internal sealed class ServiceNode(string name, NodeOptions config)
{
    public string Name { get; } = name;

    public NodeOptions Config { get; set; } = config;

    /// <summary>Affiliations by bare JID; "none" is not kept.</summary>
    public Dictionary<string, NodeAffiliation> Affiliations { get; } = new(StringComparer.Ordinal);

    /// <summary>Subscriptions in the order they were made.</summary>
    public List<NodeSubscription> Subscriptions { get; } = [];

    public NodeAffiliation AffiliationOf(Jid entity) =>
        Affiliations.TryGetValue(entity.Bare.ToString(), out var affiliation) ? affiliation : NodeAffiliation.None;

    public IEnumerable<string> Owners => Affiliations.Where(a => a.Value == NodeAffiliation.Owner).Select(a => a.Key);

    /// <summary>The subscriptions of an entity: those of its bare JID and of any of its full JIDs.</summary>
    public IEnumerable<NodeSubscription> SubscriptionsOf(Jid entity) => Subscriptions.Where(s => s.Jid.Bare == entity.Bare);

    public bool IsSubscribed(Jid entity) => SubscriptionsOf(entity).Any(s => s.State == SubscriptionState.Subscribed);

    public static string AffiliationName(NodeAffiliation affiliation) => affiliation switch
    {
        NodeAffiliation.PublishOnly => "publish-only",
        _ => affiliation.ToString().ToLowerInvariant(),
    };

    public static NodeAffiliation? ParseAffiliation(string? text) => text switch
    {
        "owner" => NodeAffiliation.Owner,
        "publisher" => NodeAffiliation.Publisher,
        "publish-only" => NodeAffiliation.PublishOnly,
        "member" => NodeAffiliation.Member,
        "none" => NodeAffiliation.None,
        "outcast" => NodeAffiliation.Outcast,
        _ => null,
    };

    public static string StateName(SubscriptionState state) => state.ToString().ToLowerInvariant();

    public static SubscriptionState? ParseState(string? text) => text switch
    {
        "pending" => SubscriptionState.Pending,
        "unconfigured" => SubscriptionState.Unconfigured,
        "subscribed" => SubscriptionState.Subscribed,
        _ => null,
    };
}
