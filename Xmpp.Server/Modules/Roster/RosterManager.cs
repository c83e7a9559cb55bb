using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Globalization;
using NLog;
using Xmpp.Core;
using Xmpp.Core.Addressing;
using Xmpp.Core.Xml;
using Xmpp.Server.Sessions;
using Xmpp.Server.Storage;

namespace Xmpp.Server.Modules.Roster;

/// <summary>An account's roster as loaded: entries by contact bare JID and the roster version (RFC 6121 §2.6).</summary>
public sealed class AccountRoster(ImmutableDictionary<string, RosterItem> items, long version)
{
    public ImmutableDictionary<string, RosterItem> Items { get; } = items;

    public long Version { get; } = version;

    public string Ver => Version.ToString(CultureInfo.InvariantCulture);

    public RosterItem? Find(Jid contact) => Items.TryGetValue(contact.Bare.ToString(), out var item) ? item : null;

    /// <summary>Contacts that receive the owner's presence (subscription from or both).</summary>
    public IEnumerable<RosterItem> Subscribers => Items.Values.Where(i => i.HasFrom);

    /// <summary>Contacts whose presence the owner receives (subscription to or both).</summary>
    public IEnumerable<RosterItem> Subscriptions => Items.Values.Where(i => i.HasTo);

    /// <summary>
    /// The addresses of <see cref="Subscribers"/>, parsed once for this version of the roster (it is immutable),
    /// so that presence fan-out never parses a contact's JID again.
    /// </summary>
    public IReadOnlyList<Jid> SubscriberJids => _subscriberJids ??= Parse(Subscribers);

    /// <summary>The addresses of <see cref="Subscriptions"/>, parsed once for this version of the roster.</summary>
    public IReadOnlyList<Jid> SubscriptionJids => _subscriptionJids ??= Parse(Subscriptions);

    // Computed at most a few times (a benign race computes the same list twice): the roster never changes.
    private IReadOnlyList<Jid>? _subscriberJids;
    private IReadOnlyList<Jid>? _subscriptionJids;

    private static Jid[] Parse(IEnumerable<RosterItem> items) =>
        [.. items.Select(i => Jid.TryParse(i.Jid, out var jid) ? jid : null).OfType<Jid>()];
}

/// <summary>
/// Rosters of the accounts with bound sessions, kept in memory and written through to the store, with
/// changes serialised per account (striped locks) and pushed to the account's interested resources
/// (RFC 6121 §2.1.6). Offline accounts are read from the store and not cached.
/// </summary>
public sealed class RosterManager
{
    private const int Stripes = 256;
    private readonly IRosterStore _store;
    private readonly ISessionRegistry _sessions;
    private readonly Logger _log;
    private readonly ConcurrentDictionary<Jid, AccountRoster> _cache = new();
    private readonly SemaphoreSlim[] _locks = Enumerable.Range(0, Stripes).Select(_ => new SemaphoreSlim(1, 1)).ToArray();
    private long _pushId;

    public RosterManager(IRosterStore store, ISessionRegistry sessions, Logger log)
    {
        _store = store;
        _sessions = sessions;
        _log = log;
    }

    /// <summary>Drops the cached roster of an account (cluster mode: this node just became its home).</summary>
    public void Forget(Jid owner) => _cache.TryRemove(owner.Bare, out _);

    /// <summary>Entries an account may hold (visible items and remembered requests together).</summary>
    public int MaxItems { get; set; } = 2000;

    public async ValueTask<AccountRoster> GetAsync(Jid owner, CancellationToken cancellationToken)
    {
        owner = owner.Bare;
        if (_cache.TryGetValue(owner, out var cached))
        {
            return cached;
        }

        var gate = Gate(owner);
        await gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await LoadLockedAsync(owner, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            gate.Release();
        }
    }

