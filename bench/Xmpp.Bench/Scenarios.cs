using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using Xmpp.Core.Xml;

namespace Xmpp.Bench;

internal static class Scenarios
{
    private static double Micros(long ticks) => ticks * 1_000_000.0 / Stopwatch.Frequency;

    private static void Progress(string text) => Console.Error.WriteLine($"[{DateTime.UtcNow:HH:mm:ss}] {text}");

    /// <summary>Logs in accounts 1..count with at most <paramref name="concurrency"/> logins in flight.</summary>
    private static async Task<(BenchClient?[] Clients, Histogram Times, int Errors, double Seconds)> LoginManyAsync(
        Target target, int first, int count, int concurrency, bool presence, CancellationToken ct, Func<int, Target>? targetOf = null)
    {
        var clients = new BenchClient?[count];
        var times = new Histogram();
        var errors = 0;
        var next = -1;
        var watch = Stopwatch.StartNew();
        string? firstError = null;
        async Task Worker()
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < count)
            {
                var start = Stopwatch.GetTimestamp();
                try
                {
                    var c = await BenchClient.LoginAsync(targetOf?.Invoke(i) ?? target, target.User(first + i), "b" + (first + i).ToString(CultureInfo.InvariantCulture), ct).ConfigureAwait(false);
                    if (presence)
                    {
                        await c.SendAsync("<presence/>", ct).ConfigureAwait(false);
                    }

                    times.Record((long)Micros(Stopwatch.GetTimestamp() - start));
                    clients[i] = c;
                }
                catch (Exception ex) when (ex is not OperationCanceledException || !ct.IsCancellationRequested)
                {
                    Interlocked.Increment(ref errors);
                    Interlocked.CompareExchange(ref firstError, ex.Message, null);
                }
            }
        }

        await Task.WhenAll(Enumerable.Range(0, Math.Min(concurrency, count)).Select(_ => Task.Run(Worker, ct))).ConfigureAwait(false);
        if (firstError is not null)
        {
            Progress($"{errors} logins failed, first: {firstError}");
        }

        return (clients, times, errors, watch.Elapsed.TotalSeconds);
    }

    private static async Task CloseAllAsync(IEnumerable<BenchClient?> clients)
    {
        await Task.WhenAll(clients.Where(c => c is not null).Select(async c =>
        {
            await c!.CloseAsync().ConfigureAwait(false);
            await c.DisposeAsync().ConfigureAwait(false);
        })).ConfigureAwait(false);
    }

    /// <summary>Reads and drops everything a client receives until the stream ends (keeps sockets drained).</summary>
    private static async Task DrainAsync(BenchClient c, CancellationToken ct)
    {
        try
        {
            while (await c.ReadAsync(ct).ConfigureAwait(false) is not null)
            {
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException or ObjectDisposedException or InvalidOperationException or System.Xml.XmlException or Xmpp.Core.Stanzas.XmppStreamException)
        {
            // Done.
        }
    }

    public static async Task<Dictionary<string, object>> LoginAsync(Target target, int count, int concurrency, CancellationToken ct)
    {
        Progress($"login storm: {count} accounts, {concurrency} at a time");
        var (clients, times, errors, seconds) = await LoginManyAsync(target, 1, count, concurrency, presence: true, ct).ConfigureAwait(false);
        await CloseAllAsync(clients).ConfigureAwait(false);
        return new()
        {
            ["scenario"] = "login",
            ["count"] = count,
            ["errors"] = errors,
            ["seconds"] = Math.Round(seconds, 3),
            ["logins_per_second"] = Math.Round((count - errors) / seconds, 1),
            ["p50_ms"] = Math.Round(times.Percentile(50) / 1000, 2),
            ["p99_ms"] = Math.Round(times.Percentile(99) / 1000, 2),
        };
    }

    /// <summary>
    /// K pairs: client 2i sends M messages to client 2i+1 and the other way round, each side keeping at most
    /// <paramref name="window"/> unanswered... unacknowledged messages in flight (the receiver's count is the
    /// acknowledgement). Every body carries the sequence number and the send time.
    /// </summary>
    /// <param name="second">A second cluster node (bench/cluster): "together" puts each pair on one node, pairs alternating; "split" puts the two ends of every pair on different nodes.</param>
    /// <param name="rate">
    /// Messages per second over all senders (0: as fast as the window allows). Each sender then sends on a fixed
    /// schedule, staggered against the others, so that latency is measured at a load that does not depend on it.
    /// </param>
    public static async Task<Dictionary<string, object>> MessagesAsync(Target target, int pairs, int messages, int window, CancellationToken ct, Target? second = null, string placement = "together", int rate = 0)
    {
        Progress($"messages: {pairs} pairs, {messages} messages each way, window {window}{(rate > 0 ? $", {rate} messages/s" : string.Empty)}{(second is null ? string.Empty : ", two nodes, pairs " + placement)}");
        Func<int, Target>? targetOf = second is null ? null : i => (placement == "split" ? i % 2 : i / 2 % 2) == 0 ? target : second;
        var (clients, _, errors, _) = await LoginManyAsync(target, 1, pairs * 2, 50, presence: true, ct, targetOf).ConfigureAwait(false);
        if (errors > 0)
        {
            await CloseAllAsync(clients).ConfigureAwait(false);
            return new() { ["scenario"] = "messages", ["errors"] = errors };
        }

        var n = pairs * 2;
        var latency = new Histogram();
        var received = new long[n];
        var duplicates = 0L;
        var outOfOrder = 0L;
        var seen = Enumerable.Range(0, n).Select(_ => new bool[messages]).ToArray();
        var credits = Enumerable.Range(0, n).Select(_ => new SemaphoreSlim(window, window)).ToArray();
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var total = (long)n * messages;
        long delivered = 0;
        using var readers = CancellationTokenSource.CreateLinkedTokenSource(ct);

        // Drain presence first so that the timed part only sees messages.
        await Task.Delay(500, ct).ConfigureAwait(false);
        var readTasks = Enumerable.Range(0, n).Select(i => Task.Run(async () =>
        {
            var c = clients[i]!;
            var sender = i ^ 1;
            var last = -1;
            try
            {
                while (await c.ReadAsync(readers.Token).ConfigureAwait(false) is { } e)
                {
                    if (e.Name != "message" || e.ChildText("body", "jabber:client") is not { } body)
                    {
                        continue;
                    }

                    var parts = body.Split(':');
                    var seq = int.Parse(parts[0], CultureInfo.InvariantCulture);
                    var sent = long.Parse(parts[1], CultureInfo.InvariantCulture);
                    latency.Record((long)Micros(Stopwatch.GetTimestamp() - sent));
                    if (seen[i][seq])
                    {
                        Interlocked.Increment(ref duplicates);
                    }

                    seen[i][seq] = true;
                    if (seq < last)
                    {
                        Interlocked.Increment(ref outOfOrder);
                    }

                    last = seq;
                    received[i]++;
                    credits[sender].Release();
                    if (Interlocked.Increment(ref delivered) == total)
                    {
                        done.TrySetResult();
                    }
                }
            }
            catch (Exception ex) when (ex is OperationCanceledException or IOException or ObjectDisposedException or InvalidOperationException or System.Xml.XmlException or Xmpp.Core.Stanzas.XmppStreamException)
            {
                // Stopped.
            }
        }, ct)).ToArray();

        var watch = Stopwatch.StartNew();
        // At a fixed rate, sender i sends its k-th message at start + (k + i / n) x n / rate.
        var interval = rate > 0 ? Stopwatch.Frequency * (double)n / rate : 0;
        var start = Stopwatch.GetTimestamp();
        var sendTasks = Enumerable.Range(0, n).Select(i => Task.Run(async () =>
        {
            var c = clients[i]!;
            var to = clients[i ^ 1]!.Jid;
            for (var seq = 0; seq < messages; seq++)
            {
                if (rate > 0 && start + (long)((seq + ((double)i / n)) * interval) - Stopwatch.GetTimestamp() is var wait and > 0)
                {
                    await Task.Delay(TimeSpan.FromSeconds((double)wait / Stopwatch.Frequency), ct).ConfigureAwait(false);
                }

                await credits[i].WaitAsync(ct).ConfigureAwait(false);
                var body = seq.ToString(CultureInfo.InvariantCulture) + ":" + Stopwatch.GetTimestamp().ToString(CultureInfo.InvariantCulture);
                await c.SendAsync($"<message to='{to}' type='chat'><body>{body}</body></message>", ct).ConfigureAwait(false);
            }
        }, ct)).ToArray();
        await Task.WhenAll(sendTasks).ConfigureAwait(false);
        var finished = await Task.WhenAny(done.Task, Task.Delay(TimeSpan.FromSeconds(30), ct)).ConfigureAwait(false) == done.Task;
        var seconds = watch.Elapsed.TotalSeconds;
        await readers.CancelAsync().ConfigureAwait(false);
        await CloseAllAsync(clients).ConfigureAwait(false);
        await Task.WhenAll(readTasks).ConfigureAwait(false);
        var missing = total - seen.Sum(s => s.Count(x => x));
        return new()
        {
            ["scenario"] = "messages",
            ["pairs"] = pairs,
            ["messages"] = total,
            ["errors"] = errors + (finished ? 0 : 1),
            ["missing"] = missing,
            ["duplicates"] = duplicates,
            ["out_of_order"] = outOfOrder,
            ["seconds"] = Math.Round(seconds, 3),
            ["messages_per_second"] = Math.Round(Interlocked.Read(ref delivered) / seconds, 0),
            ["p50_ms"] = Math.Round(latency.Percentile(50) / 1000, 2),
            ["p99_ms"] = Math.Round(latency.Percentile(99) / 1000, 2),
            ["p999_ms"] = Math.Round(latency.Percentile(99.9) / 1000, 2),
        };
    }

    /// <summary>Accounts <paramref name="first"/>.. log in and stay idle; the server's RSS grows by what it keeps per session.</summary>
    public static async Task<Dictionary<string, object>> IdleAsync(Target target, int count, int concurrency, int pid, int hold, CancellationToken ct, int first = 1)
    {
        Progress($"idle sessions: {count} from account {first}, server pid {pid}");
        var before = Rss(pid);
        var (clients, _, errors, seconds) = await LoginManyAsync(target, first, count, concurrency, presence: true, ct).ConfigureAwait(false);
        var drains = clients.Where(c => c is not null).Select(c => Task.Run(() => DrainAsync(c!, ct), ct)).ToArray();
        await Task.Delay(TimeSpan.FromSeconds(5), ct).ConfigureAwait(false);
        var after = Rss(pid);
        if (hold > 0)
        {
            Progress($"holding {count - errors} sessions for {hold} s");
            await Task.Delay(TimeSpan.FromSeconds(hold), ct).ConfigureAwait(false);
        }

        var connected = count - errors;
        await CloseAllAsync(clients).ConfigureAwait(false);
        await Task.WhenAll(drains).ConfigureAwait(false);
        return new()
        {
            ["scenario"] = "idle",
            ["count"] = count,
            ["errors"] = errors,
            ["sessions"] = connected,
            ["login_seconds"] = Math.Round(seconds, 2),
            ["rss_before_mib"] = Math.Round(before / 1048576.0, 1),
            ["rss_after_mib"] = Math.Round(after / 1048576.0, 1),
            ["kib_per_session"] = connected == 0 ? 0 : Math.Round((after - before) / 1024.0 / connected, 1),
        };
    }

    /// <summary>
    /// Accounts 1..count whose rosters hold their <paramref name="roster"/> ring neighbours with subscription
    /// both (provisioned beforehand) all log in and send presence; measures until every client has seen
    /// available presence from every contact.
    /// </summary>
    public static async Task<Dictionary<string, object>> FanoutAsync(Target target, int count, int roster, int concurrency, CancellationToken ct)
    {
        Progress($"presence fan-out: {count} accounts with {roster} contacts each");
        var expected = Contacts(count, roster);
        var seenBy = Enumerable.Range(0, count).Select(_ => new ConcurrentDictionary<string, byte>(StringComparer.Ordinal)).ToArray();
        var complete = 0;
        var all = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var readers = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var clients = new BenchClient?[count];
        var readTasks = new Task[count];
        var errors = 0;
        var next = -1;
        var watch = Stopwatch.StartNew();
        async Task Worker()
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < count)
            {
                try
                {
                    var c = await BenchClient.LoginAsync(target, target.User(i + 1), "f", ct).ConfigureAwait(false);
                    clients[i] = c;
                    var index = i;
                    readTasks[i] = Task.Run(
                        async () =>
                        {
                            try
                            {
                                while (await c.ReadAsync(readers.Token).ConfigureAwait(false) is { } e)
                                {
                                    if (e.Name != "presence" || e.GetAttribute("type") is not null || e.GetAttribute("from") is not { } from)
                                    {
                                        continue;
                                    }

                                    var bare = from.Split('/')[0].Split('@')[0];
                                    if (expected[index].Contains(bare) && seenBy[index].TryAdd(bare, 0) && seenBy[index].Count == expected[index].Count &&
                                        Interlocked.Increment(ref complete) == count)
                                    {
                                        all.TrySetResult();
                                    }
                                }
                            }
                            catch (Exception ex) when (ex is OperationCanceledException or IOException or ObjectDisposedException or InvalidOperationException or System.Xml.XmlException or Xmpp.Core.Stanzas.XmppStreamException)
                            {
                                // Stopped.
                            }
                        },
                        ct);
                    await c.SendAsync("<iq type='get' id='r'><query xmlns='jabber:iq:roster'/></iq><presence/>", ct).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is not OperationCanceledException || !ct.IsCancellationRequested)
                {
                    Interlocked.Increment(ref errors);
                    Progress($"fan-out login {i + 1} failed: {ex.Message}");
                }
            }
        }

        await Task.WhenAll(Enumerable.Range(0, Math.Min(concurrency, count)).Select(_ => Task.Run(Worker, ct))).ConfigureAwait(false);
        var loginSeconds = watch.Elapsed.TotalSeconds;
        var finished = await Task.WhenAny(all.Task, Task.Delay(TimeSpan.FromSeconds(60), ct)).ConfigureAwait(false) == all.Task;
        var seconds = watch.Elapsed.TotalSeconds;
        var seenTotal = seenBy.Sum(s => (long)s.Count);
        await readers.CancelAsync().ConfigureAwait(false);
        await CloseAllAsync(clients).ConfigureAwait(false);
        await Task.WhenAll(readTasks.Where(t => t is not null)).ConfigureAwait(false);
        return new()
        {
            ["scenario"] = "fanout",
            ["count"] = count,
            ["roster"] = roster,
            ["errors"] = errors + (finished ? 0 : 1),
            ["presences_expected"] = (long)count * roster,
            ["presences_seen"] = seenTotal,
            ["login_seconds"] = Math.Round(loginSeconds, 2),
            ["seconds"] = Math.Round(seconds, 3),
        };
    }

    /// <summary>
    /// Group chat (XEP-0045): <paramref name="rooms"/> rooms of <paramref name="occupants"/> occupants each on
    /// <paramref name="service"/>. The first occupant creates its room (an instant room, as clients do), the
    /// others join without history; then every occupant sends <paramref name="messages"/> groupchat messages,
    /// at most <paramref name="window"/> of its own not yet echoed back, and each is delivered to every occupant
    /// of the room (the sender included). Reports deliveries per second, latency from send to each delivery,
    /// and missing and duplicated deliveries (both must be 0).
    /// </summary>
    public static async Task<Dictionary<string, object>> MucAsync(Target target, int rooms, int occupants, int messages, int window, string service, CancellationToken ct)
    {
        Progress($"muc: {rooms} rooms x {occupants} occupants on {service}, {messages} messages each, window {window}");
        var n = rooms * occupants;
        var (clients, _, errors, _) = await LoginManyAsync(target, 1, n, 50, presence: true, ct).ConfigureAwait(false);
        if (errors > 0)
        {
            await CloseAllAsync(clients).ConfigureAwait(false);
            return new() { ["scenario"] = "muc", ["errors"] = errors };
        }

        string Room(int i) => $"bench{i / occupants}@{service}";
        var joinWatch = Stopwatch.StartNew();
        async Task JoinAsync(int i, bool create)
        {
            var c = clients[i]!;
            var me = Room(i) + "/u" + i.ToString(CultureInfo.InvariantCulture);
            await c.SendAsync($"<presence to='{me}'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>", ct).ConfigureAwait(false);
            while (await c.ReadAsync(ct).ConfigureAwait(false) is { } e)
            {
                if (e.Name == "presence" && e.GetAttribute("from") == me)
                {
                    if (e.GetAttribute("type") == "error")
                    {
                        throw new InvalidOperationException($"joining {me} failed: {e}");
                    }

                    break;
                }
            }

            if (create)
            {
                await c.SendAsync($"<iq type='set' id='cfg' to='{Room(i)}'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'/></query></iq>", ct).ConfigureAwait(false);
                while (await c.ReadAsync(ct).ConfigureAwait(false) is { } e && !(e.Name == "iq" && e.GetAttribute("id") == "cfg"))
                {
                }
            }
        }

        try
        {
            await Task.WhenAll(Enumerable.Range(0, rooms).Select(r => JoinAsync(r * occupants, create: true))).ConfigureAwait(false);
            await Task.WhenAll(Enumerable.Range(0, n).Where(i => i % occupants != 0).Select(i => JoinAsync(i, create: false))).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is InvalidOperationException or IOException)
        {
            Progress(ex.Message);
            await CloseAllAsync(clients).ConfigureAwait(false);
            return new() { ["scenario"] = "muc", ["errors"] = 1 };
        }

        var joinSeconds = joinWatch.Elapsed.TotalSeconds;
        await Task.Delay(500, ct).ConfigureAwait(false);
        var latency = new Histogram();
        var seen = Enumerable.Range(0, n).Select(_ => new bool[occupants * messages]).ToArray();
        var credits = Enumerable.Range(0, n).Select(_ => new SemaphoreSlim(window, window)).ToArray();
        var duplicates = 0L;
        long delivered = 0;
        var total = (long)n * occupants * messages;
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var readers = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var readTasks = Enumerable.Range(0, n).Select(i => Task.Run(async () =>
        {
            var c = clients[i]!;
            var first = i / occupants * occupants;
            try
            {
                while (await c.ReadAsync(readers.Token).ConfigureAwait(false) is { } e)
                {
                    if (e.Name != "message" || e.GetAttribute("type") != "groupchat" || e.ChildText("body", "jabber:client") is not { } body)
                    {
                        continue;
                    }

                    var parts = body.Split(':');
                    var sender = int.Parse(parts[0], CultureInfo.InvariantCulture);
                    var seq = int.Parse(parts[1], CultureInfo.InvariantCulture);
                    latency.Record((long)Micros(Stopwatch.GetTimestamp() - long.Parse(parts[2], CultureInfo.InvariantCulture)));
                    var slot = ((sender - first) * messages) + seq;
                    if (seen[i][slot])
                    {
                        Interlocked.Increment(ref duplicates);
                    }

                    seen[i][slot] = true;
                    if (sender == i)
                    {
                        credits[i].Release();
                    }

                    if (Interlocked.Increment(ref delivered) == total)
                    {
                        done.TrySetResult();
                    }
                }
            }
            catch (Exception ex) when (ex is OperationCanceledException or IOException or ObjectDisposedException or InvalidOperationException or System.Xml.XmlException or Xmpp.Core.Stanzas.XmppStreamException)
            {
                // Stopped.
            }
        }, ct)).ToArray();

        var watch = Stopwatch.StartNew();
        var sendTasks = Enumerable.Range(0, n).Select(i => Task.Run(async () =>
        {
            var c = clients[i]!;
            var room = Room(i);
            for (var seq = 0; seq < messages; seq++)
            {
                await credits[i].WaitAsync(ct).ConfigureAwait(false);
                var body = i.ToString(CultureInfo.InvariantCulture) + ":" + seq.ToString(CultureInfo.InvariantCulture) + ":" + Stopwatch.GetTimestamp().ToString(CultureInfo.InvariantCulture);
                await c.SendAsync($"<message to='{room}' type='groupchat'><body>{body}</body></message>", ct).ConfigureAwait(false);
            }
        }, ct)).ToArray();
        await Task.WhenAll(sendTasks).ConfigureAwait(false);
        var finished = await Task.WhenAny(done.Task, Task.Delay(TimeSpan.FromSeconds(60), ct)).ConfigureAwait(false) == done.Task;
        var seconds = watch.Elapsed.TotalSeconds;
        await readers.CancelAsync().ConfigureAwait(false);
        await CloseAllAsync(clients).ConfigureAwait(false);
        await Task.WhenAll(readTasks).ConfigureAwait(false);
        var missing = total - seen.Sum(x => (long)x.Count(b => b));
        return new()
        {
            ["scenario"] = "muc",
            ["rooms"] = rooms,
            ["occupants"] = occupants,
            ["messages"] = (long)n * messages,
            ["deliveries"] = total,
            ["errors"] = errors + (finished ? 0 : 1),
            ["missing"] = missing,
            ["duplicates"] = duplicates,
            ["join_seconds"] = Math.Round(joinSeconds, 2),
            ["seconds"] = Math.Round(seconds, 3),
            ["deliveries_per_second"] = Math.Round(Interlocked.Read(ref delivered) / seconds, 0),
            ["p50_ms"] = Math.Round(latency.Percentile(50) / 1000, 2),
            ["p99_ms"] = Math.Round(latency.Percentile(99) / 1000, 2),
        };
    }

    /// <summary>
    /// Offline storage: <paramref name="senders"/> online accounts send <paramref name="perRecipient"/> chat
    /// messages to each of <paramref name="recipients"/> offline accounts; the store phase ends when every
    /// sender's ping, sent after its messages, is answered (the server has handled everything before it). Then
    /// the recipients log in and send presence; the fetch phase ends when each has received all of its messages.
    /// Reports both rates and the missing and duplicated counts (both must be 0).
    /// </summary>
    public static async Task<Dictionary<string, object>> OfflineAsync(Target target, int senders, int recipients, int perRecipient, CancellationToken ct)
    {
        Progress($"offline storage: {senders} senders, {recipients} offline recipients x {perRecipient} messages");
        var (senderClients, _, senderErrors, _) = await LoginManyAsync(target, 1, senders, 50, presence: true, ct).ConfigureAwait(false);
        var total = (long)recipients * perRecipient;
        var watch = Stopwatch.StartNew();
        await Task.WhenAll(senderClients.Select(async (c, s) =>
        {
            if (c is null)
            {
                return;
            }

            var batch = new System.Text.StringBuilder();
            for (var r = s; r < recipients; r += senders)
            {
                var to = target.User(senders + 1 + r) + "@" + target.Domain;
                for (var k = 0; k < perRecipient; k++)
                {
                    batch.Append("<message type='chat' to='").Append(to).Append("'><body>off ").Append(r).Append(' ').Append(k).Append("</body></message>");
                    if (batch.Length > 16 * 1024)
                    {
                        await c.SendAsync(batch.ToString(), ct).ConfigureAwait(false);
                        batch.Clear();
                    }
                }
            }

            batch.Append("<iq type='get' id='stored'><ping xmlns='urn:xmpp:ping'/></iq>");
            await c.SendAsync(batch.ToString(), ct).ConfigureAwait(false);
            while (await c.ReadAsync(ct).ConfigureAwait(false) is { } e && !(e.Name == "iq" && e.GetAttribute("id") == "stored"))
            {
            }
        })).ConfigureAwait(false);
        var storeSeconds = watch.Elapsed.TotalSeconds;
        await CloseAllAsync(senderClients).ConfigureAwait(false);

        var received = new long[recipients];
        var duplicates = 0L;
        var done = 0;
        var all = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var readers = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var clients = new BenchClient?[recipients];
        var readTasks = new List<Task>();
        var next = -1;
        var errors = senderErrors;
        watch.Restart();
        async Task Worker()
        {
            int r;
            while ((r = Interlocked.Increment(ref next)) < recipients)
            {
                try
                {
                    var c = await BenchClient.LoginAsync(target, target.User(senders + 1 + r), "o", ct).ConfigureAwait(false);
                    clients[r] = c;
                    var index = r;
                    var seen = new HashSet<int>();
                    lock (readTasks)
                    {
                        readTasks.Add(Task.Run(
                            async () =>
                            {
                                try
                                {
                                    while (await c.ReadAsync(readers.Token).ConfigureAwait(false) is { } e)
                                    {
                                        if (e.Name != "message" || e.ChildText("body", Xmpp.Core.Ns.Client) is not { } body || !body.StartsWith("off ", StringComparison.Ordinal))
                                        {
                                            continue;
                                        }

                                        var parts = body.Split(' ');
                                        if (!seen.Add(int.Parse(parts[2], CultureInfo.InvariantCulture)))
                                        {
                                            Interlocked.Increment(ref duplicates);
                                            continue;
                                        }

                                        if (Interlocked.Increment(ref received[index]) == perRecipient && Interlocked.Increment(ref done) == recipients)
                                        {
                                            all.TrySetResult();
                                        }
                                    }
                                }
                                catch (Exception ex) when (ex is OperationCanceledException or IOException or ObjectDisposedException or InvalidOperationException or Xmpp.Core.Stanzas.XmppStreamException)
                                {
                                    // Stopped.
                                }
                            },
                            ct));
                    }

                    await c.SendAsync("<presence/>", ct).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is not OperationCanceledException || !ct.IsCancellationRequested)
                {
                    Interlocked.Increment(ref errors);
                    Progress($"offline recipient {r} failed: {ex.Message}");
                }
            }
        }

        await Task.WhenAll(Enumerable.Range(0, Math.Min(50, recipients)).Select(_ => Task.Run(Worker, ct))).ConfigureAwait(false);
        var finished = await Task.WhenAny(all.Task, Task.Delay(TimeSpan.FromSeconds(60), ct)).ConfigureAwait(false) == all.Task;
        var fetchSeconds = watch.Elapsed.TotalSeconds;
        await readers.CancelAsync().ConfigureAwait(false);
        await CloseAllAsync(clients).ConfigureAwait(false);
        await Task.WhenAll(readTasks).ConfigureAwait(false);
        var delivered = received.Sum();
        return new()
        {
            ["scenario"] = "offline",
            ["senders"] = senders,
            ["recipients"] = recipients,
            ["messages"] = total,
            ["errors"] = errors + (finished ? 0 : 1),
            ["missing"] = total - delivered,
            ["duplicates"] = duplicates,
            ["store_seconds"] = Math.Round(storeSeconds, 3),
            ["stored_per_second"] = Math.Round(total / storeSeconds, 0),
            ["fetch_seconds"] = Math.Round(fetchSeconds, 3),
            ["fetched_per_second"] = Math.Round(delivered / fetchSeconds, 0),
        };
    }

    /// <summary>Ring neighbours: account i (0-based) has the <paramref name="roster"/> accounts around it.</summary>
    public static HashSet<string>[] Contacts(int count, int roster) =>
        Enumerable.Range(0, count).Select(i => Enumerable.Range(1, roster / 2)
            .SelectMany(d => new[] { (i + d) % count, (i - d + count) % count })
            .Where(j => j != i)
            .Select(j => "fan" + (j + 1).ToString(CultureInfo.InvariantCulture))
            .ToHashSet(StringComparer.Ordinal)).ToArray();

    private static long Rss(int pid)
    {
        if (pid <= 0)
        {
            return 0;
        }

        foreach (var line in File.ReadLines($"/proc/{pid}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
            }
        }

        return 0;
    }
}
