namespace Xmpp.Server.Storage;

/// <summary>The subscription part of a roster item's state (RFC 6121 §2.1.2.5).</summary>
public enum Subscription
{
    None,
    To,
    From,
    Both,
}

/// <summary>The names RFC 6121 gives subscription states (roster items, storage, XEP-0227).</summary>
public static class Subscriptions
{
    public static string Name(this Subscription s) => s switch
    {
        Subscription.To => "to",
        Subscription.From => "from",
        Subscription.Both => "both",
        _ => "none",
    };

    /// <summary>A state by its name; anything else (or nothing) is none.</summary>
    public static Subscription Parse(string? name) => name switch
    {
        "to" => Subscription.To,
        "from" => Subscription.From,
        "both" => Subscription.Both,
        _ => Subscription.None,
    };
}

/// <summary>
/// One roster entry (RFC 6121 §2.1.2 with the states of Appendix A). <paramref name="PendingOut"/> is
/// ask='subscribe'; <paramref name="PendingIn"/> an inbound request not yet answered, kept with the
/// request itself (<paramref name="PendingInRequest"/>, the stanza's XML) to deliver it again at the next
/// login; <paramref name="Approved"/> a subscription pre-approval (§3.4). An entry that exists only to
/// remember an inbound request is not <paramref name="InRoster"/>: the user's roster does not show it.
/// </summary>
public sealed record RosterItem(
    string Jid,
    string? Name,
    Subscription Subscription,
    bool PendingOut,
    bool PendingIn,
    bool Approved,
    IReadOnlyList<string> Groups,
    bool InRoster = true,
    string? PendingInRequest = null)
{
    /// <summary>The contact receives the user's presence.</summary>
    public bool HasFrom => Subscription is Subscription.From or Subscription.Both;

    /// <summary>The user receives the contact's presence.</summary>
    public bool HasTo => Subscription is Subscription.To or Subscription.Both;

    public static RosterItem Empty(string jid) => new(jid, null, Subscription.None, false, false, false, [], InRoster: false);
}

/// <summary>A whole roster and its version (RFC 6121 §2.6), which changes with every change the client sees.</summary>
public sealed record StoredRoster(IReadOnlyList<RosterItem> Items, long Version);

/// <summary>Rosters per account. Callers serialise changes per account; each write also records the new version.</summary>
public interface IRosterStore
{
    Task<StoredRoster> LoadAsync(string host, string username, CancellationToken cancellationToken);

    /// <summary>One entry, or null (also when the account does not exist).</summary>
    Task<RosterItem?> GetItemAsync(string host, string username, string contact, CancellationToken cancellationToken);

    /// <summary>Adds or replaces an entry and sets the roster version.</summary>
    Task SaveAsync(string host, string username, RosterItem item, long version, CancellationToken cancellationToken);

    /// <summary>Removes an entry and sets the roster version.</summary>
    Task RemoveAsync(string host, string username, string contact, long version, CancellationToken cancellationToken);
}