    /// <summary>
    /// One entry of an account's roster: from the cache for an online account, else one row from the store
    /// (answering a probe for an offline contact needs one entry, not the whole roster).
    /// </summary>
    public async ValueTask<RosterItem?> FindAsync(Jid owner, Jid contact, CancellationToken cancellationToken)
    {
        owner = owner.Bare;
        if (_cache.TryGetValue(owner, out var cached))
        {
            return cached.Find(contact);
        }

        return await _store.GetItemAsync(owner.Domain, owner.Local!, contact.Bare.ToString(), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Changes one entry atomically: <paramref name="mutate"/> gets the current entry (or null) and returns
    /// the new one (null removes it; the same instance means no change). Writes it, bumps the version
    /// when the client-visible item changed and pushes it. Returns the entry before and after.
    /// </summary>
    public async ValueTask<(RosterItem? Before, RosterItem? After)> ChangeAsync(
        Jid owner, Jid contact, Func<RosterItem?, RosterItem?> mutate, CancellationToken cancellationToken)
    {
        owner = owner.Bare;
        var key = contact.Bare.ToString();
        var gate = Gate(owner);
        await gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        AccountRoster roster;
        RosterItem? before, after;
        bool visibleChange;
        try
        {
            roster = await LoadLockedAsync(owner, cancellationToken).ConfigureAwait(false);
            before = roster.Items.GetValueOrDefault(key);
            after = mutate(before);
            if (ReferenceEquals(before, after))
            {
                return (before, after);
            }

            if (after is not null && before is null && roster.Items.Count >= MaxItems)
            {
                throw new RosterFullException();
            }

            visibleChange = !SameForClient(before, after);
            var version = visibleChange ? roster.Version + 1 : roster.Version;
            if (after is null)
            {
                await _store.RemoveAsync(owner.Domain, owner.Local!, key, version, cancellationToken).ConfigureAwait(false);
                roster = new AccountRoster(roster.Items.Remove(key), version);
            }
            else
            {
                await _store.SaveAsync(owner.Domain, owner.Local!, after, version, cancellationToken).ConfigureAwait(false);
                roster = new AccountRoster(roster.Items.SetItem(key, after), version);
            }

            if (_cache.ContainsKey(owner) || _sessions.Resources(owner).Count > 0)
            {
                _cache[owner] = roster;
            }
        }
        finally
        {
            gate.Release();
        }

        _log.Debug("Roster of {Owner}: {Contact} {Before} -> {After}", owner, key, Describe(before), Describe(after));
        if (visibleChange)
        {
            Push(owner, roster.Ver, after is { InRoster: true } ? ToElement(after) : Removed(key));
        }

        return (before, after);
    }

    /// <summary>Drops the cached roster of an account whose last session ended.</summary>
    public async ValueTask EvictAsync(Jid owner)
    {
        owner = owner.Bare;
        var gate = Gate(owner);
        await gate.WaitAsync(CancellationToken.None).ConfigureAwait(false);
        try
        {
            if (_sessions.Resources(owner).Count == 0)
            {
                _cache.TryRemove(owner, out _);
            }
        }
        finally
        {
            gate.Release();
        }
    }

    /// <summary>The item as the client sees it in roster results and pushes (RFC 6121 §2.1.2).</summary>
    public static Element ToElement(RosterItem item)
    {
        var e = new Element("item", Ns.Roster)
            .SetAttribute("jid", item.Jid)
            .SetAttribute("subscription", item.Subscription.Name());
        e.SetAttribute("name", item.Name);
        if (item.PendingOut)
        {
            e.SetAttribute("ask", "subscribe");
        }

        if (item.Approved)
        {
            e.SetAttribute("approved", "true");
        }

        foreach (var g in item.Groups)
        {
            e.AddChild("group").AddText(g);
        }

        return e;
    }

    private static Element Removed(string jid) =>
        new Element("item", Ns.Roster).SetAttribute("jid", jid).SetAttribute("subscription", "remove");

    /// <summary>Roster push (RFC 6121 §2.1.6) to every resource of the account that requested the roster.</summary>
    private void Push(Jid owner, string ver, Element item)
    {
        foreach (var r in _sessions.Resources(owner))
        {
            if (!r.RosterRequested)
            {
                continue;
            }

            var push = new Element("iq", Ns.Client)
                .SetAttribute("type", "set")
                .SetAttribute("id", "push" + Interlocked.Increment(ref _pushId).ToString(CultureInfo.InvariantCulture))
                .SetAttribute("to", r.Jid.ToString());
            push.AddChild("query", Ns.Roster).SetAttribute("ver", ver).Add(item.Clone());
            r.TrySend(push);
        }
    }

    private async ValueTask<AccountRoster> LoadLockedAsync(Jid owner, CancellationToken cancellationToken)
    {
        if (_cache.TryGetValue(owner, out var cached))
        {
            return cached;
        }

        var stored = await _store.LoadAsync(owner.Domain, owner.Local!, cancellationToken).ConfigureAwait(false);
        var roster = new AccountRoster(stored.Items.ToImmutableDictionary(i => i.Jid, StringComparer.Ordinal), stored.Version);
        if (_sessions.Resources(owner).Count > 0)
        {
            _cache[owner] = roster;
        }

        return roster;
    }

    private SemaphoreSlim Gate(Jid owner) => _locks[(owner.GetHashCode() & int.MaxValue) % Stripes];

    private static bool SameForClient(RosterItem? a, RosterItem? b)
    {
        var va = a is { InRoster: true } ? a : null;
        var vb = b is { InRoster: true } ? b : null;
        if (va is null || vb is null)
        {
            return va is null && vb is null;
        }

        return va.Name == vb.Name && va.Subscription == vb.Subscription && va.PendingOut == vb.PendingOut &&
            va.Approved == vb.Approved && va.Groups.SequenceEqual(vb.Groups);
    }

    private static string Describe(RosterItem? i) => i is null
        ? "(none)"
        : i.Subscription.Name() + (i.PendingOut ? "+out" : string.Empty) + (i.PendingIn ? "+in" : string.Empty) +
          (i.Approved ? "+approved" : string.Empty) + (i.InRoster ? string.Empty : " (hidden)");
}

/// <summary>The account's roster holds as many entries as the server allows.</summary>
public sealed class RosterFullException : Exception
{
    public RosterFullException()
        : base("the roster is full")
    {
    }

    public RosterFullException(string message)
        : base(message)
    {
    }

    public RosterFullException(string message, Exception inner)
        : base(message, inner)
    {
    }
}
