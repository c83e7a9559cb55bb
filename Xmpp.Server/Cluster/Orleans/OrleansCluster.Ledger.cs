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

    /// <summary>
    /// Writes binds and unbinds to cluster_sessions, and directed presence to cluster_directed, in batches (one
    /// transaction per batch), in order: what changed several times in a batch is written once, as it ended.
    /// </summary>
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

            var sessions = new Dictionary<string, (bool On, bool Edge, string? Via)>(StringComparer.Ordinal);
            var directed = new Dictionary<string, Dictionary<string, bool>>(StringComparer.Ordinal);
            var ended = new HashSet<string>(StringComparer.Ordinal);
            while (reader.TryRead(out var change))
            {
                if (change.Target is null)
                {
                    sessions[change.Jid] = (change.On, change.Edge, change.Via);
                    if (!change.On)
                    {
                        // The session's directed presence ends with it.
                        ended.Add(change.Jid);
                        directed.Remove(change.Jid);
                    }
                }
                else
                {
                    (directed.TryGetValue(change.Jid, out var targets) ? targets : directed[change.Jid] = new(StringComparer.Ordinal))[change.Target] = change.On;
                }
            }

            if (sessions.Count > 0 || directed.Count > 0)
            {
                try
                {
                    await WriteLedgerBatchAsync(sessions, directed, ended).ConfigureAwait(false);
                }
                catch (NpgsqlException ex)
                {
                    _log.Warn("Cannot write {Count} session change(s) to the cluster ledger: {Reason}", sessions.Count + directed.Count, ex.Message);
                }
            }

            if (ct.IsCancellationRequested)
            {
                return;
            }
        }
    }

    private async Task WriteLedgerBatchAsync(Dictionary<string, (bool On, bool Edge, string? Via)> sessions, Dictionary<string, Dictionary<string, bool>> directed, HashSet<string> ended)
    {
        await using var connection = await _db.OpenConnectionAsync(CancellationToken.None).ConfigureAwait(false);
        await using var batch = new NpgsqlBatch(connection);
        // Each array is one parameter ($3, $4): not a 'params object[]', which would take a string[] for the list itself.
        void Add(string sql, string[] jids, object? third = null, object? fourth = null)
        {
            var command = new NpgsqlBatchCommand(sql) { Parameters = { new() { Value = _siloKey }, new() { Value = jids } } };
            foreach (var value in new[] { third, fourth }.OfType<object>())
            {
                command.Parameters.Add(new NpgsqlParameter { Value = value });
            }

            batch.BatchCommands.Add(command);
        }

        if (ended.Count > 0)
        {
            Add("DELETE FROM cluster_directed WHERE silo = $1 AND jid = ANY($2::text[])", ended.ToArray());
        }

        var bound = sessions.Where(p => p.Value.On).ToArray();
        var unbound = sessions.Where(p => !p.Value.On).Select(p => p.Key).ToArray();
        if (bound.Length > 0)
        {
            Add(
                "INSERT INTO cluster_sessions (silo, jid, edge, via) SELECT $1, j, e, v FROM unnest($2::text[], $3::boolean[], $4::text[]) AS x(j, e, v) ON CONFLICT (silo, jid) DO UPDATE SET edge = excluded.edge, via = excluded.via",
                bound.Select(p => p.Key).ToArray(),
                bound.Select(p => p.Value.Edge).ToArray(),
                bound.Select(p => p.Value.Via).ToArray());
        }

        if (unbound.Length > 0)
        {
            Add("DELETE FROM cluster_sessions WHERE silo = $1 AND jid = ANY($2::text[])", unbound);
        }

        var sent = directed.SelectMany(d => d.Value.Where(t => t.Value).Select(t => (d.Key, t.Key))).ToArray();
        var withdrawn = directed.SelectMany(d => d.Value.Where(t => !t.Value).Select(t => (d.Key, t.Key))).ToArray();
        if (sent.Length > 0)
        {
            Add("INSERT INTO cluster_directed (silo, jid, target) SELECT $1, j, t FROM unnest($2::text[], $3::text[]) AS x(j, t) ON CONFLICT DO NOTHING", sent.Select(x => x.Item1).ToArray(), sent.Select(x => x.Item2).ToArray());
        }

        if (withdrawn.Length > 0)
        {
            Add("DELETE FROM cluster_directed d USING unnest($2::text[], $3::text[]) AS x(j, t) WHERE d.silo = $1 AND d.jid = x.j AND d.target = x.t", withdrawn.Select(x => x.Item1).ToArray(), withdrawn.Select(x => x.Item2).ToArray());
        }

        await batch.ExecuteNonQueryAsync(CancellationToken.None).ConfigureAwait(false);
    }

    /// <summary>
    /// What a dead node left behind (README, "Running a cluster"): every node removes the node's sessions from
    /// the rooms it runs (status 333), those bound there and those whose connections were there; the first active member in address order sends the unavailable presence
    /// the dead node owed its users' contacts, through each account's home, marks the node's rows cleaned, and
    /// takes over the rooms the dead node ran from their checkpoints.
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

    /// <summary>How many of a dead node's accounts have their contacts told at once (each call may activate the account's home here).</summary>
    private const int LostCallsAtOnce = 64;

    private async Task CleanUpOnceAsync(CancellationToken ct)
    {
        try
        {
            var snapshot = _membership!.CurrentSnapshot;
            var live = snapshot.Members.Values.Where(m => m.Status != SiloStatus.Dead).Select(m => m.SiloAddress.ToParsableString()).ToHashSet(StringComparer.Ordinal);
            var elected = snapshot.Members.Values.Where(m => m.Status == SiloStatus.Active).Select(m => m.SiloAddress.ToParsableString()).Order(StringComparer.Ordinal).FirstOrDefault() == _siloKey;
            var rows = new List<(string Silo, string Jid, bool Cleaned, bool Edge, string? Via)>();
            await using (var connection = await _db.OpenConnectionAsync(ct).ConfigureAwait(false))
            {
                await using var cmd = new NpgsqlCommand("SELECT silo, jid, cleaned_at IS NOT NULL, edge, via FROM cluster_sessions WHERE cleaned_at IS NULL OR cleaned_at > now() - interval '10 minutes'", connection);
                await using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
                while (await reader.ReadAsync(ct).ConfigureAwait(false))
                {
                    rows.Add((reader.GetString(0), reader.GetString(1), reader.GetBoolean(2), reader.GetBoolean(3), reader.IsDBNull(4) ? null : reader.GetString(4)));
                }
            }

            // A session bound again on a live node under the same address (its client logged in again with its
            // resource before this clean-up) is alive: its rooms keep it, and its contacts saw it come back. Not the
            // home's row of the dead node's own edge session (its proxy, until the home has ended it): that one died.
            var alive = rows.Where(r => live.Contains(r.Silo)).ToLookup(r => r.Jid, r => r.Via, StringComparer.Ordinal);
            bool Alive((string Silo, string Jid, bool Cleaned, bool Edge, string? Via) d) => alive[d.Jid].Any(via => !d.Edge || via != d.Silo);
            foreach (var all in rows.Where(r => !live.Contains(r.Silo) && !_cleaned.ContainsKey(r.Silo)).GroupBy(r => r.Silo))
            {
                var dead = all.Where(r => !Alive(r)).ToList();
                var sessions = dead.Select(r => Jid.Parse(r.Jid)).ToHashSet();
                _log.Warn("Node {Silo} is gone with {Count} session(s): cleaning up after it{Role}", all.Key, sessions.Count, elected ? " (contacts are told by this node)" : string.Empty);
                // The rooms and the contacts are told at the same time: a room's leaves must not hold up the contacts'.
                var rooms = _server!.Modules.SessionsLostAsync(sessions, ct);
                if (elected && all.Any(r => !r.Cleaned))
                {
                    var directed = await DirectedAsync(all.Key, ct).ConfigureAwait(false);
                    // A session whose connection was there but whose account is homed on a live node: its home ended
                    // it and told its contacts (see EdgesOfDeadNode); here only the rooms learn it, above.
                    // The accounts homed on the dead node come back on a live one at this call, but only once the
                    // directory has dropped the dead node's entries: until then Orleans cancels the call ("Failed to
                    // address message"). So each account's call is tried again as a stanza to it would be, never
                    // given up at the first failure, and many go at once (one at a time, a node of 20,000 sessions
                    // would take many minutes).
                    await Parallel.ForEachAsync(
                        dead.Where(r => !r.Edge).Select(r => Jid.Parse(r.Jid)).GroupBy(j => j.Bare),
                        new ParallelOptions { MaxDegreeOfParallelism = LostCallsAtOnce, CancellationToken = ct },
                        async (account, token) =>
                        {
                            var lost = account.ToDictionary(j => j.ToString(), j => directed.GetValueOrDefault(j.ToString()) ?? [], StringComparer.Ordinal);
                            var (told, _, failure) = await CallHomeAsync(account.Key, async grain =>
                            {
                                await grain.LostAsync(lost).ConfigureAwait(false);
                                return true;
                            }, token).ConfigureAwait(false);
                            if (!told)
                            {
                                _log.Error("Telling the contacts of {Account} it is gone failed: its home did not answer in {Seconds:0} s ({Reason})", account.Key, ForwardPatience.TotalSeconds, failure);
                            }
                        }).ConfigureAwait(false);

                    await using var connection = await _db.OpenConnectionAsync(ct).ConfigureAwait(false);
                    await using var mark = new NpgsqlBatch(connection)
                    {
                        BatchCommands =
                        {
                            new NpgsqlBatchCommand("UPDATE cluster_sessions SET cleaned_at = now() WHERE silo = $1 AND cleaned_at IS NULL") { Parameters = { new() { Value = all.Key } } },
                            new NpgsqlBatchCommand("DELETE FROM cluster_directed WHERE silo = $1") { Parameters = { new() { Value = all.Key } } },
                        },
                    };
                    await mark.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
                }

                await rooms.ConfigureAwait(false);
                _cleaned[all.Key] = 0;
            }

            if (elected)
            {
                await RecoverCheckpointsAsync([.. live], ct).ConfigureAwait(false);
                await using var connection = await _db.OpenConnectionAsync(ct).ConfigureAwait(false);
                await using var purge = new NpgsqlCommand("DELETE FROM cluster_sessions WHERE cleaned_at < now() - interval '10 minutes'; DELETE FROM cluster_parked WHERE parked_at < now() - interval '1 day'; DELETE FROM cluster_draining WHERE since < now() - interval '1 day'", connection);
                await purge.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // Stopping.
        }
        catch (NpgsqlException ex)
        {
            _log.Warn("Cluster clean-up failed (tried again at the next membership change): {Reason}", ex.Message);
        }
        catch (Exception ex)
        {
            // Not "stopping": an Orleans call cancelled by a membership change, or a bug. Logged, never silent.
            _log.Error(ex, "Cluster clean-up failed (tried again at the next membership change)");
        }
    }

    /// <summary>The directed presence the dead node's sessions had sent, by session.</summary>
    private async Task<Dictionary<string, string[]>> DirectedAsync(string silo, CancellationToken ct)
    {
        var directed = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        await using var connection = await _db.OpenConnectionAsync(ct).ConfigureAwait(false);
        await using var cmd = new NpgsqlCommand("SELECT jid, target FROM cluster_directed WHERE silo = $1", connection) { Parameters = { new() { Value = silo } } };
        await using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await reader.ReadAsync(ct).ConfigureAwait(false))
        {
            var jid = reader.GetString(0);
            (directed.TryGetValue(jid, out var targets) ? targets : directed[jid] = []).Add(reader.GetString(1));
        }

        return directed.ToDictionary(d => d.Key, d => d.Value.ToArray(), StringComparer.Ordinal);
    }

    /// <summary>
    /// On the account's home: sessions of it died with their node. Each contact with a subscription to its presence,
    /// and each entity it had sent directed presence to, gets unavailable presence from each (RFC 6121 §4.5.2 and
    /// §4.6.3, which the dead node can no longer send). Rooms of this server's services are left out: they learn it
    /// through <see cref="Modules.ModuleHost.SessionsLostAsync"/> and remove the occupant with 333.
    /// </summary>
    internal async Task LostHereAsync(Jid bare, Dictionary<string, string[]> sessions)
    {
        var roster = await _server!.Modules.Rosters.GetAsync(bare, _stopping.Token).ConfigureAwait(false);
        var told = 0;
        foreach (var (text, directed) in sessions)
        {
            var full = Jid.Parse(text);
            if (_sessions!.Find(full) is not null)
            {
                continue; // bound again here since: it is alive
            }

            var targets = roster.SubscriberJids.ToHashSet();
            foreach (var target in directed)
            {
                if (Jid.TryParse(target, out var jid) && !_server.Modules.ServiceDomains.Contains(jid.Domain))
                {
                    targets.Add(jid);
                }
            }

            foreach (var contact in targets)
            {
                var unavailable = new Element("presence", Core.Ns.Client)
                    .SetAttribute("type", "unavailable")
                    .SetAttribute("from", full.ToString())
                    .SetAttribute("to", contact.ToString());
                await _router!.RouteParsedAsync(unavailable, full, contact, _stopping.Token).ConfigureAwait(false);
                told++;
            }
        }

        _log.Info("{Account}: {Sessions} session(s) lost with their node; {Told} unavailable presence(s) sent to contacts and directed presence targets", bare, sessions.Count, told);
    }
}

/// <summary>
/// A change to the crash ledger: a session bound or unbound (no target), or its directed presence to a target sent or
/// withdrawn. <paramref name="Edge"/>: the session's connection is on this node and it is bound on its account's home
/// (another node), which tells its contacts when this node dies; the rooms learn it from this row.
/// <paramref name="Via"/>: on the home, a proxy's row names the node its connection is on (that node's death ends it;
/// it is not a new login under the same address).
/// </summary>
internal readonly record struct LedgerChange(string Jid, string? Target, bool On, bool Edge = false, string? Via = null);
