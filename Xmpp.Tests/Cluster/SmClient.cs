using System.Collections.Concurrent;
using System.Globalization;
using Xmpp.Core.Xml;
using Xmpp.Tests.EndToEnd;

namespace Xmpp.Tests.Cluster;

/// <summary>
/// A client that does XEP-0198 as a mobile client does: it counts the stanzas it handles and answers &lt;r/&gt;,
/// keeps what it sent until the server acknowledges it, and when its stream is lost resumes the session (on any
/// node) and sends again what the server had not handled (§5). It records every message id it receives and every
/// unavailable presence, for the rolling-restart test's counts.
/// </summary>
internal sealed class SmClient : IAsyncDisposable
{
    private const string Sm = "urn:xmpp:sm:3";
    private readonly ClusterNodes _cluster;
    private readonly string _user;
    private readonly object _gate = new();
    private readonly SemaphoreSlim _write = new(1, 1);
    private readonly List<Outgoing> _outbox = [];
    private int _generation;
    private RawXmppClient _client = null!;
    private long _handled;
    private long _sent;
    private Task _reading = Task.CompletedTask;
    private TaskCompletionSource _lost = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private TaskCompletionSource? _acked;

    private SmClient(ClusterNodes cluster, string user, string resource)
    {
        _cluster = cluster;
        _user = user;
        Jid = $"{user}@localhost/{resource}";
    }

    public string Jid { get; }

    public string ResumeId { get; private set; } = string.Empty;

    /// <summary>The node (0-based) whose connection the client is on now.</summary>
    public int Node { get; private set; }

    /// <summary>How many times each message id arrived.</summary>
    public ConcurrentDictionary<string, int> Received { get; } = new(StringComparer.Ordinal);

    /// <summary>Unavailable presence from a resource (a session that went offline), by sender.</summary>
    public IReadOnlyCollection<string> Unavailable => _unavailable.Where(p => p.Value.Task.IsCompleted).Select(p => p.Key).ToList();

    private readonly ConcurrentDictionary<string, TaskCompletionSource<Element>> _unavailable = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<TaskCompletionSource<Element>, Func<Element, bool>> _waiters = new();

    /// <summary>Completes with the unavailable presence from <paramref name="resource"/> (a full JID or a room occupant) when it arrives, or has since <see cref="ClearUnavailable"/>.</summary>
    public Task<Element> WentAsync(string resource) => _unavailable.GetOrAdd(resource, _ => new(TaskCreationOptions.RunContinuationsAsynchronously)).Task;

    /// <summary>Completes with the next stanza received that matches (call it before sending what it answers).</summary>
    public Task<Element> WaitForAsync(Func<Element, bool> match)
    {
        var waiter = new TaskCompletionSource<Element>(TaskCreationOptions.RunContinuationsAsynchronously);
        _waiters[waiter] = match;
        return waiter.Task;
    }

    /// <summary>Forgets the unavailable presence received so far.</summary>
    public void ClearUnavailable() => _unavailable.Clear();

    /// <summary>Resumption answers that were not &lt;resumed/&gt;.</summary>
    public ConcurrentBag<string> Failures { get; } = [];

    public int Resumptions { get; private set; }

    /// <summary>Called with each stanza received (on the reading task).</summary>
    public Action<Element>? Observe { get; set; }

    /// <summary>Completes when the current stream is gone.</summary>
    public Task Lost => _lost.Task;

    public static async Task<SmClient> ConnectAsync(ClusterNodes cluster, int node, string user, string resource)
    {
        var c = new SmClient(cluster, user, resource) { Node = node };
        c._client = await cluster.LoginAsync(node, user, resource);
        await c._client.SendAsync($"<enable xmlns='{Sm}' resume='true'/>");
        var enabled = await c._client.ReadUntilAsync(e => e.Name == "enabled");
        c.ResumeId = enabled.GetAttribute("id")!;
        c._reading = c.ReadAsync(c._client, c._lost);
        await c.SendStanzaAsync("<presence/>");
        return c;
    }

    /// <summary>Sends a stanza, kept until the server acknowledges it; while the stream is lost it waits in the outbox.</summary>
    public async Task SendStanzaAsync(string xml)
    {
        var item = new Outgoing(xml);
        lock (_gate)
        {
            item.Seq = ++_sent;
            _outbox.Add(item);
        }

        await _write.WaitAsync();
        try
        {
            // A resumption that started meanwhile sent it already, with the rest of the outbox.
            lock (_gate)
            {
                if (item.Generation == _generation + 1)
                {
                    return;
                }

                item.Generation = _generation + 1;
            }

            await WriteLockedAsync(xml + "<r xmlns='urn:xmpp:sm:3'/>");
        }
        finally
        {
            _write.Release();
        }
    }

    private async Task WriteAsync(string xml)
    {
        await _write.WaitAsync();
        try
        {
            await WriteLockedAsync(xml);
        }
        finally
        {
            _write.Release();
        }
    }

    private async Task WriteLockedAsync(string xml)
    {
        try
        {
            await _client.SendAsync(xml);
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or TimeoutException or System.Net.Sockets.SocketException or InvalidOperationException)
        {
            // The stream is lost: what was not acknowledged goes again after the resumption.
        }
    }

