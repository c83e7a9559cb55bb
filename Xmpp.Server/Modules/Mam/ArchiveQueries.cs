using System.Globalization;
using Xmpp.Core;
using Xmpp.Core.Addressing;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;
using Xmpp.Server.Storage;

namespace Xmpp.Server.Modules.Mam;

/// <summary>
/// XEP-0313 queries over one archive, whoever owns it: an account (the mam module) or a multi-user chat
/// room (the muc module). Parses the form (§4.1 and #extended) and the XEP-0059 set, sends each result
/// message through the caller's delegate in order, and returns the &lt;fin/&gt;.
/// </summary>
public static class ArchiveQueries
{
    public const string Namespace = MamModule.Namespace;
    public const string RsmNamespace = MamModule.RsmNamespace;

    /// <summary>The form that a query's fields come in (§4.1.1: a get of the query element returns it).</summary>
    public static Element QueryForm()
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

    /// <param name="archive">The archive's JID: results come from it (clients check that they do).</param>
    /// <param name="requester">Who asked: results are addressed to it.</param>
    /// <param name="send">Delivers one result message; awaited in order, before the fin is returned.</param>
    public static async ValueTask<Element> ServeAsync(
        IArchiveStore store, Jid archive, Jid requester, Element query, int maxPage, Func<Element, CancellationToken, ValueTask> send, CancellationToken ct)
    {
        var filter = ParseForm(query.Child("x", DataForm.Namespace));
        var set = query.Child("set", RsmNamespace);
        var max = maxPage;
        if (set?.ChildText("max", RsmNamespace) is { } maxText)
        {
            max = int.TryParse(maxText, NumberStyles.None, CultureInfo.InvariantCulture, out var m)
                ? Math.Min(m, maxPage)
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
            : await store.QueryAsync(archive.Domain, archive.Local!, filter, ct).ConfigureAwait(false)
                ?? throw new StanzaErrorException(StanzaErrorCondition.ItemNotFound, "no archived message with that id");

        var queryId = query.GetAttribute("queryid");
        var messages = query.Child("flip-page", Namespace) is not null ? page.Messages.Reverse() : page.Messages;
        var n = 0;
        foreach (var m in messages)
        {
            var result = new Element("message", Ns.Client)
                .SetAttribute("from", archive.ToString())
                .SetAttribute("to", requester.ToString())
                .SetAttribute("id", "mam-" + m.Id + "-" + (n++).ToString(CultureInfo.InvariantCulture));
            result.AddChild("result", Namespace).SetAttribute("queryid", queryId).SetAttribute("id", m.Id)
                .Add(Forwarded.Wrap(ElementParser.Parse(m.Xml), m.At));
            await send(result, ct).ConfigureAwait(false);
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

    /// <summary>§5.4 metadata: the first and last archived message.</summary>
    public static async ValueTask<Element?> MetadataAsync(IArchiveStore store, Jid archive, CancellationToken ct)
    {
        var metadata = new Element("metadata", Namespace);
        if (await store.BoundsAsync(archive.Domain, archive.Local!, ct).ConfigureAwait(false) is var (first, last))
        {
            metadata.AddChild("start").SetAttribute("id", first.Id).SetAttribute("timestamp", Stamp(first.At));
            metadata.AddChild("end").SetAttribute("id", last.Id).SetAttribute("timestamp", Stamp(last.At));
        }

        return metadata;
    }

    public static string Stamp(DateTimeOffset at) => at.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);

    /// <summary>§4.1 filters, and the #extended ones (before-id, after-id, ids).</summary>
    public static ArchiveQuery ParseForm(Element? form)
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
}
