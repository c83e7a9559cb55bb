using System.Collections.Concurrent;
using Xmpp.Core.Xml;

namespace Xmpp.Server.Net;

/// <summary>How client streams manage themselves (XEP-0198), set by the stream management module.</summary>
/// <param name="ResumeTimeout">How long a dropped session waits to be resumed (the client may ask for less).</param>
/// <param name="MaxUnacked">Unacknowledged stanzas a session may hold; beyond them a waiting session ends.</param>
public sealed record StreamManagementOptions(TimeSpan ResumeTimeout, int MaxUnacked);

/// <summary>
/// The counters and the unacknowledged queue of one managed stream (XEP-0198 §4): stanzas handled from the
/// client, stanzas sent to it, how many of those it acknowledged, and those it has not.
/// </summary>
internal sealed class SmState
{
    public const string Namespace = "urn:xmpp:sm:3";

    public object Gate { get; } = new();

    /// <summary>Stanzas received from the client and handled (the 'h' we report).</summary>
    public long Inbound { get; set; }

    /// <summary>Stanzas sent to the client since enabling.</summary>
    public long Sent { get; set; }

    /// <summary>How many of those the client acknowledged.</summary>
    public long Acked { get; set; }

    /// <summary>Sent and not acknowledged, oldest first: Sent - Acked of them.</summary>
    public Queue<Element> Unacked { get; } = new();

    /// <summary>An &lt;r/&gt; is out and unanswered.</summary>
    public bool AckRequested { get; set; }

    /// <summary>The resumption id, when the client asked for resumption.</summary>
    public string? ResumeId { get; init; }

    public TimeSpan ResumeTimeout { get; init; }

    /// <summary>The client acknowledged <paramref name="h"/> stanzas; false when it claims more than were sent (§4).</summary>
    public bool Acknowledge(long h)
    {
        if (h > Sent)
        {
            return false;
        }

        // 'h' wraps at 2^32 (§4); a smaller value than before is a wrapped one or a stale one: ignored.
        while (Acked < h && Unacked.Count > 0)
        {
            Unacked.Dequeue();
            Acked++;
        }

        Acked = Math.Max(Acked, h);
        return true;
    }

    /// <summary>A copy for the stream that resumes this one, after the client's acknowledgement.</summary>
    public SmState CopyForResumption(string resumeId)
    {
        var copy = new SmState { ResumeId = resumeId, ResumeTimeout = ResumeTimeout, Inbound = Inbound, Sent = Sent, Acked = Acked };
        foreach (var e in Unacked)
        {
            copy.Unacked.Enqueue(e);
        }

        return copy;
    }
}

/// <summary>Sessions that can be resumed, by resumption id (XEP-0198 §5), live or waiting after a dropped connection.</summary>
public sealed class ResumableSessions
{
    private readonly ConcurrentDictionary<string, ClientConnection> _byId = new(StringComparer.Ordinal);

    /// <summary>Sessions being ended right now (their unacknowledged messages on the way to storage).</summary>
    private readonly ConcurrentDictionary<Task, bool> _ending = new();

    public int Count => _byId.Count;

    internal void Add(string id, ClientConnection connection) => _byId[id] = connection;

    internal void Remove(string id, ClientConnection connection) => _byId.TryRemove(new KeyValuePair<string, ClientConnection>(id, connection));

    internal ClientConnection? Find(string id) => _byId.TryGetValue(id, out var c) ? c : null;

    /// <summary>A session's end is under way; shutdown waits for it.</summary>
    internal void Ending(Task end)
    {
        _ending[end] = true;
        _ = end.ContinueWith(t => _ending.TryRemove(t, out _), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    /// <summary>At shutdown: every waiting session ends now, so its unacknowledged messages are stored before storage closes.</summary>
    public async Task EndAllAsync()
    {
        foreach (var c in _byId.Values.ToList())
        {
            await c.EndHibernationAsync("the server is shutting down").ConfigureAwait(false);
        }

        // Those whose wait the shutdown itself cancelled are ending on their own: they finish first too.
        await Task.WhenAll(_ending.Keys.ToList()).ConfigureAwait(false);
    }
}
