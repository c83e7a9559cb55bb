namespace Xmpp.Server.Sessions;

/// <summary>
/// What modules keep per session (carbons enabled, client state, ...), under keys of their own. Few
/// items, written rarely, read from any thread: an immutable array swapped on write, so a session
/// with no items costs one reference.
/// </summary>
public sealed class SessionItems
{
    private KeyValuePair<string, object>[] _items = [];

    public T? Get<T>(string key)
        where T : class
    {
        foreach (var kv in Volatile.Read(ref _items))
        {
            if (kv.Key == key)
            {
                return kv.Value as T;
            }
        }

        return null;
    }

    public bool Has(string key) => Get<object>(key) is not null;

    /// <summary>Takes every item of another session (a resumed one, XEP-0198).</summary>
    public void CopyFrom(SessionItems other) => Volatile.Write(ref _items, Volatile.Read(ref other._items));

    /// <summary>The items that are flags (their value is their key), which can be carried to another node.</summary>
    public IEnumerable<string> Flags() => Volatile.Read(ref _items).Where(kv => kv.Value is string v && v == kv.Key).Select(kv => kv.Key);

    /// <summary>Sets or (with null) removes an item.</summary>
    public void Set(string key, object? value)
    {
        while (true)
        {
            var old = Volatile.Read(ref _items);
            var next = old.Where(kv => kv.Key != key);
            var updated = (value is null ? next : next.Append(new KeyValuePair<string, object>(key, value))).ToArray();
            if (Interlocked.CompareExchange(ref _items, updated, old) == old)
            {
                return;
            }
        }
    }
}