    /// <summary>Resumes the lost session on <paramref name="node"/>; the stanzas the server had not handled are sent again.</summary>
    public async Task ResumeAsync(int node)
    {
        await _reading;
        await _client.DisposeAsync();
        var client = await RawXmppClient.ConnectAsync(_cluster.Nodes[node].ClientPort, address: _cluster.Nodes[node].Address.ToString());
        await client.AuthenticateOnlyAsync(_user, "pw-" + _user);
        long h;
        lock (_gate)
        {
            h = _handled;
        }

        await client.SendAsync($"<resume xmlns='{Sm}' previd='{ResumeId}' h='{h}'/>");
        var answer = await client.ReadAsync();
        if (answer.Name != "resumed")
        {
            Failures.Add($"{Jid} on node {node + 1}: {answer}");
            _client = client;
            return;
        }

        Resumptions++;
        Node = node;
        await _write.WaitAsync();
        try
        {
            List<Outgoing> again;
            lock (_gate)
            {
                Acknowledge(long.Parse(answer.GetAttribute("h")!, CultureInfo.InvariantCulture));
                _generation++;
                again = [.. _outbox];
                foreach (var o in again)
                {
                    o.Generation = _generation + 1;
                }
            }

            _client = client;
            _lost = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _reading = ReadAsync(client, _lost);
            foreach (var o in again)
            {
                await WriteLockedAsync(o.Xml);
            }

            await WriteLockedAsync("<r xmlns='urn:xmpp:sm:3'/>");
        }
        finally
        {
            _write.Release();
        }
    }

    /// <summary>
    /// The session died with its node (nothing to resume): logs in again on <paramref name="node"/> with a new
    /// resumable session. What the server had not acknowledged is not sent again here: it is returned (the XML of
    /// each stanza, in the order sent), for the caller to send again as a client does once it is back (its rooms
    /// joined again) or to give up.
    /// </summary>
    public async Task<IReadOnlyList<string>> ReconnectAsync(int node)
    {
        await _reading;
        await _client.DisposeAsync();
        var client = await _cluster.LoginAsync(node, _user, Jid.Split('/')[1]);
        await client.SendAsync($"<enable xmlns='{Sm}' resume='true'/>");
        var enabled = await client.ReadUntilAsync(e => e.Name == "enabled");
        List<string> abandoned;
        await _write.WaitAsync();
        try
        {
            lock (_gate)
            {
                abandoned = [.. _outbox.Select(o => o.Xml)];
                _outbox.Clear();
                _handled = 0;
                _sent = 0;
                _generation++;
                _acked?.TrySetResult();
            }

            ResumeId = enabled.GetAttribute("id")!;
            Node = node;
            _client = client;
            _lost = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _reading = ReadAsync(client, _lost);
        }
        finally
        {
            _write.Release();
        }

        await SendStanzaAsync("<presence/>");
        return abandoned;
    }

    /// <summary>Completes once the server has acknowledged everything sent (asks with &lt;r/&gt;).</summary>
    public async Task AllAcknowledgedAsync(TimeSpan timeout)
    {
        Task wait;
        lock (_gate)
        {
            if (_outbox.Count == 0)
            {
                return;
            }

            _acked = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            wait = _acked.Task;
        }

        await WriteAsync("<r xmlns='urn:xmpp:sm:3'/>");
        await wait.WaitAsync(timeout);
    }

    /// <summary>The ids of the messages sent and not acknowledged yet.</summary>
    public IReadOnlyList<string> UnacknowledgedIds()
    {
        lock (_gate)
        {
            return [.. _outbox.Select(o => IdOf(o.Xml)).OfType<string>()];
        }
    }

    /// <summary>The id attribute of a stanza this client sends (its first one), or null.</summary>
    public static string? IdOf(string xml) =>
        System.Text.RegularExpressions.Regex.Match(xml, " id='([^']+)'") is { Success: true } m ? m.Groups[1].Value : null;

    public int Unacknowledged
    {
        get
        {
            lock (_gate)
            {
                return _outbox.Count;
            }
        }
    }

    private void Acknowledge(long h)
    {
        _outbox.RemoveAll(o => o.Seq <= h);
        if (_outbox.Count == 0)
        {
            _acked?.TrySetResult();
        }
    }

    private async Task ReadAsync(RawXmppClient client, TaskCompletionSource lost)
    {
        try
        {
            while (await client.ReadOrEndAsync(TimeSpan.FromMinutes(5)) is { } e)
            {
                switch (e.Name)
                {
                    case "message" or "presence" or "iq":
                        lock (_gate)
                        {
                            _handled++;
                        }

                        Observe?.Invoke(e);
                        if (e.Name == "message" && e.GetAttribute("id") is { } id)
                        {
                            Received.AddOrUpdate(id, 1, (_, n) => n + 1);
                        }
                        else if (e.Name == "presence" && e.GetAttribute("type") == "unavailable" && e.GetAttribute("from")?.Contains('/', StringComparison.Ordinal) == true)
                        {
                            _unavailable.GetOrAdd(e.GetAttribute("from") ?? string.Empty, _ => new(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult(e);
                        }

                        foreach (var (waiter, match) in _waiters)
                        {
                            if (match(e) && _waiters.TryRemove(waiter, out _))
                            {
                                waiter.TrySetResult(e);
                            }
                        }

                        break;
                    case "r" when e.Namespace == Sm:
                        long h;
                        lock (_gate)
                        {
                            h = _handled;
                        }

                        await WriteAsync($"<a xmlns='{Sm}' h='{h}'/>");
                        break;
                    case "a" when e.Namespace == Sm:
                        lock (_gate)
                        {
                            Acknowledge(long.Parse(e.GetAttribute("h")!, CultureInfo.InvariantCulture));
                        }

                        break;
                }
            }
        }
        catch (TimeoutException)
        {
            // Treated as lost.
        }
        finally
        {
            lost.TrySetResult();
        }
    }

    private sealed class Outgoing(string xml)
    {
        public string Xml { get; } = xml;

        public long Seq { get; set; }

        /// <summary>The stream it was last written on (1 + the resumptions before it).</summary>
        public int Generation { get; set; }
    }

    public async ValueTask DisposeAsync()
    {
        await _client.DisposeAsync();
        _write.Dispose();
    }
}
