using System.Collections.Concurrent;
using System.Collections.Frozen;
using System.Globalization;
using Xmpp.Core;
using Xmpp.Core.Addressing;
using Xmpp.Core.Caps;
using Xmpp.Core.Xml;
using Xmpp.Server.Routing;

namespace Xmpp.Server.Modules.Pep;

/// <summary>
/// XEP-0115 for the PEP service: which resources are available to each online account (its own and
/// those of entities that sent it presence), with the features their caps stand for, learnt by a
/// disco#info query the first time a hash is seen and cached by hash once the hash checks out (§5.4).
/// A result whose hash does not match is kept for that one resource only, so nobody can poison the cache.
/// </summary>
internal sealed class ContactCaps(IStanzaRouter router, NLog.Logger log)
{
    private const int CacheLimit = 20_000;

    /// <summary>Per account: available resources and the key of their caps (null: no caps).</summary>
    private readonly ConcurrentDictionary<Jid, ConcurrentDictionary<Jid, string?>> _available = new();

    /// <summary>Feature sets by 'ver' (verified) or by "jid:" + full JID (unverified).</summary>
    private readonly ConcurrentDictionary<string, FrozenSet<string>> _features = new(StringComparer.Ordinal);

    /// <summary>Open disco#info queries by id: who asked, who was asked, the ver expected, and what to do with the answer.</summary>
    private readonly ConcurrentDictionary<string, (Jid Owner, Jid Resource, string Ver, Func<Jid, Jid, string?, CancellationToken, ValueTask> Then)> _pending = new(StringComparer.Ordinal);
    /// <summary>Hashes being asked about, since when, and who waits for the answer.</summary>
    private readonly ConcurrentDictionary<string, (long Since, System.Collections.Immutable.ImmutableList<(Jid Owner, Jid Resource, Func<Jid, Jid, string?, CancellationToken, ValueTask> Then)> Waiters)> _asking = new(StringComparer.Ordinal);
    private long _nextId;

    /// <summary>The resources available to an account with their caps keys.</summary>
    public IEnumerable<KeyValuePair<Jid, string?>> Available(Jid owner) =>
        _available.TryGetValue(owner, out var resources) ? resources : [];

    /// <summary>Whether a resource's caps include the feature (e.g. "urn:xmpp:avatar:metadata+notify").</summary>
    public bool Has(Jid resource, string? key, string feature) =>
        (key is not null && _features.TryGetValue(key, out var f) && f.Contains(feature)) ||
        (_features.TryGetValue("jid:" + resource, out var own) && own.Contains(feature));

    public bool Known(Jid resource, string? key) =>
        (key is not null && _features.ContainsKey(key)) || _features.ContainsKey("jid:" + resource);

    /// <summary>The caps key of a presence: its 'ver' when hashed with SHA-1, the one hash every entity must support.</summary>
    public static string? Key(Element presence)
    {
        var c = presence.Child("c", EntityCapabilities.Namespace);
        return c?.GetAttribute("hash") == "sha-1" ? c.GetAttribute("ver") : null;
    }

    /// <summary>Available presence from <paramref name="resource"/> reached <paramref name="owner"/>; true when the resource is new or its caps changed.</summary>
    public bool Seen(Jid owner, Jid resource, string? key)
    {
        var resources = _available.GetOrAdd(owner, _ => new ConcurrentDictionary<Jid, string?>());
        var changed = !resources.TryGetValue(resource, out var old) || old != key;
        resources[resource] = key;
        return changed;
    }

    public static string? Node(Element presence) => presence.Child("c", EntityCapabilities.Namespace)?.GetAttribute("node");

    public void Gone(Jid owner, Jid resource)
    {
        if (_available.TryGetValue(owner, out var resources))
        {
            resources.TryRemove(resource, out _);
        }
    }

    /// <summary>The account went offline: what reached it is forgotten (probes will tell again at the next login).</summary>
    public void Forget(Jid owner) => _available.TryRemove(owner, out _);

    /// <summary>Asks a resource what its caps mean, unless known; runs <paramref name="then"/> once they are.</summary>
    public async ValueTask LearnAsync(Jid owner, Jid resource, string? key, string? node, Func<Jid, Jid, string?, CancellationToken, ValueTask> then, CancellationToken ct)
    {
        if (Known(resource, key))
        {
            await then(owner, resource, key, ct).ConfigureAwait(false);
            return;
        }

        if (key is null || node is null)
        {
            return;
        }

        if (_pending.Count > CacheLimit)
        {
            _pending.Clear();
        }

        // One query per hash at a time: others with the same hash wait for its answer (or ask again once it is stale).
        var waiter = (owner, resource, then);
        var now = Environment.TickCount64;
        var asked = _asking.AddOrUpdate(
            key,
            _ => (now, [waiter]),
            (_, old) => now - old.Since > 30_000 ? (now, [waiter]) : (old.Since, old.Waiters.Add(waiter)));
        if (asked.Since != now || asked.Waiters.Count != 1)
        {
            return;
        }

        var id = "caps" + Interlocked.Increment(ref _nextId).ToString(CultureInfo.InvariantCulture);
        _pending[id] = (owner, resource, key, then);
        var iq = new Element("iq", Ns.Client)
            .SetAttribute("type", "get").SetAttribute("id", id)
            .SetAttribute("from", owner.ToString()).SetAttribute("to", resource.ToString());
        iq.AddChild("query", Ns.DiscoInfo).SetAttribute("node", node + "#" + key);
        await router.RouteAsync(iq, owner, null, ct).ConfigureAwait(false);
    }

    /// <summary>An iq result or error to an account: true when it answered one of our queries.</summary>
    public async ValueTask<bool> OnResponseAsync(StanzaContext ctx, CancellationToken ct)
    {
        if (ctx.Stanza.GetAttribute("id") is not { } id || !id.StartsWith("caps", StringComparison.Ordinal) ||
            !_pending.TryGetValue(id, out var query) || query.Resource != ctx.From || query.Owner != ctx.To!.Bare)
        {
            return false;
        }

        _pending.TryRemove(id, out _);
        var waiters = _asking.TryRemove(query.Ver, out var asked) ? asked.Waiters : [];
        if (ctx.Type != "result" || ctx.Stanza.Child("query", Ns.DiscoInfo) is not { } info)
        {
            return true;
        }

        var features = info.Elements().Where(e => e.Is("feature", Ns.DiscoInfo)).Select(e => e.GetAttribute("var") ?? string.Empty).ToFrozenSet(StringComparer.Ordinal);
        if (_features.Count > CacheLimit)
        {
            _features.Clear();
        }

        if (EntityCapabilities.Verification(info) == query.Ver)
        {
            _features[query.Ver] = features;
            foreach (var (owner, resource, then) in waiters)
            {
                await then(owner, resource, query.Ver, ct).ConfigureAwait(false);
            }
        }
        else
        {
            // The others that sent this hash are not believed on this resource's word; they are asked when next seen.
            log.Info("Caps of {Resource} do not match their hash {Ver}; kept for that resource only", query.Resource, query.Ver);
            _features["jid:" + query.Resource] = features;
            await query.Then(query.Owner, query.Resource, query.Ver, ct).ConfigureAwait(false);
        }

        return true;
    }
}
