using System.Collections.Concurrent;
using System.Collections.Frozen;
using System.Globalization;
using Xmpp.Core.Addressing;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;
using Xmpp.Server.Routing;
using Xmpp.Server.Sessions;

namespace Xmpp.Server.Modules.Blocking;

/// <summary>
/// Blocking command (XEP-0191): an account's list of blocked JIDs, kept across sessions. Nothing from a
/// blocked entity reaches the account (presence is dropped, messages and requests get
/// service-unavailable, as if the account were offline), nothing the account sends reaches it (its
/// clients get not-acceptable with &lt;blocked/&gt;), blocking sends the contact unavailable presence and
/// unblocking the current one, and every change is pushed to the resources that asked for the list.
/// </summary>
[Specification("XEP-0191", "1.3", Note = "Block lists kept across sessions with the XEP's JID matching (full, bare, domain/resource, domain and subdomains), both directions, unavailable presence on block and current presence on unblock, pushes to interested resources; at most max-items entries.")]
public sealed class BlockingModule : IXmppModule, IKeepsStateAcrossReload, IDisposable
{
    public const string Namespace = "urn:xmpp:blocking";

    public const string ErrorsNamespace = "urn:xmpp:blocking:errors";

    private const string Kind = "blocklist";
    private const string RequestedKey = "blocklist-requested";
    private const int MaxCached = 200_000;

    /// <summary>Lists loaded so far, by account (at most MaxCached). Every change goes through this module, so they stay current.</summary>
    private ConcurrentDictionary<Jid, FrozenSet<string>> _lists = new();

    /// <summary>Changes are rare: one at a time, so two resources changing a list at once lose nothing.</summary>
    private SemaphoreSlim _changes = new(1, 1);
    private IModuleContext _context = null!;
    private int _maxItems;
    private long _pushId;

    public string Name => "blocking";

    public void Dispose() => _changes.Dispose();

    public void TakeOver(IXmppModule previous)
    {
        if (previous is BlockingModule old)
        {
            _lists = old._lists;
            _changes = old._changes;
        }
    }

    public void Register(IModuleContext context)
    {
        context.OnAccountArrived(bare => _lists.TryRemove(bare, out _));
        _context = context;
        _maxItems = context.Number("max-items", 1000, min: 1);

        context.Disco.AddFeature(Namespace, IqTarget.Host);
        context.HandleIq("get", Namespace, "blocklist", IqTarget.Bare, async (ctx, _, ct) =>
        {
            var owner = OwnAccount(ctx);
            var list = await ListAsync(owner, ct).ConfigureAwait(false);
            ctx.Origin?.Items.Set(RequestedKey, RequestedKey);
            var result = new Element("blocklist", Namespace);
            foreach (var jid in list.Order(StringComparer.Ordinal))
            {
                result.AddChild("item").SetAttribute("jid", jid);
            }

            return result;
        });

        context.HandleIq("set", Namespace, "block", IqTarget.Bare, (ctx, block, ct) => ChangeAsync(ctx, block, BlockAsync, ct));
        context.HandleIq("set", Namespace, "unblock", IqTarget.Bare, (ctx, unblock, ct) => ChangeAsync(ctx, unblock, UnblockAsync, ct));
        context.Hook(HookNames.FilterOutbound, FilterOutboundAsync, priority: 100);
        context.Hook(HookNames.FilterInbound, FilterInboundAsync, priority: 100);
    }

    private async ValueTask<Element?> ChangeAsync(StanzaContext ctx, Element command, Func<Jid, Element, CancellationToken, Task> change, CancellationToken ct)
    {
        var owner = OwnAccount(ctx);
        await _changes.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            await change(owner, command, ct).ConfigureAwait(false);
        }
        finally
        {
            _changes.Release();
        }

