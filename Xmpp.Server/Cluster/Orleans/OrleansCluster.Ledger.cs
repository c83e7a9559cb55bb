using Npgsql;
using Orleans;
using Orleans.Runtime;
using Xmpp.Core.Addressing;
using Xmpp.Core.Xml;

namespace Xmpp.Server.Cluster.Orleans;

/// <summary>Cluster mode: the crash ledger of the sessions bound on each node, and the clean-up after a dead node.</summary>
public sealed partial class OrleansCluster
{
    // ---- the crash ledger: the sessions bound on each silo ---------------------------------------------

    /// <summary>Writes binds and unbinds to cluster_sessions in batches (one transaction per batch), in order.</summary>
    private async Task WriteLedgerAsync(CancellationToken ct)
    {
        var reader = _ledger.Reader;
        while (true)
        {
            try
            {
                if (!await reader.WaitToReadAsync(ct).ConfigureAwait(false))
                {
                    return;
                }
            }
            catch (OperationCanceledException)
            {
                // Stopping: what is queued is still written below, once.
            }

            var last = new Dictionary<string, bool>(StringComparer.Ordinal);
            while (reader.TryRead(out var change))
            {
                last[change.Jid] = change.Bound;
            }

            if (last.Count > 0)
            {
                try
                {
                    await using var connection = await _db.OpenConnectionAsync(CancellationToken.None).ConfigureAwait(false);
                    await using var batch = new NpgsqlBatch(connection);
                    var bound = last.Where(p => p.Value).Select(p => p.Key).ToArray();
                    var unbound = last.Where(p => !p.Value).Select(p => p.Key).ToArray();
                    if (bound.Length > 0)
                    {
                        batch.BatchCommands.Add(new NpgsqlBatchCommand("INSERT INTO cluster_sessions (silo, jid) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING") { Parameters = { new() { Value = _siloKey }, new() { Value = bound } } });
                    }

                    if (unbound.Length > 0)
                    {
                        batch.BatchCommands.Add(new NpgsqlBatchCommand("DELETE FROM cluster_sessions WHERE silo = $1 AND jid = ANY($2::text[])") { Parameters = { new() { Value = _siloKey }, new() { Value = unbound } } });
                    }

                    await batch.ExecuteNonQueryAsync(CancellationToken.None).ConfigureAwait(false);
                }
                catch (NpgsqlException ex)
                {
                    _log.Warn("Cannot write {Count} session change(s) to the cluster ledger: {Reason}", last.Count, ex.Message);
                }
            }

            if (ct.IsCancellationRequested)
            {
                return;
            }
        }
    }

    /// <summary>
    /// What a dead node left behind (README, "Running a cluster"): every node removes the node's sessions from
    /// the rooms it runs (status 333); the first active member in address order sends the unavailable presence
    /// the dead node owed its users' contacts, through each account's home, and marks the node's rows cleaned.
    /// Runs when this node joins and whenever the membership changes.
    /// </summary>
    private async Task CleanUpAsync(CancellationToken ct)
    {
        // One clean-up at a time; a change that arrives meanwhile makes the running one look again.
        Interlocked.Exchange(ref _cleanupAgain, 1);
        if (!await _cleanupGate.WaitAsync(0, ct).ConfigureAwait(false))
        {
            return;
        }

        try
        {
            while (Interlocked.Exchange(ref _cleanupAgain, 0) == 1)
            {
                await CleanUpOnceAsync(ct).ConfigureAwait(false);
            }
        }
        finally
        {
            _cleanupGate.Release();
        }
    }

    private int _cleanupAgain;

