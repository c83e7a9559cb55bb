using System.Globalization;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;

namespace Xmpp.Server.Modules.Muc;

/// <summary>
/// XEP-0433 Extended Channel Search over one multi-user chat service's public rooms, answered on the
/// service's own JID (conference.HOST), which the host's disco#items already lists: a client finds it by
/// the feature, as XEP-0433 §3.1 says, and the XEP's introduction names this use (instead of disco#items
/// and a disco#info per room). Stateless, as §2 requires: the result set management cursors are the rooms'
/// addresses.
/// </summary>
internal static class ChannelSearch
{
    public const string Namespace = "urn:xmpp:channel-search:0:search";
    public const string FormType = "urn:xmpp:channel-search:0:search-params";
    public const string ErrorNs = "urn:xmpp:channel-search:0:error";
    public const string RsmNs = "http://jabber.org/protocol/rsm";
    public const string ByAddress = "{urn:xmpp:channel-search:0:order}address";
    public const string ByUsers = "{urn:xmpp:channel-search:0:order}nusers";

    /// <summary>Items in one page at most, whatever the searcher asks (XEP-0059 §2.1 lets the service cap it).</summary>
    public const int MaxPage = 100;

    /// <summary>One room as the search sees it (read without the room's lock: §6.2 allows a stale count).</summary>
    public sealed record Channel(string Address, string Name, string Description, string Language, int Users, bool Open, bool NonAnonymous);

    /// <summary>The form (a get without one) or a page of results; a refusal as a stanza error with §4.2.2's conditions.</summary>
    public static Element Answer(Element search, IEnumerable<Channel> channels)
    {
        var form = search.Child("x", DataForm.Namespace);
        if (form is null || form.GetAttribute("type") != "submit")
        {
            return new Element("search", Namespace).Add(Form());
        }

        var values = DataForm.Values(form) ?? [];
        if (values.TryGetValue("FORM_TYPE", out var type) && type.Count > 0 && type[0] != FormType)
        {
            throw Refusal(StanzaErrorCondition.BadRequest, "cancel", null, $"FORM_TYPE must be {FormType}");
        }

        var query = Query.Parse(values);
        var results = channels.Where(query.Matches).ToList();
        results = query.Key == ByUsers
            ? [.. results.OrderByDescending(c => c.Users).ThenBy(c => c.Address, StringComparer.Ordinal)]
            : [.. results.OrderBy(c => c.Address, StringComparer.Ordinal)];
        return Page(results, search.Child("set", RsmNs), query.Key);
    }

    /// <summary>
    /// §4.2.1 and §6.1: every field it understands. Only the sort key and the service types carry a value:
    /// the others are left empty (a boolean search switch left out counts as true, as the XEP's example form
    /// shows), so that a searcher can submit a form without search conditions and learn that it needs one.
    /// </summary>
    public static Element Form()
    {
        var form = DataForm.Create("form", FormType);
        form.AddChild("title").AddText("Search the public rooms");
        form.AddChild("instructions").AddText("Search for keywords, or return all rooms (not both).");
        DataForm.AddField(form, "q", "text-single").SetAttribute("label", "Search for");
        DataForm.AddField(form, "all", "boolean").SetAttribute("label", "Return all entries (ignore search terms)");
        DataForm.AddField(form, "sinname", "boolean").SetAttribute("label", "Search in name (default: yes)");
        DataForm.AddField(form, "sindescription", "boolean").SetAttribute("label", "Search in description (default: yes)");
        DataForm.AddField(form, "sinaddress", "boolean").SetAttribute("label", "Search in address (default: yes)");
        DataForm.AddField(form, "min_users", "text-single").SetAttribute("label", "Minimum number of users");
        var types = DataForm.AddField(form, "types", "list-multi", "xep-0045").SetAttribute("label", "Service types");
        types.AddChild("option").SetAttribute("label", "XEP-0045 Multi-User Chats").AddChild("value").AddText("xep-0045");
        var key = DataForm.AddField(form, "key", "list-single", ByAddress).SetAttribute("label", "Sort results by");
        key.AddChild("option").SetAttribute("label", "Number of online users").AddChild("value").AddText(ByUsers);
        key.AddChild("option").SetAttribute("label", "Address").AddChild("value").AddText(ByAddress);
        return form;
    }

    /// <summary>XEP-0059 over the sorted results: after, before (empty: the last page), index; the cursors are addresses.</summary>
    private static Element Page(List<Channel> results, Element? set, string key)
    {
        var max = MaxPage;
        if (set?.ChildText("max", RsmNs) is { } maxText)
        {
            max = int.TryParse(maxText.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var m)
                ? Math.Min(m, MaxPage)
                : throw Refusal(StanzaErrorCondition.BadRequest, "modify", null, "max must be a non-negative number");
        }

        var start = 0;
        if (set?.ChildText("after", RsmNs) is { } after)
        {
            start = Position(results, after, key, before: false);
        }
        else if (set?.Child("before", RsmNs) is { } before)
        {
            var end = before.Text.Length == 0 ? results.Count : Position(results, before.Text, key, before: true);
            start = Math.Max(0, end - max);
            max = Math.Min(max, end);
        }
        else if (set?.ChildText("index", RsmNs) is { } indexText)
        {
            start = int.TryParse(indexText.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var i)
                ? Math.Min(i, results.Count)
                : throw Refusal(StanzaErrorCondition.BadRequest, "modify", null, "index must be a non-negative number");
        }

        var page = results.Skip(start).Take(max).ToList();
        var result = new Element("result", Namespace);
        foreach (var c in page)
        {
            result.Add(Item(c));
        }

        var rsm = result.AddChild("set", RsmNs);
        if (page.Count > 0)
        {
            rsm.AddChild("first").SetAttribute("index", start.ToString(CultureInfo.InvariantCulture)).AddText(page[0].Address);
            rsm.AddChild("last").AddText(page[^1].Address);
        }

        rsm.AddChild("count").AddText(results.Count.ToString(CultureInfo.InvariantCulture));
        return result;
    }

