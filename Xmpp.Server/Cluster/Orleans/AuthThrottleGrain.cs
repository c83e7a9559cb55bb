using Orleans;

namespace Xmpp.Server.Cluster.Orleans;

/// <summary>
/// Failed authentications for one username (keyed by bare JID), counted over every node: guesses spread over the
/// nodes are slowed down and blocked as on one server. One call per failure, none per success; a block reaches
/// every node at once, so a correct guess during it is refused wherever it is tried.
/// </summary>
public interface IAuthThrottleGrain : IGrainWithStringKey
{
    /// <summary>Counts a failure; returns the failures in the window (the same rules as <see cref="Net.AuthFailureTracker"/>).</summary>
    Task<int> FailedAsync(int blockAfter, TimeSpan blockTime, TimeSpan window);
}

internal sealed class AuthThrottleGrain(OrleansCluster node) : Grain, IAuthThrottleGrain
{
    private int _count;
    private DateTimeOffset _last;
    private DateTimeOffset _blockedUntil;

    public async Task<int> FailedAsync(int blockAfter, TimeSpan blockTime, TimeSpan window)
    {
        var now = DateTimeOffset.UtcNow;
        if (_blockedUntil > now)
        {
            // Attempts during a block do not extend it.
            return _count;
        }

        _count = _count == 0 || now - _last > window || _blockedUntil != default ? 1 : _count + 1;
        _last = now;
        _blockedUntil = default;
        if (blockAfter > 0 && _count >= blockAfter)
        {
            _blockedUntil = now + blockTime;
            await node.BlockEverywhereAsync(this.GetPrimaryKeyString(), _blockedUntil);
        }

        return _count;
    }
}
