using System.Collections.Concurrent;
using System.Globalization;
using Xmpp.Core;
using Xmpp.Core.Addressing;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;
using Xmpp.Server.Routing;
using Xmpp.Server.Storage;

namespace Xmpp.Server.Modules.Mam;

/// <summary>
/// Message archive management for accounts (XEP-0313, urn:xmpp:mam:2): the instant messages an account
/// sends and receives are archived by its preferences (always, never, roster, with per-JID exceptions),
/// each incoming one stamped with a XEP-0359 stanza id, and queried by correspondent, time and id with
/// XEP-0059 result set paging in both directions. Old messages expire after expire-days and beyond
/// max-per-user per account.
/// </summary>
[Specification("XEP-0313", "1.1.1", Note = "Archives of accounts: both directions, preferences (always, never, roster, per-JID), queries by with/start/end and the #extended ids/before-id/after-id, paging both ways, flip-page, metadata, expiry by age and count. Indexed: pages of 50 from a million-message archive in about 4 ms.")]
[Specification("XEP-0359", "0.7.0", Note = "A stanza-id by the account on every archived incoming message; spoofed ones removed. A message sent again with the same origin-id (a client resending what a lost session left unacknowledged) is archived once, and its copies carry the first one's stanza-id (room archives likewise).")]
[Specification("XEP-0059", "1.0", Note = "after, before (and empty before for the last page) and max; no index paging.")]
[Specification("XEP-0334", "0.3.0", Note = "no-store and no-permanent-store keep a message out of the archive, store puts it in; carbons honour no-copy.")]
public sealed class MamModule : IXmppModule, IKeepsStateAcrossReload
{
    public const string Namespace = "urn:xmpp:mam:2";
    public const string ExtendedNamespace = "urn:xmpp:mam:2#extended";
    public const string StanzaIdNamespace = "urn:xmpp:sid:0";
    public const string RsmNamespace = "http://jabber.org/protocol/rsm";

    private const string HintsNamespace = "urn:xmpp:hints";
    private const string PrefsKind = "mam";

    /// <summary>Payloads that make a body-less message worth keeping: end-to-end encryption, reactions, retractions.</summary>
    private static readonly HashSet<string> ArchivedPayloads = new(StringComparer.Ordinal)
    {
        "eu.siacs.conversations.axolotl", "urn:xmpp:omemo:2", "urn:xmpp:openpgp:0", "jabber:x:encrypted",
        "urn:xmpp:reactions:0", "urn:xmpp:message-retract:1", "urn:xmpp:fasten:0",
    };

    private ConcurrentDictionary<Jid, Prefs> _prefs = new();
    private IModuleContext _context = null!;
    private string _defaultPolicy = "always";
    private int _maxPage;

    public string Name => "mam";

    private IArchiveStore Store => _context.Storage.Archive;

    public void TakeOver(IXmppModule previous)
    {
        if (previous is MamModule old)
        {
            _prefs = old._prefs;
        }
    }