    private async Task CleanUpOnceAsync(CancellationToken ct)
    {
        try
        {
            var snapshot = _membership!.CurrentSnapshot;
            var live = snapshot.Members.Values.Where(m => m.Status != SiloStatus.Dead).Select(m => m.SiloAddress.ToParsableString()).ToHashSet(StringComparer.Ordinal);
            var elected = snapshot.Members.Values.Where(m => m.Status == SiloStatus.Active).Select(m => m.SiloAddress.ToParsableString()).Order(StringComparer.Ordinal).FirstOrDefault() == _siloKey;
            var rows = new List<(string Silo, string Jid, bool Cleaned)>();
            await using (var connection = await _db.OpenConnectionAsync(ct).ConfigureAwait(false))
            {
                await using var cmd = new NpgsqlCommand("SELECT silo, jid, cleaned_at IS NOT NULL FROM cluster_sessions WHERE cleaned_at IS NULL OR cleaned_at > now() - interval '10 minutes'", connection);
                await using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
                while (await reader.ReadAsync(ct).ConfigureAwait(false))
                {
                    rows.Add((reader.GetString(0), reader.GetString(1), reader.GetBoolean(2)));
                }
            }

            foreach (var dead in rows.Where(r => !live.Contains(r.Silo) && !_cleaned.ContainsKey(r.Silo)).GroupBy(r => r.Silo))
            {
                var sessions = dead.Select(r => Jid.Parse(r.Jid)).ToHashSet();
                _log.Warn("Node {Silo} is gone with {Count} session(s): cleaning up after it{Role}", dead.Key, sessions.Count, elected ? " (contacts are told by this node)" : string.Empty);
                await _server!.Modules.SessionsLostAsync(sessions, ct).ConfigureAwait(false);
                if (elected && dead.Any(r => !r.Cleaned))
                {
                    foreach (var account in sessions.GroupBy(j => j.Bare))
                    {
                        try
                        {
                            await Grain(account.Key).LostAsync([.. account.Select(j => j.ToString())]).WaitAsync(ct).ConfigureAwait(false);
                        }
                        catch (Exception ex) when (ex is OrleansException or TimeoutException)
                        {
                            _log.Warn("Telling the contacts of {Account} it is gone failed: {Reason}", account.Key, ex.Message);
                        }
                    }

                    await using var connection = await _db.OpenConnectionAsync(ct).ConfigureAwait(false);
                    await using var mark = new NpgsqlCommand("UPDATE cluster_sessions SET cleaned_at = now() WHERE silo = $1 AND cleaned_at IS NULL", connection) { Parameters = { new() { Value = dead.Key } } };
                    await mark.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
                }

                _cleaned[dead.Key] = 0;
            }

            if (elected)
            {
                await using var connection = await _db.OpenConnectionAsync(ct).ConfigureAwait(false);
                await using var purge = new NpgsqlCommand("DELETE FROM cluster_sessions WHERE cleaned_at < now() - interval '10 minutes'; DELETE FROM cluster_parked WHERE parked_at < now() - interval '1 day'", connection);
                await purge.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }
        catch (NpgsqlException ex)
        {
            _log.Warn("Cluster clean-up failed (tried again at the next membership change): {Reason}", ex.Message);
        }
    }

    /// <summary>
    /// On the account's home: sessions of it died with their node. Each contact with a subscription to its presence
    /// gets unavailable presence from each (RFC 6121 §4.5.2, which the dead node can no longer send).
    /// </summary>
    internal async Task LostHereAsync(Jid bare, string[] sessions)
    {
        var roster = await _server!.Modules.Rosters.GetAsync(bare, _stopping.Token).ConfigureAwait(false);
        var told = 0;
        foreach (var text in sessions)
        {
            var full = Jid.Parse(text);
            if (_sessions!.Find(full) is not null)
            {
                continue; // bound again here since: it is alive
            }

            foreach (var contact in roster.SubscriberJids)
            {
                var unavailable = new Element("presence", Core.Ns.Client)
                    .SetAttribute("type", "unavailable")
                    .SetAttribute("from", full.ToString())
                    .SetAttribute("to", contact.ToString());
                await _router!.RouteParsedAsync(unavailable, full, contact, _stopping.Token).ConfigureAwait(false);
                told++;
            }
        }

        _log.Info("{Account}: {Sessions} session(s) lost with their node; {Told} unavailable presence(s) sent to contacts", bare, sessions.Length, told);
    }
}
