using Xmpp.Server.Storage;

namespace Xmpp.Server.Modules.Presence;

/// <summary>What the server does with one subscription stanza: the entry afterwards and whether the stanza goes on.</summary>
/// <param name="Item">The roster entry afterwards (null: no entry); the same instance as before when nothing changed.</param>
/// <param name="Forward">Outbound: route the stanza to the contact. Inbound: deliver it to the user.</param>
/// <param name="AutoReply">Inbound subscribe that the server answers with 'subscribed' on the user's behalf.</param>
public readonly record struct SubscriptionOutcome(RosterItem? Item, bool Forward, bool AutoReply = false);

/// <summary>
/// The subscription state machine of RFC 6121 §3 and Appendix A, as pure functions of the user's roster
/// entry for the contact ("None + Pending Out" = subscription none, PendingOut). Outbound means sent by
/// the user (processed by the user's server), inbound means received by the user from the contact.
/// Subscription pre-approval (§3.4) is supported.
/// </summary>
public static class SubscriptionRules
{
    /// <summary>Outbound subscribe (§3.1.2): pending out unless already subscribed; always routed.</summary>
    public static SubscriptionOutcome OutboundSubscribe(RosterItem? item, string contact)
    {
        var current = item ?? RosterItem.Empty(contact);
        if (current.HasTo || current.PendingOut)
        {
            return new(item is { InRoster: false } ? current with { InRoster = true } : item, true);
        }

        return new(current with { PendingOut = true, InRoster = true }, true);
    }

    /// <summary>Outbound unsubscribe (§3.3.2): cancels To and Pending Out; always routed.</summary>
    public static SubscriptionOutcome OutboundUnsubscribe(RosterItem? item)
    {
        if (item is null || (!item.HasTo && !item.PendingOut))
        {
            return new(item, true);
        }

        return new(item with { Subscription = WithoutTo(item.Subscription), PendingOut = false }, true);
    }

    /// <summary>Outbound subscribed (§3.1.5, Appendix A.2.1); pre-approval (§3.4.2) when there is no request to answer.</summary>
    public static SubscriptionOutcome OutboundSubscribed(RosterItem? item, string contact)
    {
        if (item is { PendingIn: true })
        {
            return new(item with
            {
                Subscription = WithFrom(item.Subscription),
                PendingIn = false,
                PendingInRequest = null,
                Approved = false,
                InRoster = true,
            }, true);
        }

        if (item is { HasFrom: true })
        {
            return new(item, false);
        }

        if (item is { Approved: true, InRoster: true })
        {
            return new(item, false);
        }

        return new((item ?? RosterItem.Empty(contact)) with { Approved = true, InRoster = true }, false);
    }

    /// <summary>Outbound unsubscribed (§3.2.2, Appendix A.2.2): denies a request or cancels From; else withdraws a pre-approval.</summary>
    public static SubscriptionOutcome OutboundUnsubscribed(RosterItem? item)
    {
        if (item is not null && (item.HasFrom || item.PendingIn))
        {
            var after = item with { Subscription = WithoutFrom(item.Subscription), PendingIn = false, PendingInRequest = null, Approved = false };
            return new(Prune(after), true);
        }

        if (item is { Approved: true })
        {
            return new(item with { Approved = false }, false);
        }

        return new(item, false);
    }

    /// <summary>Inbound subscribe (§3.1.3, Appendix A.3.1; a repeated request is delivered again, see below).</summary>
    public static SubscriptionOutcome InboundSubscribe(RosterItem? item, string contact, string request)
    {
        if (item is { HasFrom: true })
        {
            return new(item, false, AutoReply: true);
        }

        if (item is { Approved: true })
        {
            // §3.4.3: a pre-approved request is accepted without asking the user.
            return new(item with { Subscription = WithFrom(item.Subscription), Approved = false }, false, AutoReply: true);
        }

        if (item is { PendingIn: true })
        {
            // A request repeated while the first is unanswered. Appendix A.3.1 lists it as "no delivery, no state
            // change", but §3.1.3 rule 3 says the contact's server "MUST send that subscription request to all available
            // resources", and a repeated request is how a contact asks again when the first was lost or dismissed (or
            // carries a new status or extension). It is delivered, and it replaces the stored request, so that the one
            // delivered at the next login (rule 4) is the newest. The state does not change.
            return new(item with { PendingInRequest = request }, true);
        }

        return new((item ?? RosterItem.Empty(contact)) with { PendingIn = true, PendingInRequest = request }, true);
    }

    /// <summary>Inbound unsubscribe (§3.3.3, Appendix A.3.2): the contact no longer wants the user's presence.</summary>
    public static SubscriptionOutcome InboundUnsubscribe(RosterItem? item)
    {
        if (item is null || (!item.HasFrom && !item.PendingIn))
        {
            return new(item, false);
        }

        return new(Prune(item with { Subscription = WithoutFrom(item.Subscription), PendingIn = false, PendingInRequest = null }), true);
    }

    /// <summary>Inbound subscribed (§3.1.6, Appendix A.3.3): only answers a request of ours.</summary>
    public static SubscriptionOutcome InboundSubscribed(RosterItem? item)
    {
        if (item is not { PendingOut: true })
        {
            return new(item, false);
        }

        return new(item with { Subscription = WithTo(item.Subscription), PendingOut = false }, true);
    }

    /// <summary>Inbound unsubscribed (§3.2.3, Appendix A.3.4): the contact denied or cancelled our subscription.</summary>
    public static SubscriptionOutcome InboundUnsubscribed(RosterItem? item)
    {
        if (item is null || (!item.HasTo && !item.PendingOut))
        {
            return new(item, false);
        }

        return new(item with { Subscription = WithoutTo(item.Subscription), PendingOut = false }, true);
    }

    /// <summary>An entry kept only for a request that is gone no longer needs to exist.</summary>
    private static RosterItem? Prune(RosterItem item) =>
        !item.InRoster && item.Subscription == Subscription.None && !item.PendingIn && !item.PendingOut && !item.Approved ? null : item;

    private static Subscription WithTo(Subscription s) => s is Subscription.From or Subscription.Both ? Subscription.Both : Subscription.To;

    private static Subscription WithFrom(Subscription s) => s is Subscription.To or Subscription.Both ? Subscription.Both : Subscription.From;

    private static Subscription WithoutTo(Subscription s) => s is Subscription.From or Subscription.Both ? Subscription.From : Subscription.None;

    private static Subscription WithoutFrom(Subscription s) => s is Subscription.To or Subscription.Both ? Subscription.To : Subscription.None;
}