    public void Register(IModuleContext context)
    {
        context.OnAccountArrived(bare => _prefs.TryRemove(bare, out _));
        _context = context;
        _defaultPolicy = context.Option("default") ?? "always";
        if (_defaultPolicy is not ("always" or "never" or "roster"))
        {
            throw new Config.ConfigException($"module mam: default must be always, never or roster, not '{_defaultPolicy}'");
        }

        _maxPage = context.Number("max-page", 250, min: 1);
        var expireDays = context.Number("expire-days", 0);
        var maxPerUser = context.Number("max-per-user", 0);

        foreach (var f in new[] { Namespace, ExtendedNamespace, StanzaIdNamespace })
        {
            context.Disco.AddFeature(f, IqTarget.Bare);
        }

        context.HandleIq("set", Namespace, "query", IqTarget.Bare, QueryAsync);
        context.HandleIq("get", Namespace, "query", IqTarget.Bare, (ctx, _, _) =>
        {
            OwnArchive(ctx);
            return ValueTask.FromResult<Element?>(new Element("query", Namespace).Add(ArchiveQueries.QueryForm()));
        });
        context.HandleIq("get", Namespace, "metadata", IqTarget.Bare, (ctx, _, ct) => MetadataAsync(ctx, ct));
        context.HandleIq("get", Namespace, "prefs", IqTarget.Bare, async (ctx, _, ct) =>
            (await PrefsAsync(OwnArchive(ctx), ct).ConfigureAwait(false)).ToElement());
        context.HandleIq("set", Namespace, "prefs", IqTarget.Bare, async (ctx, payload, ct) =>
        {
            var owner = OwnArchive(ctx);
            var prefs = Prefs.Parse(payload, _defaultPolicy) ?? throw new StanzaErrorException(StanzaErrorCondition.BadRequest, "default must be always, never or roster, and every jid valid");
            await context.Storage.Documents.SetAsync(owner.Domain, owner.Local!, PrefsKind, "prefs", prefs.ToElement().ToString(), ct).ConfigureAwait(false);
            _prefs[owner] = prefs;
            return prefs.ToElement();
        });

        // What a local client sends, into its account's archive; before carbons copy it (priority 10).
        context.Hook(HookNames.MessageOutbound, async (ctx, ct) =>
        {
            if (ctx.To is { } to && ShouldArchive(ctx.Stanza) && await WantsAsync(ctx.From.Bare, to, ct).ConfigureAwait(false))
            {
                await AppendAsync(ctx.From.Bare, to, outgoing: true, ctx.Stanza, ct).ConfigureAwait(false);
            }

            return false;
        }, priority: 20);

        // What reaches an account, before carbons (1) and delivery (-1), so that both carry the stanza id.
        context.Hook(HookNames.Stanza("message", Target.Full), OnInboundAsync, priority: 2);
        context.Hook(HookNames.Stanza("message", Target.Bare), OnInboundAsync, priority: 2);

        if (expireDays > 0 || maxPerUser > 0)
        {
            context.RunInBackground(async stopping =>
            {
                using var timer = new PeriodicTimer(TimeSpan.FromHours(1));
                do
                {
                    var removed = await Store.ExpireAsync(expireDays > 0 ? DateTimeOffset.UtcNow.AddDays(-expireDays) : null, maxPerUser, stopping).ConfigureAwait(false);
                    if (removed > 0)
                    {
                        context.Log.Info("Expired {Count} archived messages", removed);
                    }
                }
                while (await timer.WaitForNextTickAsync(stopping).ConfigureAwait(false));
            });
        }
    }

    /// <summary>Whether a message is instant messaging worth keeping (§5.1.1 leaves it to the server; XEP-0334 hints honoured).</summary>
    public static bool ShouldArchive(Element message)
    {
        var type = message.GetAttribute("type") ?? "normal";
        if (type is "groupchat" or "headline" or "error" ||
            message.Child("no-store", HintsNamespace) is not null || message.Child("no-permanent-store", HintsNamespace) is not null)
        {
            return false;
        }

        return message.Child("body", message.Namespace) is not null ||
            message.Child("store", HintsNamespace) is not null ||
            message.Elements().Any(e => ArchivedPayloads.Contains(e.Namespace));
    }

    private async ValueTask<bool> OnInboundAsync(StanzaContext ctx, CancellationToken ct)
    {
        var owner = ctx.To!.Bare;
        var message = ctx.Stanza;

        // XEP-0359 §5: a stanza id claiming to be ours that we did not add is removed.
        // The stanza is shared (a sent carbon may wrap it, other queues may hold it): what changes here is a copy,
        // which goes on to delivery through the context.
        var by = owner.ToString();
        // The cheap look first: almost no message carries a stanza-id, and this runs for every one delivered.
        if (message.Child("stanza-id", StanzaIdNamespace) is not null && message.Elements().Any(e => IsClaimedId(e, by)))
        {
            message = message.Copy();
            message.RemoveChildren(e => IsClaimedId(e, by));
            ctx.Stanza = message;
        }

        if (ctx.From.Bare != owner && ShouldArchive(message) && await WantsAsync(owner, ctx.From, ct).ConfigureAwait(false))
        {
            var id = await AppendAsync(owner, ctx.From, outgoing: false, message, ct).ConfigureAwait(false);
            if (id is not null)
            {
                ctx.Stanza = message.Copy().Add(new Element("stanza-id", StanzaIdNamespace).SetAttribute("id", id).SetAttribute("by", by));
            }
        }

        return false;
    }

    /// <summary>A stanza id that claims to be this account's (only the account's server may add them).</summary>
    private static bool IsClaimedId(Element e, string by) => e.Is("stanza-id", StanzaIdNamespace) && e.GetAttribute("by") == by;

