using Npgsql;
using Orleans;
using Orleans.Runtime;
using Xmpp.Core.Addressing;
using Xmpp.Server.Sessions;

namespace Xmpp.Server.Cluster.Orleans;

/// <summary>Cluster mode: failed logins counted over every node, and the administration commands' view of every node's sessions.</summary>
public sealed partial class OrleansCluster
{
    public async ValueTask<int> AccountFailedAsync(string account, CancellationToken cancellationToken)
    {
        var auth = _server!.Options.Auth;
        try
        {
            var count = await _grains!.GetGrain<IAuthThrottleGrain>(account).FailedAsync(auth.FailuresPerAccount, auth.BlockTime, Net.AuthFailureTracker.Window).WaitAsync(cancellationToken).ConfigureAwait(false);
            if (auth.FailuresPerAccount > 0 && count >= auth.FailuresPerAccount)
            {
                // Here at once; the other nodes hear it from the grain.
                _server.AuthFailures.Block(account, DateTimeOffset.UtcNow + auth.BlockTime);
            }

            return count;
        }
        catch (Exception ex) when (Unreachable.Is(ex, _stopping.Token))
        {
            _log.Warn("Counting a failed authentication for {Account} cluster-wide failed (counted on this node only): {Reason}", account, ex.Message);
            return 0;
        }
    }

    /// <summary>Failures on the nodes together blocked a username: every active node is told (a one-way call each).</summary>
    internal async Task BlockEverywhereAsync(string account, DateTimeOffset until)
    {
        _log.Warn("{Account} is blocked on every node until {Until:HH:mm:ss} after failed authentications across the cluster", account, until);
        foreach (var member in _membership!.CurrentSnapshot.Members.Values.Where(m => m.Status == SiloStatus.Active))
        {
            try
            {
                await _grains!.GetGrain<INodeGrain>(member.SiloAddress.ToParsableString()).BlockAsync(account, until).ConfigureAwait(false);
            }
            catch (Exception ex) when (Unreachable.Is(ex, _stopping.Token))
            {
                _log.Warn("Telling node {Node} that {Account} is blocked failed: {Reason}", member.Name, account, ex.Message);
            }
        }
    }

    internal void BlockHere(string account, DateTimeOffset until)
    {
        _log.Info("{Account} is blocked here until {Until:HH:mm:ss}: failed authentications across the cluster", account, until);
        _server?.AuthFailures.Block(account, until);
    }

    public async ValueTask<IReadOnlyList<(Jid Session, string Node)>> SessionsAsync(CancellationToken cancellationToken)
    {
        // Each session once, with the node its connection is on (a proxy's is its edge's).
        var all = _sessions!.All.Select(s => (s.Jid, s is ClientSession { Stream: EdgeCarrier edge } ? NodeName(edge.Edge) : _options.Node)).ToList();
        var local = all.Select(s => s.Jid).ToHashSet();
        var others = _membership!.CurrentSnapshot.Members.Values
            .Where(m => m.Status is SiloStatus.Active or SiloStatus.ShuttingDown && !m.SiloAddress.Equals(_silo))
            .ToDictionary(m => m.SiloAddress.ToParsableString(), m => m.Name, StringComparer.Ordinal);
        if (others.Count > 0)
        {
            await using var connection = await _db.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await using var cmd = new NpgsqlCommand("SELECT jid, silo FROM cluster_sessions WHERE cleaned_at IS NULL AND NOT edge AND silo = ANY($1::text[])", connection) { Parameters = { new() { Value = others.Keys.ToArray() } } };
            await using var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                if (Jid.TryParse(reader.GetString(0), out var jid) && !local.Contains(jid))
                {
                    all.Add((jid, others[reader.GetString(1)]));
                }
            }
        }

        return all;
    }

    public async ValueTask<int> EndSessionsAsync(Jid jid, CancellationToken cancellationToken)
    {
        if (_sessions!.Named(jid).Count > 0)
        {
            return await EndHereAsync(jid.ToString()).ConfigureAwait(false);
        }

        // Bound on the account's home (if anywhere): ended there.
        return await Grain(jid.Bare).EndSessionsAsync(jid.ToString()).WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>On the account's home: an administrator on some node ends these sessions.</summary>
    internal async Task<int> EndHereAsync(string text)
    {
        var sessions = _sessions!.Named(Jid.Parse(text));
        if (sessions.Count > 0)
        {
            await _sessions!.EndAsync(sessions, SessionEnding.EndedByAdministrator, _stopping.Token).ConfigureAwait(false);
        }

        return sessions.Count;
    }
}
