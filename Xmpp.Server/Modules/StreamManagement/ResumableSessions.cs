using System.Collections.Concurrent;

namespace Xmpp.Server.Modules.StreamManagement;

/// <summary>Sessions that can be resumed, by resumption id (XEP-0198 §5), live or waiting after a dropped connection.</summary>
internal sealed class ResumableSessions
{
    private readonly ConcurrentDictionary<string, ManagedSession> _byId = new(StringComparer.Ordinal);

    /// <summary>Sessions being ended right now (their unacknowledged messages on the way to storage).</summary>
    private readonly ConcurrentDictionary<Task, bool> _ending = new();

    public int Count => _byId.Count;

    public void Add(string id, ManagedSession session) => _byId[id] = session;

    public void Remove(string id, ManagedSession session) => _byId.TryRemove(new KeyValuePair<string, ManagedSession>(id, session));

    /// <summary>Every resumable session, live or waiting.</summary>
    public IEnumerable<ManagedSession> All => _byId.Values;

    public ManagedSession? Find(string id) => _byId.TryGetValue(id, out var s) ? s : null;

    /// <summary>A session's end is under way; shutdown waits for it.</summary>
    public void Ending(Task end)
    {
        _ending[end] = true;
        _ = end.ContinueWith(t => _ending.TryRemove(t, out _), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    /// <summary>At shutdown: every waiting session ends now, so its unacknowledged messages are stored before storage closes.</summary>
    public async Task EndAllAsync()
    {
        foreach (var s in _byId.Values.ToList())
        {
            await s.EndKeptAsync("the server is shutting down").ConfigureAwait(false);
        }

        // Those ending on their own finish first too.
        await Task.WhenAll(_ending.Keys.ToList()).ConfigureAwait(false);
    }
}