    /// <summary>
    /// Where a page starts (after) or ends (before) for a cursor. By address, a room that has gone since
    /// still has its place in the order (§6.1: no duplicates nor omissions); by users, it must still be there.
    /// </summary>
    private static int Position(List<Channel> results, string cursor, string key, bool before)
    {
        var i = results.FindIndex(c => c.Address == cursor);
        if (i >= 0)
        {
            return before ? i : i + 1;
        }

        if (key == ByAddress)
        {
            var next = results.FindIndex(c => string.CompareOrdinal(c.Address, cursor) > 0);
            return next < 0 ? results.Count : next;
        }

        throw Refusal(StanzaErrorCondition.ItemNotFound, "cancel", null, "that room is no longer in the results; search again");
    }

    /// <summary>§6.2: one result item.</summary>
    private static Element Item(Channel c)
    {
        var item = new Element("item", Namespace).SetAttribute("address", c.Address);
        item.AddChild("name").AddText(c.Name);
        if (c.Description.Length > 0)
        {
            item.AddChild("description").AddText(c.Description);
        }

        if (c.Language.Length > 0)
        {
            item.AddChild("language").AddText(c.Language);
        }

        item.AddChild("nusers").AddText(c.Users.ToString(CultureInfo.InvariantCulture));
        item.AddChild("service-type").AddText("xep-0045");
        if (c.Open)
        {
            item.AddChild("is-open");
        }

        item.AddChild("anonymity-mode").AddText(c.NonAnonymous ? "{urn:xmpp:channel-search:0:anonymity}none" : "muc_semianonymous");
        return item;
    }

    public static StanzaErrorException Refusal(StanzaErrorCondition condition, string type, Element? application, string text) =>
        new(new StanzaError(condition, text, type) { Application = application });

    /// <summary>A submitted search: its conditions checked as §4.2.2 says.</summary>
    private sealed record Query(string[]? Terms, bool InName, bool InDescription, bool InAddress, int MinUsers, bool Muc, string Key)
    {
        public static Query Parse(Dictionary<string, List<string>> values)
        {
            string? Value(string var) => values.TryGetValue(var, out var v) && v.Count > 0 ? v[0] : null;
            bool Switch(string var, bool fallback) => Value(var) is { } v
                ? DataForm.ParseBoolean(v) ?? throw Refusal(StanzaErrorCondition.BadRequest, "modify", null, $"{var} must be a boolean")
                : fallback;

            var key = Value("key") ?? ByAddress;
            if (key is not (ByAddress or ByUsers))
            {
                // §4.2.2.2.
                throw Refusal(StanzaErrorCondition.FeatureNotImplemented, "modify", new Element("invalid-sort-key", ErrorNs), $"unknown sort key '{key}'");
            }

            var all = Switch("all", false);
            var q = Value("q");
            if (all && q is { Length: > 0 })
            {
                // §4.2.2.6.
                var conflict = new Element("conflicting-fields", ErrorNs);
                conflict.AddChild("var").AddText("all");
                conflict.AddChild("var").AddText("q");
                throw Refusal(StanzaErrorCondition.BadRequest, "modify", conflict, "'Return all entries' and 'Search for' cannot be used together");
            }

            if (!all && q is not { Length: > 0 })
            {
                // §4.2.2.7: type cancel, as its text says (its example's 'modify' contradicts it).
                throw Refusal(StanzaErrorCondition.BadRequest, "cancel", new Element("no-search-conditions", ErrorNs), "give search terms (q) or ask for all rooms (all)");
            }

            string[]? terms = null;
            if (!all)
            {
                terms = q!.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                if (terms.Length == 0)
                {
                    // §4.2.2.3.
                    throw Refusal(StanzaErrorCondition.BadRequest, "modify", new Element("invalid-search-terms", ErrorNs), "the search terms are only spaces");
                }
            }

            var minUsers = Value("min_users") is { Length: > 0 } m
                ? int.TryParse(m.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : throw Refusal(StanzaErrorCondition.BadRequest, "modify", null, "min_users must be a number")
                : 0;

            // §6.1: only the service types asked for; without the field, XEP-0045 rooms.
            var muc = !values.TryGetValue("types", out var types) || types.Count == 0 || types.Contains("xep-0045");
            return new Query(terms, Switch("sinname", true), Switch("sindescription", true), Switch("sinaddress", true), minUsers, muc, key);
        }

        /// <summary>Every term in one of the chosen fields, case-insensitively.</summary>
        public bool Matches(Channel c)
        {
            if (!Muc || c.Users < MinUsers)
            {
                return false;
            }

            return Terms is null || Terms.All(t =>
                (InName && c.Name.Contains(t, StringComparison.OrdinalIgnoreCase)) ||
                (InDescription && c.Description.Contains(t, StringComparison.OrdinalIgnoreCase)) ||
                (InAddress && c.Address.Contains(t, StringComparison.OrdinalIgnoreCase)));
        }
    }
}
