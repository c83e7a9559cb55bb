using Xmpp.Core.Addressing;
using Xmpp.Core.Xml;
namespace Xmpp.Server.Routing;

/// <summary>
/// What a service (a group chat room, a publish-subscribe node) sends while it holds its lock, routed once the
/// lock is released: a bounce of something it sent comes back to it, which must be free to take it. Fan-out
/// (to occupants, to subscribers) adds the addresses it holds parsed already, so that the router parses no JID
/// again.
/// </summary>
public sealed class Outbox
{
    private readonly List<(Element Stanza, Jid? From, Jid? To)> _items = [];

    public int Count => _items.Count;

    public Element this[int index] => _items[index].Stanza;

    /// <summary>A stanza whose 'from' and 'to' the router reads.</summary>
    public void Add(Element stanza) => _items.Add((stanza, null, null));

    /// <summary>A stanza whose 'from' and 'to' the router reads, at a place in the order.</summary>
    public void Insert(int index, Element stanza) => _items.Insert(index, (stanza, null, null));

    /// <summary>Forgets everything (the request failed: only its error goes out).</summary>
    public void Clear() => _items.Clear();

    /// <summary>A stanza whose 'from' and 'to' are these addresses, already parsed.</summary>
    public void Add(Element stanza, Jid from, Jid to) => _items.Add((stanza, from, to));

    /// <summary>
    /// Routes everything: each recipient's stanzas in order, recipients side by side, so that one whose stanzas wait
    /// (cluster mode: its account's home died with its node, and the stanza waits for it to come back) does not
    /// hold up everyone after it in the fan-out.
    /// </summary>
    public async ValueTask RouteAsync(IStanzaRouter router, CancellationToken ct)
    {
        // Most routes complete at once (a local session, a batch queued to another node): those cost nothing more
        // than a loop. Only a recipient whose route is still under way is remembered, and its later stanzas follow it.
        List<Task>? pending = null;
        Dictionary<string, Task>? busy = null;
        foreach (var item in _items)
        {
            // The recipient's key is computed only once some route is under way (never on the common path).
            var key = busy is null ? null : Key(item);
            if (key is not null && busy!.TryGetValue(key, out var before))
            {
                var after = RouteAfterAsync(before, router, item, ct);
                busy[key] = after;
                pending!.Add(after);
                continue;
            }

            var routing = RouteOneAsync(router, item, ct);
            if (!routing.IsCompletedSuccessfully)
            {
                var task = routing.AsTask();
                (busy ??= new(StringComparer.Ordinal))[key ?? Key(item)] = task;
                (pending ??= []).Add(task);
            }
        }

        if (pending is not null)
        {
            await Task.WhenAll(pending).ConfigureAwait(false);
        }
    }

    private static string Key((Element Stanza, Jid? From, Jid? To) item) => item.To?.ToString() ?? item.Stanza.GetAttribute("to") ?? string.Empty;

    private static async Task RouteAfterAsync(Task before, IStanzaRouter router, (Element, Jid?, Jid?) item, CancellationToken ct)
    {
        await before.ConfigureAwait(false);
        await RouteOneAsync(router, item, ct).ConfigureAwait(false);
    }

    private static ValueTask RouteOneAsync(IStanzaRouter router, (Element Stanza, Jid? From, Jid? To) item, CancellationToken ct) =>
        item.From is not null && item.To is not null ? router.RouteParsedAsync(item.Stanza, item.From, item.To, ct) : router.RouteAsync(item.Stanza, null, ct);
}