        return null;
    }

    private async Task BlockAsync(Jid owner, Element block, CancellationToken ct)
    {
        var items = Items(block);
        if (items.Count == 0)
        {
            throw new StanzaErrorException(StanzaErrorCondition.BadRequest, "block needs at least one item");
        }

        var list = await ListAsync(owner, ct).ConfigureAwait(false);
        var added = items.Where(j => !list.Contains(j.ToString())).ToList();
        if (list.Count + added.Count > _maxItems)
        {
            throw new StanzaErrorException(StanzaErrorCondition.ResourceConstraint, $"at most {_maxItems} blocked addresses");
        }

        // The contact sees the account go offline first, while it may still receive presence from it.
        foreach (var jid in added)
        {
            await SendPresenceAsync(owner, jid, available: false, ct).ConfigureAwait(false);
            await _context.Storage.Documents.SetAsync(owner.Domain, owner.Local!, Kind, jid.ToString(), string.Empty, ct).ConfigureAwait(false);
        }

        _lists[owner] = list.Union(added.Select(j => j.ToString())).ToFrozenSet(StringComparer.Ordinal);
        _context.Log.Info("{User} blocked {Count} address(es)", owner, added.Count);
        Push(owner, "block", items);
    }

    private async Task UnblockAsync(Jid owner, Element unblock, CancellationToken ct)
    {
        var items = Items(unblock);
        var list = await ListAsync(owner, ct).ConfigureAwait(false);

        // §3.4: an empty unblock lifts every block.
        var removed = items.Count == 0
            ? list.Select(s => Jid.Parse(s)).ToList()
            : items.Where(j => list.Contains(j.ToString())).ToList();
        foreach (var jid in removed)
        {
            await _context.Storage.Documents.SetAsync(owner.Domain, owner.Local!, Kind, jid.ToString(), null, ct).ConfigureAwait(false);
        }

        _lists[owner] = list.Except(removed.Select(j => j.ToString())).ToFrozenSet(StringComparer.Ordinal);
        foreach (var jid in removed)
        {
            await SendPresenceAsync(owner, jid, available: true, ct).ConfigureAwait(false);
        }

        _context.Log.Info("{User} unblocked {Count} address(es)", owner, removed.Count);
        Push(owner, "unblock", items);
    }

    /// <summary>§ "JID Matching": the full JID, the bare JID, domain/resource, the domain and its parent domains.</summary>
    public static bool Matches(IReadOnlySet<string> list, Jid jid)
    {
        if (list.Count == 0)
        {
            return false;
        }

        if (list.Contains(jid.ToString()) || (jid.Resource is not null && list.Contains(jid.Bare.ToString())))
        {
            return true;
        }

        if (jid.Local is not null && jid.Resource is not null && list.Contains(jid.Domain + "/" + jid.Resource))
        {
            return true;
        }

        for (var domain = jid.Domain; ; domain = domain[(domain.IndexOf('.', StringComparison.Ordinal) + 1)..])
        {
            if ((jid.Local is not null || jid.Resource is not null || domain != jid.Domain) && list.Contains(domain))
            {
                return true;
            }

            if (!domain.Contains('.', StringComparison.Ordinal))
            {
                return false;
            }
        }
    }

    private async ValueTask<bool> FilterOutboundAsync(StanzaContext ctx, CancellationToken ct)
    {
        var from = ctx.From;
        var to = ctx.To!;

        // Outbound: the sender blocked the recipient. Errors the server sends for the account (the
        // bounces of the inbound rule below) still go out.
        if (from.Local is not null && !(ctx.Origin is null && ctx.Type == "error") && _context.Router.IsLocal(from.Domain) && !IsServer(to) &&
            Matches(await ListAsync(from.Bare, ct).ConfigureAwait(false), to))
        {
            if (ctx.Origin is not null && Stanza.MayReplyWithError(ctx.Stanza))
            {
                // §3.3: not routed; the client learns why.
                var error = new StanzaError(StanzaErrorCondition.NotAcceptable, "you have blocked this address")
                {
                    Application = new Element("blocked", ErrorsNamespace),
                };
                ctx.Origin.TrySend(Stanza.ErrorReply(ctx.Stanza, error, includeOriginal: ctx.Kind == "message"));
            }

            return true;
        }

        return false;
    }

    private async ValueTask<bool> FilterInboundAsync(StanzaContext ctx, CancellationToken ct)
    {
        var from = ctx.From;
        var to = ctx.To!;

        // Inbound: the recipient blocked the sender; to the sender the account looks offline.
        if (to.Local is not null && _context.Router.IsLocal(to.Domain) && !IsServer(from) &&
            Matches(await ListAsync(to.Bare, ct).ConfigureAwait(false), from))
        {
            if (ctx.Kind == "message" || (ctx.Kind == "iq" && ctx.Type is "get" or "set"))
            {
                await ctx.Router.BounceAsync(ctx.Stanza, StanzaError.ServiceUnavailable, ct).ConfigureAwait(false);
            }

            return true;
        }

        return false;
    }

    /// <summary>The server itself (a local domain, no local part or resource) is never filtered: it sends roster pushes and errors.</summary>
    private bool IsServer(Jid jid) => jid.Local is null && jid.Resource is null && _context.Router.IsLocal(jid.Domain);

    private async ValueTask<FrozenSet<string>> ListAsync(Jid owner, CancellationToken ct)
    {
        if (_lists.TryGetValue(owner, out var cached))
        {
            return cached;
        }

        var stored = await _context.Storage.Documents.ListAsync(owner.Domain, owner.Local!, Kind, ct).ConfigureAwait(false);
        var list = stored.Count == 0 ? FrozenSet<string>.Empty : stored.Keys.ToFrozenSet(StringComparer.Ordinal);

        // Every change goes through this module, so a loaded list stays right; offline accounts are kept too
        // (presence to them would otherwise read the store each time), within a bound.
        if (_lists.Count >= MaxCached)
        {
            _lists.Clear();
        }

        _lists.TryAdd(owner, list);
        return list;
    }

    private static Jid OwnAccount(StanzaContext ctx)
    {
        if (ctx.Origin is null || ctx.From.Bare != ctx.To!.Bare)
        {
            throw new StanzaErrorException(StanzaErrorCondition.NotAllowed, "the block list is managed by the account's own clients");
        }

        return ctx.To.Bare;
    }

    private static List<Jid> Items(Element command)
    {
        var items = new List<Jid>();
        foreach (var item in command.Elements().Where(e => e.Is("item", Namespace)))
        {
            if (!Jid.TryParse(item.GetAttribute("jid"), out var jid))
            {
                throw new StanzaErrorException(StanzaErrorCondition.JidMalformed, $"'{item.GetAttribute("jid")}' is not a JID");
            }

            items.Add(jid);
        }

        return items;
    }

    /// <summary>§3.3, §3.4: the account's presence to a contact allowed to see it, unavailable on block, current on unblock.</summary>
    private async ValueTask SendPresenceAsync(Jid owner, Jid contact, bool available, CancellationToken ct)
    {
        var roster = await _context.Rosters.GetAsync(owner, ct).ConfigureAwait(false);
        if (roster.Find(contact) is not { HasFrom: true })
        {
            return;
        }

        foreach (var r in _context.Sessions.Resources(owner))
        {
            if (!r.IsAvailable)
            {
                continue;
            }

            Element presence;
            if (available && r.LastPresence is { } last)
            {
                presence = last.Clone();
            }
            else
            {
                presence = new Element("presence", Xmpp.Core.Ns.Client).SetAttribute("type", "unavailable");
            }

            presence.SetAttribute("from", r.Jid.ToString()).SetAttribute("to", contact.ToString());
            await _context.Router.RouteAsync(presence, r.Jid, null, ct).ConfigureAwait(false);
        }
    }

    /// <summary>§3.3: the change to every resource that requested the list.</summary>
    private void Push(Jid owner, string command, List<Jid> items)
    {
        foreach (var r in _context.Sessions.Resources(owner))
        {
            if (!r.Items.Has(RequestedKey))
            {
                continue;
            }

            var id = "block" + Interlocked.Increment(ref _pushId).ToString(CultureInfo.InvariantCulture);
            var iq = new Element("iq", Xmpp.Core.Ns.Client).SetAttribute("type", "set").SetAttribute("id", id).SetAttribute("to", r.Jid.ToString());
            var payload = iq.AddChild(command, Namespace);
            foreach (var jid in items)
            {
                payload.AddChild("item").SetAttribute("jid", jid.ToString());
            }

            r.TrySend(iq);
        }
    }
}