    /// <summary>
    /// The stanza id the message is archived under: a new one, or, for a message its sender sent again with the same
    /// origin id (XEP-0359; after a session lost with its unacknowledged messages, XEP-0198 §5), the one its first
    /// copy got, so that both copies carry the same stanza id and a client can tell they are one. Null when the
    /// account does not exist.
    /// </summary>
    private Task<string?> AppendAsync(Jid owner, Jid with, bool outgoing, Element message, CancellationToken ct) =>
        Store.AppendAsync(
            owner.Domain,
            owner.Local!,
            new ArchivedMessage(Guid.CreateVersion7().ToString("N"), with.ToString(), outgoing, DateTimeOffset.UtcNow, message.ToString()) { OriginId = ArchivedMessage.OriginIdOf(message) },
            ct);

    private async ValueTask<bool> WantsAsync(Jid owner, Jid other, CancellationToken ct)
    {
        var prefs = await PrefsAsync(owner, ct).ConfigureAwait(false);
        var bare = other.Bare.ToString();
        if (prefs.Never.Contains(bare) || prefs.Never.Contains(other.ToString()))
        {
            return false;
        }

        if (prefs.Always.Contains(bare) || prefs.Always.Contains(other.ToString()))
        {
            return true;
        }

        return prefs.Default switch
        {
            "always" => true,
            "roster" => await _context.Rosters.FindAsync(owner, other, ct).ConfigureAwait(false) is not null,
            _ => false,
        };
    }

    private async ValueTask<Prefs> PrefsAsync(Jid owner, CancellationToken ct)
    {
        if (_prefs.TryGetValue(owner, out var cached))
        {
            return cached;
        }

        var xml = await _context.Storage.Documents.GetAsync(owner.Domain, owner.Local!, PrefsKind, "prefs", ct).ConfigureAwait(false);
        var prefs = (xml is null ? null : Prefs.Parse(ElementParser.Parse(xml), _defaultPolicy)) ?? new Prefs(_defaultPolicy, [], []);
        if (_prefs.Count > 100_000)
        {
            _prefs.Clear();
        }

        _prefs[owner] = prefs;
        return prefs;
    }

    private static Jid OwnArchive(StanzaContext ctx)
    {
        if (ctx.Origin is null || ctx.From.Bare != ctx.To!.Bare)
        {
            throw new StanzaErrorException(StanzaErrorCondition.Forbidden, "an archive is queried by its own account");
        }

        return ctx.To.Bare;
    }

    // ---- queries (§4) --------------------------------------------------------------------------------

    private async ValueTask<Element?> QueryAsync(StanzaContext ctx, Element query, CancellationToken ct)
    {
        var owner = OwnArchive(ctx);
        return await ArchiveQueries.ServeAsync(Store, owner, ctx.From, query, _maxPage, (m, _) =>
        {
            // Straight to the session that asked: the results must precede the iq result on its stream.
            ctx.Origin!.TrySend(m);
            return ValueTask.CompletedTask;
        }, ct).ConfigureAwait(false);
    }

    private ValueTask<Element?> MetadataAsync(StanzaContext ctx, CancellationToken ct) =>
        ArchiveQueries.MetadataAsync(Store, OwnArchive(ctx), ct);

    /// <summary>§7 archiving preferences.</summary>
    private sealed record Prefs(string Default, HashSet<string> Always, HashSet<string> Never)
    {
        public static Prefs? Parse(Element prefs, string fallback)
        {
            var policy = prefs.GetAttribute("default") ?? fallback;
            if (policy is not ("always" or "never" or "roster"))
            {
                return null;
            }

            var always = Jids(prefs.Child("always", Namespace));
            var never = Jids(prefs.Child("never", Namespace));
            return always is null || never is null ? null : new Prefs(policy, always, never);
        }

        public Element ToElement()
        {
            var prefs = new Element("prefs", Namespace).SetAttribute("default", Default);
            foreach (var (name, list) in new[] { ("always", Always), ("never", Never) })
            {
                var e = prefs.AddChild(name);
                foreach (var jid in list.Order(StringComparer.Ordinal))
                {
                    e.AddChild("jid").AddText(jid);
                }
            }

            return prefs;
        }

        private static HashSet<string>? Jids(Element? list)
        {
            var jids = new HashSet<string>(StringComparer.Ordinal);
            foreach (var j in list?.Elements().Where(e => e.Is("jid", Namespace)) ?? [])
            {
                if (!Jid.TryParse(j.Text.Trim(), out var jid))
                {
                    return null;
                }

                jids.Add(jid.ToString());
            }

            return jids;
        }
    }
}
