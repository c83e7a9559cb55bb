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

    /// <summary>Routes everything, in order.</summary>
    public async ValueTask RouteAsync(IStanzaRouter router, CancellationToken ct)
    {
        foreach (var (stanza, from, to) in _items)
        {
            if (from is not null && to is not null)
            {
                await router.RouteParsedAsync(stanza, from, to, ct).ConfigureAwait(false);
            }
            else
            {
                await router.RouteAsync(stanza, null, ct).ConfigureAwait(false);
            }
        }
    }
}
