using System.Collections.Concurrent;

namespace Xmpp.Server.Net;

/// <summary>Owns every live connection: ids, counting, and closing them all at shutdown.</summary>
public sealed class ConnectionManager
{
    private readonly ConcurrentDictionary<long, ClientConnection> _connections = new();
    private long _nextId;

    public int Count => _connections.Count;

    public long NextId() => Interlocked.Increment(ref _nextId);

    public void Add(ClientConnection connection) => _connections[connection.ConnectionId] = connection;

    public void Remove(ClientConnection connection) => _connections.TryRemove(connection.ConnectionId, out _);

    public IEnumerable<ClientConnection> All => _connections.Values;
}
