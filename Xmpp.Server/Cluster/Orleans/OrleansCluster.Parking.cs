using System.Diagnostics;
using Npgsql;
using Orleans;
using Orleans.Runtime;
using Xmpp.Core.Addressing;
using Xmpp.Core.Xml;

namespace Xmpp.Server.Cluster.Orleans;

/// <summary>Cluster mode: a drain parks sessions and occupied rooms for another node; resumption on another node.</summary>
public sealed partial class OrleansCluster
{
    /// <summary>Whether the account's sessions here may leave with its home for a login on another node: all of them wait to be resumed.</summary>
    internal bool CanHandOver(Jid bare) =>
        !(_claims.TryGetValue(bare, out var at) && Stopwatch.GetElapsedTime(at) < ClaimHold) &&
        !(_server?.Modules?.HoldsHome(bare) ?? false) &&
        (_server?.Modules?.Parking?.AllWaiting(bare) ?? false);

    /// <summary>
    /// Parks the account's resumable sessions for its next home (called by its home grain, here): from now on
    /// stanzas for it go through the grain, which keeps them for that node.
    /// </summary>
    internal async Task<string[]> ParkHereAsync(Jid bare)
    {
        _homed.TryRemove(bare, out _);

        // Stanzas that found the account homed here are routed to its sessions first; those routed from now on
        // go through its home grain, which keeps them for the next node.
        if (!await _routing.QuietAsync(bare, TimeSpan.FromSeconds(5)).ConfigureAwait(false))
        {
            _log.Warn("{Account}: routings to it still under way after 5 s; parking its sessions anyway", bare);
        }

        IReadOnlyList<Element> parked = _server?.Modules?.Parking is { } parking ? await parking.ParkAsync(bare).ConfigureAwait(false) : [];
        var proxies = ParkProxiesHere(bare);
        if (parked.Count + proxies.Count == 0)
        {
            // Nothing could leave: the account stays homed here.
            _homed[bare] = 0;
        }
        else if (_sessions!.Resources(bare).Count > 0)
        {
            _log.Info("{Account}: {Count} session(s) that cannot be resumed stay until this node stops", bare, _sessions.Resources(bare).Count);
        }

        return [.. parked.Select(p => p.ToString()), .. proxies];
    }

    /// <summary>The account's parked sessions arrived with its home: they wait here for their clients.</summary>
    internal void RestoreHere(Jid bare, string[] parked)
    {
        var all = parked.Select(ElementParser.Parse).ToList();
        foreach (var proxy in all.Where(p => p.Name == "proxy"))
        {
            RestoreProxyHere(proxy);
        }

        var snapshots = all.Where(p => p.Name != "proxy").ToList();
        if (snapshots.Count == 0)
        {
            return;
        }

        if (_server?.Modules?.Parking is not { } parking)
        {
            _log.Warn("{Account}: {Count} parked session(s) arrived, but stream management is not loaded here: they are lost", bare, snapshots.Count);
            return;
        }

        parking.Restore(bare, snapshots);
        _ = ForgetParkedAsync([.. snapshots.Select(s => s.GetAttribute("id")).OfType<string>()]);
    }

    /// <summary>
    /// Parked sessions are also written to cluster_parked while they move, so that a client can resume one even if
    /// the move loses it (the node that parked it dies first): <see cref="TakeParkedAsync"/>.
    /// </summary>
    internal async Task SaveParkedAsync(Jid bare, string[] parked)
    {
        // Proxies are not resumed: they move with the home or end with it.
        parked = [.. parked.Where(p => !IsProxySnapshot(p))];
        if (parked.Length == 0)
        {
            return;
        }

        try
        {
            await using var connection = await _db.OpenConnectionAsync(CancellationToken.None).ConfigureAwait(false);
            var ids = parked.Select(p => ElementParser.Parse(p).GetAttribute("id") ?? string.Empty).ToArray();
            await using var cmd = new NpgsqlCommand("INSERT INTO cluster_parked (resume_id, jid, snapshot) SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) ON CONFLICT (resume_id) DO UPDATE SET jid = excluded.jid, snapshot = excluded.snapshot, parked_at = now()", connection)
            {
                Parameters = { new() { Value = ids }, new() { Value = Enumerable.Repeat(bare.ToString(), parked.Length).ToArray() }, new() { Value = parked } },
            };
            await cmd.ExecuteNonQueryAsync(CancellationToken.None).ConfigureAwait(false);
        }
        catch (NpgsqlException ex)
        {
            _log.Warn("{Account}: its parked sessions could not be written to the database (they still move with its home): {Reason}", bare, ex.Message);
        }
    }

