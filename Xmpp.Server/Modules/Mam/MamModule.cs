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
[Specification("XEP-0359", "0.7.0", Note = "A stanza-id by the account on every archived incoming message; spoofed ones removed.")]
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
    private long _nextId;

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
            return ValueTask.FromResult<Element?>(new Element("query", Namespace).Add(QueryForm()));
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
        var by = owner.ToString();
        if (message.Child("stanza-id", StanzaIdNamespace) is not null)
        {
            RemoveClaimedIds(message, by);
        }

        if (ctx.From.Bare != owner && ShouldArchive(message) && await WantsAsync(owner, ctx.From, ct).ConfigureAwait(false))
        {
            var id = await AppendAsync(owner, ctx.From, outgoing: false, message, ct).ConfigureAwait(false);
            if (id is not null)
            {
                message.Add(new Element("stanza-id", StanzaIdNamespace).SetAttribute("id", id).SetAttribute("by", by));
            }
        }

        return false;
    }

    /// <summary>Stanza ids that claim to be this account's (only the account's server may add them).</summary>
    private static void RemoveClaimedIds(Element message, string by) =>
        message.RemoveChildren(e => e.Is("stanza-id", StanzaIdNamespace) && e.GetAttribute("by") == by);

    private async ValueTask<string?> AppendAsync(Jid owner, Jid with, bool outgoing, Element message, CancellationToken ct)
    {
        var id = Guid.CreateVersion7().ToString("N");
        await Store.AppendAsync(owner.Domain, owner.Local!, new ArchivedMessage(id, with.ToString(), outgoing, DateTimeOffset.UtcNow, message.ToString()), ct).ConfigureAwait(false);
        return id;
    }

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
        var filter = ParseForm(query.Child("x", DataForm.Namespace));
        var set = query.Child("set", RsmNamespace);
        var max = _maxPage;
        if (set?.ChildText("max", RsmNamespace) is { } maxText)
        {
            max = int.TryParse(maxText, NumberStyles.None, CultureInfo.InvariantCulture, out var m)
                ? Math.Min(m, _maxPage)
                : throw new StanzaErrorException(StanzaErrorCondition.BadRequest, "max must be a whole number");
        }

        if (set?.Child("index", RsmNamespace) is not null)
        {
            throw new StanzaErrorException(StanzaErrorCondition.FeatureNotImplemented, "paging by index is not supported; use after/before");
        }

        var before = set?.Child("before", RsmNamespace);
        filter = filter with
        {
            Max = max,
            AfterId = set?.ChildText("after", RsmNamespace) is { Length: > 0 } after ? after : filter.AfterId,
            BeforeId = before is not null && before.Text.Length > 0 ? before.Text : filter.BeforeId,
            Last = before is not null && before.Text.Length == 0,
        };

        var page = max == 0
            ? new ArchivePage([], Complete: false)
            : await Store.QueryAsync(owner.Domain, owner.Local!, filter, ct).ConfigureAwait(false)
                ?? throw new StanzaErrorException(StanzaErrorCondition.ItemNotFound, "no archived message with that id");

        var queryId = query.GetAttribute("queryid");
        var messages = query.Child("flip-page", Namespace) is not null ? page.Messages.Reverse() : page.Messages;
        foreach (var m in messages)
        {
            // From the archive, as Prosody and ejabberd send them; clients check it is their own bare JID.
            var result = new Element("message", Ns.Client)
                .SetAttribute("from", owner.ToString())
                .SetAttribute("to", ctx.From.ToString())
                .SetAttribute("id", "mam" + Interlocked.Increment(ref _nextId).ToString(CultureInfo.InvariantCulture));
            result.AddChild("result", Namespace).SetAttribute("queryid", queryId).SetAttribute("id", m.Id)
                .Add(Forwarded.Wrap(ElementParser.Parse(m.Xml), m.At));
            ctx.Origin!.TrySend(result);
        }

        var fin = new Element("fin", Namespace).SetAttribute("complete", page.Complete ? "true" : null);
        var rsm = fin.AddChild("set", RsmNamespace);
        if (page.Messages.Count > 0)
        {
            rsm.AddChild("first").AddText(page.Messages[0].Id);
            rsm.AddChild("last").AddText(page.Messages[^1].Id);
        }
        else if (max == 0)
        {
            rsm.AddChild("count").AddText("0");
        }

        return fin;
    }

    private async ValueTask<Element?> MetadataAsync(StanzaContext ctx, CancellationToken ct)
    {
        var owner = OwnArchive(ctx);
        var metadata = new Element("metadata", Namespace);
        if (await Store.BoundsAsync(owner.Domain, owner.Local!, ct).ConfigureAwait(false) is var (first, last))
        {
            metadata.AddChild("start").SetAttribute("id", first.Id).SetAttribute("timestamp", Stamp(first.At));
            metadata.AddChild("end").SetAttribute("id", last.Id).SetAttribute("timestamp", Stamp(last.At));
        }

        return metadata;
    }

    private static string Stamp(DateTimeOffset at) => at.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);

    private static Element QueryForm()
    {
        var form = DataForm.Create("form", Namespace);
        DataForm.AddField(form, "with", "jid-single");
        DataForm.AddField(form, "start", "text-single");
        DataForm.AddField(form, "end", "text-single");
        DataForm.AddField(form, "before-id", "text-single");
        DataForm.AddField(form, "after-id", "text-single");
        DataForm.AddField(form, "ids", "list-multi");
        return form;
    }

    /// <summary>§4.1 filters, and the #extended ones (before-id, after-id, ids).</summary>
    private static ArchiveQuery ParseForm(Element? form)
    {
        var query = new ArchiveQuery();
        if (DataForm.Values(form) is not { } values)
        {
            return query;
        }

        if (DataForm.FormType(values) is { } formType && formType != Namespace)
        {
            throw new StanzaErrorException(StanzaErrorCondition.BadRequest, $"unknown FORM_TYPE {formType}");
        }

        foreach (var (name, list) in values)
        {
            var value = list.Count > 0 ? list[0] : string.Empty;
            switch (name)
            {
                case "FORM_TYPE":
                    break;
                case "with":
                    if (!Jid.TryParse(value, out var with))
                    {
                        throw new StanzaErrorException(StanzaErrorCondition.JidMalformed, "'with' is not a JID");
                    }

                    query = query with { With = with.ToString(), WithIsFull = with.Resource is not null };
                    break;
                case "start" or "end":
                    // XEP-0082 date-time.
                    if (!DateTimeOffset.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var when))
                    {
                        throw new StanzaErrorException(StanzaErrorCondition.BadRequest, $"'{name}' is not a date-time");
                    }

                    query = name == "start" ? query with { Start = when } : query with { End = when };
                    break;
                case "after-id":
                    query = query with { AfterId = value };
                    break;
                case "before-id":
                    query = query with { BeforeId = value };
                    break;
                case "ids":
                    query = query with { Ids = list };
                    break;
                default:
                    // §6.1.1: a field the server does not support is an error, not silently ignored.
                    throw new StanzaErrorException(StanzaErrorCondition.BadRequest, $"unsupported field '{name}'");
            }
        }

        return query;
    }

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
