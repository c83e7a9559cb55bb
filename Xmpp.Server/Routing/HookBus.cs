namespace Xmpp.Server.Routing;

/// <summary>A stanza hook handler: returns true when it handled the stanza (later handlers do not run).</summary>
public delegate ValueTask<bool> StanzaHandler(StanzaContext context, CancellationToken cancellationToken);

/// <summary>
/// Named events with prioritised handlers (Prosody's module:hook, ejabberd's run_fold): higher priority
/// runs first, and the first handler that returns true ends the event. Registration happens while the
/// server starts; afterwards the table is only read, so firing takes no lock.
/// </summary>
public sealed class HookBus
{
    private readonly Dictionary<string, List<(int Priority, long Order, StanzaHandler Handler)>> _handlers = new(StringComparer.Ordinal);
    private long _order;
    private volatile bool _frozen;

    public void On(string name, StanzaHandler handler, int priority = 0)
    {
        if (_frozen)
        {
            throw new InvalidOperationException("hooks are registered while the server starts");
        }

        if (!_handlers.TryGetValue(name, out var list))
        {
            _handlers[name] = list = [];
        }

        list.Add((priority, _order++, handler));
        list.Sort((a, b) => a.Priority != b.Priority ? b.Priority.CompareTo(a.Priority) : a.Order.CompareTo(b.Order));
    }

    internal void Freeze() => _frozen = true;

    public async ValueTask<bool> FireAsync(string name, StanzaContext context, CancellationToken cancellationToken)
    {
        if (!_handlers.TryGetValue(name, out var list))
        {
            return false;
        }

        foreach (var (_, _, handler) in list)
        {
            if (await handler(context, cancellationToken).ConfigureAwait(false))
            {
                return true;
            }
        }

        return false;
    }
}