    private async Task ForgetParkedAsync(string[] ids)
    {
        try
        {
            await using var connection = await _db.OpenConnectionAsync(CancellationToken.None).ConfigureAwait(false);
            await using var cmd = new NpgsqlCommand("DELETE FROM cluster_parked WHERE resume_id = ANY($1::text[])", connection) { Parameters = { new() { Value = ids } } };
            await cmd.ExecuteNonQueryAsync(CancellationToken.None).ConfigureAwait(false);
        }
        catch (NpgsqlException ex)
        {
            _log.Debug("Forgetting parked sessions that arrived: {Reason}", ex.Message);
        }
    }

    public async ValueTask<Element?> TakeParkedAsync(Jid bare, string resumeId, CancellationToken cancellationToken)
    {
        string? snapshot;
        try
        {
            await using var connection = await _db.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await using var cmd = new NpgsqlCommand("DELETE FROM cluster_parked WHERE resume_id = $1 AND jid = $2 RETURNING snapshot", connection)
            {
                Parameters = { new() { Value = resumeId }, new() { Value = bare.ToString() } },
            };
            snapshot = await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) as string;
        }
        catch (NpgsqlException ex)
        {
            _log.Warn("{Account}: looking for the parked session {Id} failed: {Reason}", bare, resumeId, ex.Message);
            return null;
        }

        if (snapshot is null)
        {
            return await TakeFromHomeAsync(bare, resumeId, cancellationToken).ConfigureAwait(false);
        }

