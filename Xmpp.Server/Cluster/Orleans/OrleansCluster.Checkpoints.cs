using System.Collections.Concurrent;
using System.Threading.Channels;
using Npgsql;
using Orleans;
using Orleans.Runtime;
using Xmpp.Core.Addressing;
using Xmpp.Core.Xml;

namespace Xmpp.Server.Cluster.Orleans;

/// <summary>
/// Cluster mode: checkpoints of live entities (a room with its occupants, subject and history) in cluster_checkpoints,
/// so that a node's death does not empty its rooms. The home writes an entity's checkpoint soon after it changes
/// (changes in between coalesce into one write); the node that becomes its home without a move, because the old one
/// died, takes the checkpoint over and goes on from it, and those of its occupants that died with the node leave
/// with status 333. Who is in a room is written at once (an urgent change); what else changed in the last
/// <see cref="CheckpointDelay"/> before a crash (history) is not in it.
/// </summary>
public sealed partial class OrleansCluster
{
    /// <summary>How long changes to entities are gathered before their checkpoints are written (one write per entity).</summary>
    private static readonly TimeSpan CheckpointDelay = TimeSpan.FromMilliseconds(200);

    private readonly ConcurrentDictionary<Jid, byte> _changed = new();
    private readonly Channel<bool> _checkpointWake = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite, SingleReader = true });
    private Task _checkpointWriter = Task.CompletedTask;

    /// <summary>The sessions bound on dead nodes, by the membership version they were read at (they do not change once a node is dead).</summary>
    private (MembershipVersion Version, Task<HashSet<Jid>> Sessions)? _deadSessions;
    private readonly object _deadSessionsGate = new();

    /// <summary>Completed by an urgent change: the writer stops gathering and writes.</summary>
    private TaskCompletionSource _hurry = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public void Changed(Jid entity, bool urgent)
    {
        // Already pending: its checkpoint, taken after it is picked up, will show this change too.
        if (_changed.TryAdd(entity, 0))
        {
            _checkpointWake.Writer.TryWrite(true);
        }

        if (urgent)
        {
            Volatile.Read(ref _hurry).TrySetResult();
        }
    }

    /// <summary>Whether a module checkpoints the entity: its home, activated without a move, looks for a dead node's checkpoint.</summary>
    internal bool Recovers(Jid bare) => _server?.Modules?.Parking?.Checkpoints(bare) ?? false;

    private async Task WriteCheckpointsAsync(CancellationToken ct)
    {
        try
        {
            while (await _checkpointWake.Reader.WaitToReadAsync(ct).ConfigureAwait(false))
            {
                _checkpointWake.Reader.TryRead(out _);
                var hurry = Volatile.Read(ref _hurry).Task;
                if (!hurry.IsCompleted)
                {
                    await Task.WhenAny(Task.Delay(CheckpointDelay, ct), hurry).ConfigureAwait(false);
                    ct.ThrowIfCancellationRequested();
                }

                // An urgent change from now on hurries the next round (this one takes its copies after this).
                Interlocked.Exchange(ref _hurry, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));

                // A node that was paused writes nothing before it knows it is still a member (it stops if it is not).
                await FenceAsync(ct).ConfigureAwait(false);
                await WriteCheckpointsOnceAsync().ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
            // Stopping: DisposeAsync removes this node's checkpoints.
        }
    }

    private async Task WriteCheckpointsOnceAsync()
    {
        var parking = _server?.Modules?.Parking;
        var saved = new List<(string Jid, string Snapshot)>();
        var gone = new List<string>();
        foreach (var entity in _changed.Keys)
        {
            // Taken off before the copy is made: a change from now on marks it again.
            if (!_changed.TryRemove(entity, out _))
            {
                continue;
            }

            if (_homed.ContainsKey(entity) && parking is not null && await parking.CheckpointAsync(entity).ConfigureAwait(false) is { } snapshot)
            {
                saved.Add((entity.ToString(), snapshot.ToString()));
            }
            else
            {
                gone.Add(entity.ToString());
            }
        }

        if (saved.Count == 0 && gone.Count == 0)
        {
            return;
        }

        try
        {
            await using var connection = await _db.OpenConnectionAsync(CancellationToken.None).ConfigureAwait(false);
            await using var batch = new NpgsqlBatch(connection);
            if (saved.Count > 0)
            {
                batch.BatchCommands.Add(new NpgsqlBatchCommand("INSERT INTO cluster_checkpoints (jid, silo, snapshot) SELECT j, $1, s FROM unnest($2::text[], $3::text[]) AS t(j, s) ON CONFLICT (jid) DO UPDATE SET silo = excluded.silo, snapshot = excluded.snapshot, saved_at = now()")
                {
                    Parameters = { new() { Value = _siloKey }, new() { Value = saved.Select(x => x.Jid).ToArray() }, new() { Value = saved.Select(x => x.Snapshot).ToArray() } },
                });
            }

            if (gone.Count > 0)
            {
                // Only this node's: an entity that moved on is checkpointed by its new home.
                batch.BatchCommands.Add(new NpgsqlBatchCommand("DELETE FROM cluster_checkpoints WHERE silo = $1 AND jid = ANY($2::text[])") { Parameters = { new() { Value = _siloKey }, new() { Value = gone.ToArray() } } });
            }

            await batch.ExecuteNonQueryAsync(CancellationToken.None).ConfigureAwait(false);
        }
        catch (NpgsqlException ex)
        {
            _log.Warn("Cannot write {Count} checkpoint(s) of rooms: {Reason}; tried again at the next change", saved.Count + gone.Count, ex.Message);
            foreach (var jid in saved.Select(x => x.Jid).Concat(gone))
            {
                _changed.TryAdd(Jid.Parse(jid), 0);
            }
        }
    }

    /// <summary>
    /// On the entity's new home, activated without a move: if a dead node left a checkpoint of it, this node takes the
    /// checkpoint over (no other can then) and the entity goes on from it here. Its occupants that died with that
    /// node leave next, with 333. False when there is none (or it cannot be read: the entity starts afresh).
    /// </summary>
    internal async Task<bool> RecoverHereAsync(Jid entity)
    {
        if (_server?.Modules?.Parking is not { } parking || _membership is null)
        {
            return false;
        }

        var live = await LiveSilosForAsync(entity).ConfigureAwait(false);
        string dead, snapshot;
        try
        {
            await using var connection = await _db.OpenConnectionAsync(CancellationToken.None).ConfigureAwait(false);
            await using var cmd = new NpgsqlCommand(
                """
                WITH old AS (SELECT jid, silo, saved_at FROM cluster_checkpoints WHERE jid = $1 AND silo <> ALL($2::text[]) FOR UPDATE)
                UPDATE cluster_checkpoints c SET silo = $3, saved_at = now() FROM old WHERE c.jid = old.jid
                RETURNING old.silo, c.snapshot, old.saved_at
                """, connection)
            {
                Parameters = { new() { Value = entity.ToString() }, new() { Value = live }, new() { Value = _siloKey } },
            };
            await using var reader = await cmd.ExecuteReaderAsync(CancellationToken.None).ConfigureAwait(false);
            if (!await reader.ReadAsync(CancellationToken.None).ConfigureAwait(false))
            {
                return false;
            }

            (dead, snapshot) = (reader.GetString(0), reader.GetString(1));
            _log.Warn("{Entity}: its node {Silo} is gone; going on here from its checkpoint of {At:O}", entity, dead, reader.GetFieldValue<DateTimeOffset>(2));
        }
        catch (NpgsqlException ex)
        {
            _log.Error("{Entity}: cannot read its checkpoint ({Reason}); it starts afresh here", entity, ex.Message);
            return false;
        }

        parking.Restore(entity, [ElementParser.Parse(snapshot)]);

        // Before the activation handles any stanza, so that nobody sees the dead occupants. The 333 leaves go to the
        // survivors as unavailable presence, which is never bounced (RFC 6121 §8.5; see the presence module): none
        // of them calls back into this activation.
        await RemoveDeadSessionsAsync(entity).ConfigureAwait(false);
        return true;
    }

    private async Task RemoveDeadSessionsAsync(Jid entity)
    {
        try
        {
            var lost = await DeadSessionsAsync().ConfigureAwait(false);
            await _server!.Modules.SessionsLostAsync(lost, _stopping.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }
        catch (Exception ex)
        {
            _log.Error(ex, "{Entity}: removing the occupants that died with its node failed", entity);
        }
    }

    /// <summary>The sessions the crash ledger holds for nodes that are not live (kept 10 minutes after their clean-up).</summary>
    private Task<HashSet<Jid>> DeadSessionsAsync()
    {
        var version = _membership!.CurrentSnapshot.Version;
        lock (_deadSessionsGate)
        {
            if (_deadSessions is { } cached && cached.Version == version && !cached.Sessions.IsFaulted)
            {
                return cached.Sessions;
            }

            var read = ReadDeadSessionsAsync(LiveSilos());
            _deadSessions = (version, read);
            return read;
        }
    }

    private async Task<HashSet<Jid>> ReadDeadSessionsAsync(string[] live)
    {
        var sessions = new HashSet<Jid>();
        await using var connection = await _db.OpenConnectionAsync(CancellationToken.None).ConfigureAwait(false);
        // Not one bound again since on a live node under the same address (a client that logged in again with
        // its resource): it is alive, and so is its place in a room it joined again. The home's row of a dead edge
        // session (its proxy, 'via' the dead node) is not such a login.
        await using var cmd = new NpgsqlCommand(
            "SELECT d.jid FROM cluster_sessions d WHERE d.silo <> ALL($1::text[]) AND NOT EXISTS (SELECT 1 FROM cluster_sessions l WHERE l.jid = d.jid AND l.silo = ANY($1::text[]) AND (NOT d.edge OR l.via IS DISTINCT FROM d.silo))",
            connection)
        { Parameters = { new() { Value = live } } };
        await using var reader = await cmd.ExecuteReaderAsync(CancellationToken.None).ConfigureAwait(false);
        while (await reader.ReadAsync(CancellationToken.None).ConfigureAwait(false))
        {
            if (Jid.TryParse(reader.GetString(0), out var jid))
            {
                sessions.Add(jid);
            }
        }

        return sessions;
    }

    public async ValueTask<IReadOnlyList<(Jid Entity, Element Snapshot)>> CheckpointsElsewhereAsync(string domain, CancellationToken cancellationToken)
    {
        if (_membership is null)
        {
            return [];
        }

        // Each live node is asked for its entities as they are now (a room created or configured a moment ago is
        // listed); the database's checkpoints, written at most a moment ago, stand in for a node that does not answer.
        var others = _membership.CurrentSnapshot.Members.Values
            .Where(m => m.Status == SiloStatus.Active && !m.SiloAddress.Equals(_silo))
            .Select(m => m.SiloAddress.ToParsableString())
            .ToList();
        var answers = await Task.WhenAll(others.Select(async silo =>
        {
            try
            {
                return (Silo: silo, Pairs: await _grains!.GetGrain<INodeGrain>(silo).CheckpointsAsync(domain).WaitAsync(TimeSpan.FromSeconds(2), cancellationToken).ConfigureAwait(false));
            }
            catch (Exception ex) when (Unreachable.Is(ex, cancellationToken))
            {
                _log.Debug("Asking {Node} for its entities of {Domain}: {Reason}", NodeName(silo), domain, ex.Message);
                return (Silo: silo, Pairs: (string[]?)null);
            }
        })).ConfigureAwait(false);
        var found = new List<(Jid, Element)>();
        foreach (var (_, pairs) in answers)
        {
            for (var i = 0; pairs is not null && i + 1 < pairs.Length; i += 2)
            {
                if (Jid.TryParse(pairs[i], out var jid))
                {
                    found.Add((jid, ElementParser.Parse(pairs[i + 1])));
                }
            }
        }

        var silent = answers.Where(a => a.Pairs is null).Select(a => a.Silo).ToArray();
        if (silent.Length > 0)
        {
            found.AddRange(await StoredCheckpointsAsync(domain, silent, cancellationToken).ConfigureAwait(false));
        }

        return found;
    }

    /// <summary>On a node asked by another: the entities of <paramref name="domain"/> homed here as they are for listing (a room without its history), as "JID, snapshot" pairs.</summary>
    internal async Task<string[]> CheckpointsHereAsync(string domain)
    {
        var pairs = new List<string>();
        if (_server?.Modules?.Parking is not { } parking)
        {
            return [];
        }

        foreach (var entity in _homed.Keys.Where(e => e.Local is not null && e.Domain == domain && parking.Checkpoints(e)))
        {
            if (await parking.CheckpointAsync(entity, listing: true).ConfigureAwait(false) is { } snapshot)
            {
                pairs.Add(entity.ToString());
                pairs.Add(snapshot.ToString());
            }
        }

        return [.. pairs];
    }

    private async Task<List<(Jid, Element)>> StoredCheckpointsAsync(string domain, string[] silos, CancellationToken cancellationToken)
    {
        var found = new List<(Jid, Element)>();
        try
        {
            await using var connection = await _db.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await using var cmd = new NpgsqlCommand("SELECT jid, snapshot FROM cluster_checkpoints WHERE silo = ANY($1::text[]) AND right(jid, length($2) + 1) = '@' || $2", connection)
            {
                Parameters = { new() { Value = silos }, new() { Value = domain } },
            };
            await using var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                if (Jid.TryParse(reader.GetString(0), out var jid))
                {
                    found.Add((jid, ElementParser.Parse(reader.GetString(1))));
                }
            }
        }
        catch (NpgsqlException ex)
        {
            _log.Warn("Cannot read the rooms of {Domain} on the nodes that did not answer: {Reason}", domain, ex.Message);
        }

        return found;
    }

    /// <summary>
    /// The live nodes, as this node sees them, for the activation of <paramref name="entity"/> here. If a node this
    /// one still counts as live holds its checkpoint, that node died (an occupied entity keeps its home while its
    /// node lives, so the directory activated it here because it declared that node dead), and this node has not
    /// learned it yet (deaths spread by gossip and table reads): it reads the membership again and waits for it,
    /// up to the failure detection time, rather than start the entity afresh and lose its occupants.
    /// </summary>
    private async Task<string[]> LiveSilosForAsync(Jid entity)
    {
        var live = LiveSilos();
        string? holder;
        try
        {
            await using var connection = await _db.OpenConnectionAsync(CancellationToken.None).ConfigureAwait(false);
            await using var cmd = new NpgsqlCommand("SELECT silo FROM cluster_checkpoints WHERE jid = $1", connection) { Parameters = { new() { Value = entity.ToString() } } };
            holder = await cmd.ExecuteScalarAsync(CancellationToken.None).ConfigureAwait(false) as string;
        }
        catch (NpgsqlException)
        {
            return live; // read again, and reported, by the caller
        }

        if (holder is null || holder == _siloKey || !live.Contains(holder))
        {
            return live;
        }

        var deadline = DateTime.UtcNow + (_options.ProbeTimeout * _options.MissedProbes) + TimeSpan.FromSeconds(5);
        _log.Info("{Entity} is activated here while its checkpoint says {Node} runs it: waiting for this node to learn that node's death", entity, NodeName(holder));
        while (live.Contains(holder) && DateTime.UtcNow < deadline)
        {
            try
            {
                await _membership!.Refresh().AsTask().WaitAsync(TimeSpan.FromSeconds(2)).ConfigureAwait(false);
            }
            catch (Exception ex) when (Unreachable.Is(ex, _stopping.Token))
            {
                _log.Debug("Reading the membership again failed: {Reason}", ex.Message);
            }

            live = LiveSilos();
            if (live.Contains(holder))
            {
                await Task.Delay(TimeSpan.FromMilliseconds(200)).ConfigureAwait(false);
            }
        }

        return live;
    }

    private string[] LiveSilos() => [.. _membership!.CurrentSnapshot.Members.Values.Where(m => m.Status != SiloStatus.Dead).Select(m => m.SiloAddress.ToParsableString())];

    /// <summary>
    /// On the elected node, after a node died: every entity it had checkpointed is activated again (here), which takes
    /// its checkpoint over, so that its rooms answer and their occupants learn who left without waiting for a stanza.
    /// A checkpoint whose entity turns out to be homed on a live node is stale (its home writes its own next): removed.
    /// </summary>
    private async Task RecoverCheckpointsAsync(string[] live, CancellationToken ct)
    {
        var orphans = new List<(string Jid, string Silo)>();
        await using (var connection = await _db.OpenConnectionAsync(ct).ConfigureAwait(false))
        {
            await using var cmd = new NpgsqlCommand("SELECT jid, silo FROM cluster_checkpoints WHERE silo <> ALL($1::text[])", connection) { Parameters = { new() { Value = live } } };
            await using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
            while (await reader.ReadAsync(ct).ConfigureAwait(false))
            {
                orphans.Add((reader.GetString(0), reader.GetString(1)));
            }
        }

        if (orphans.Count == 0)
        {
            return;
        }

        _log.Warn("{Count} room(s) lived on nodes that are gone: taking them over from their checkpoints", orphans.Count);
        await Parallel.ForEachAsync(orphans, new ParallelOptions { MaxDegreeOfParallelism = 16, CancellationToken = ct }, async (orphan, token) =>
        {
            // The directory gives the entity a new activation once its lease on the dead node is over.
            var (answered, _, failure) = await CallHomeAsync(Jid.Parse(orphan.Jid), grain => grain.WhereAsync(), token).ConfigureAwait(false);
            if (!answered)
            {
                _log.Error("{Entity}: not activated again within {Seconds:0} s ({Reason}); its checkpoint waits for its next stanza", orphan.Jid, ForwardPatience.TotalSeconds, failure);
                return;
            }

            await using var connection = await _db.OpenConnectionAsync(token).ConfigureAwait(false);
            await using var stale = new NpgsqlCommand("DELETE FROM cluster_checkpoints WHERE jid = $1 AND silo = $2", connection) { Parameters = { new() { Value = orphan.Jid }, new() { Value = orphan.Silo } } };
            if (await stale.ExecuteNonQueryAsync(token).ConfigureAwait(false) > 0)
            {
                _log.Info("{Entity}: its checkpoint from {Silo} was stale (it is homed on a live node)", orphan.Jid, orphan.Silo);
            }
        }).ConfigureAwait(false);
    }

    /// <summary>A node stopping: what it still holds ends with it, so its checkpoints must not bring it back; and it no longer drains.</summary>
    private async Task ForgetCheckpointsAsync()
    {
        _checkpointWake.Writer.TryComplete();
        await _checkpointWriter.ConfigureAwait(false);
        try
        {
            await using var connection = await _db.OpenConnectionAsync(CancellationToken.None).ConfigureAwait(false);
            await using var batch = new NpgsqlBatch(connection)
            {
                BatchCommands =
                {
                    new NpgsqlBatchCommand("DELETE FROM cluster_checkpoints WHERE silo = $1") { Parameters = { new() { Value = _siloKey } } },
                    new NpgsqlBatchCommand("DELETE FROM cluster_draining WHERE silo = $1") { Parameters = { new() { Value = _siloKey } } },
                },
            };
            await batch.ExecuteNonQueryAsync(CancellationToken.None).ConfigureAwait(false);
        }
        catch (NpgsqlException ex)
        {
            _log.Warn("Cannot remove this node's checkpoints: {Reason}", ex.Message);
        }
    }
}