        _log.Warn("{Account}: a parked session did not arrive with its home; restored from the database for its client's resumption", bare);
        return ElementParser.Parse(snapshot);
    }

    /// <summary>
    /// Marks this node as draining and returns the nodes draining now (this one included), in one transaction under
    /// a lock, so that of two nodes starting their drains together the second sees the first.
    /// </summary>
    private async Task<HashSet<string>> DrainingAsync()
    {
        var draining = new HashSet<string>(StringComparer.Ordinal) { _siloKey };
        try
        {
            await using var connection = await _db.OpenConnectionAsync(CancellationToken.None).ConfigureAwait(false);
            await using var tx = await connection.BeginTransactionAsync(CancellationToken.None).ConfigureAwait(false);
            await using (var mark = new NpgsqlCommand("SELECT pg_advisory_xact_lock(7892010713150798183); INSERT INTO cluster_draining (silo) VALUES (@silo) ON CONFLICT DO NOTHING", connection, tx))
            {
                mark.Parameters.AddWithValue("silo", _siloKey);
                await mark.ExecuteNonQueryAsync(CancellationToken.None).ConfigureAwait(false);
            }

            await using (var read = new NpgsqlCommand("SELECT silo FROM cluster_draining", connection, tx))
            await using (var reader = await read.ExecuteReaderAsync(CancellationToken.None).ConfigureAwait(false))
            {
                while (await reader.ReadAsync(CancellationToken.None).ConfigureAwait(false))
                {
                    draining.Add(reader.GetString(0));
                }
            }

            await tx.CommitAsync(CancellationToken.None).ConfigureAwait(false);
        }
        catch (NpgsqlException ex)
        {
            _log.Warn("Cannot read which nodes are draining ({Reason}): any active node may be sent sessions", ex.Message);
        }

        return draining;
    }

    /// <summary>
    /// An account or room could not be drained to <paramref name="target"/>: an error, unless that node is leaving too
    /// (the whole cluster stopping at once), where losing what had nowhere to go is expected.
    /// </summary>
    private async Task DrainFailedAsync(Jid entity, SiloAddress target, string reason)
    {
        if (_membership!.CurrentSnapshot.GetSiloStatus(target) == SiloStatus.Active && !(await DrainingAsync().ConfigureAwait(false)).Contains(target.ToParsableString()))
        {
            _log.Error("Draining {Account} failed: {Reason}", entity, reason);
        }
        else
        {
            _log.Warn("Draining {Account} failed: the node it went to is leaving too ({Reason})", entity, reason);
        }
    }

    /// <summary>What reached the account's home while its sessions were being parked or moved: routed here, now that they are here.</summary>
    internal async Task RouteQueuedAsync(Jid bare, List<Forwarded> queued)
    {
        _log.Info("{Account}: routing {Count} stanza(s) that arrived while its sessions moved", bare, queued.Count);
        foreach (var item in queued)
        {
            try
            {
                if (item.Edge == 0)
                {
                    await RouteHereAsync(item.Stanza, item.From, item.To).ConfigureAwait(false);
                }
                else if (!await FromEdgeHereAsync(item.Stanza, item.From, item.Edge).ConfigureAwait(false))
                {
                    _log.Warn("{Account}: a stanza its client sent while its home moved found its session ended", bare);
                }
            }
            catch (Exception ex) when (!_stopping.IsCancellationRequested)
            {
                _log.Warn(ex, "{Account}: a stanza kept while its sessions moved could not be routed", bare);
            }
        }
    }

    /// <summary>
    /// A rolling restart: each account with resumable sessions here is parked through its home grain, which moves
    /// to another active node (in turn) and restores them there; this waits until each home has arrived.
    /// </summary>
    public async Task<int> DrainAsync(CancellationToken cancellationToken)
    {
        _leaving = true;
        if (_membership is null)
        {
            return 0;
        }

        // Nodes draining too (the whole cluster stopping) take nothing: they are told apart through the database.
        var draining = await DrainingAsync().ConfigureAwait(false);
        var handed = await DrainEdgesAsync(cancellationToken).ConfigureAwait(false);
        var accounts = (_server?.Modules?.Parking?.ParkableAccounts() ?? []).Union(_proxies.Values.Select(p => p.Jid.Bare)).ToList();
        if (accounts.Count == 0)
        {
            return handed;
        }

        var targets = _membership.CurrentSnapshot.Members.Values
            .Where(m => m.Status == SiloStatus.Active && !m.SiloAddress.Equals(_silo) && !draining.Contains(m.SiloAddress.ToParsableString()))
            .Select(m => m.SiloAddress)
            .OrderBy(a => a.ToParsableString(), StringComparer.Ordinal)
            .ToArray();
        if (targets.Length == 0)
        {
            _log.Warn("Draining: no other node stays to take {Count} account(s) with resumable sessions; they end as at any shutdown", accounts.Count);
            return handed;
        }

        var started = Stopwatch.GetTimestamp();
        var parked = handed;
        var failed = 0;
        await Parallel.ForEachAsync(accounts.Select((account, i) => (account, target: targets[i % targets.Length])), new ParallelOptions { MaxDegreeOfParallelism = 64, CancellationToken = cancellationToken }, async (item, ct) =>
        {
            try
            {
                var grain = Grain(item.account);
                var count = await grain.DrainAsync(_silo!, item.target).WaitAsync(ct).ConfigureAwait(false);
                if (count > 0)
                {
                    Interlocked.Add(ref parked, count);

                    // Answered by the new activation once the move is over.
                    if (await grain.WhereAsync().WaitAsync(ct).ConfigureAwait(false) == _siloKey)
                    {
                        Interlocked.Increment(ref failed);
                        await DrainFailedAsync(item.account, item.target, "its home did not leave this node; its parked sessions are lost").ConfigureAwait(false);
                    }
                }
            }
            catch (Exception ex) when (Unreachable.Is(ex, _stopping.Token))
            {
                Interlocked.Increment(ref failed);
                await DrainFailedAsync(item.account, item.target, ex.Message).ConfigureAwait(false);
            }
        }).ConfigureAwait(false);
        _log.Info("Drained: {Parked} session(s) and room(s) of {Accounts} account(s) and room(s) parked on {Targets} other node(s) in {Elapsed:0} ms{Failed}", parked, accounts.Count, targets.Length, Stopwatch.GetElapsedTime(started).TotalMilliseconds, failed > 0 ? $", {failed} failed" : string.Empty);
        return parked;
    }
}
