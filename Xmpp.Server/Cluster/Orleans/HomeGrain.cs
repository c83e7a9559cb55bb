using Orleans;
using Orleans.Concurrency;
using Orleans.Placement;
using Orleans.Runtime;
using Orleans.Runtime.Placement;

namespace Xmpp.Server.Cluster.Orleans;

/// <summary>
/// One per account (keyed by bare JID): where its activation lives is the account's home node. The silo that
/// first needs it gets it (<see cref="PreferLocalPlacementAttribute"/>); a login elsewhere moves it there
/// while the account has no session, and is told to go to the home node while it has.
/// </summary>
public interface IHomeGrain : IGrainWithStringKey
{
    /// <summary>
    /// Routes a stanza on the home node, from its recipient's side; returns the home's silo address, which the
    /// sender remembers to send the next ones through the home's <see cref="INodeGrain"/> in batches.
    /// Interleaved: routing one may route another to this account.
    /// </summary>
    [AlwaysInterleave]
    Task<string> RouteAsync(string stanza, string from, string to);

    /// <summary>A client of the account authenticated on <paramref name="caller"/>'s node.</summary>
    Task<ClaimReply> ClaimAsync(SiloAddress caller);

    /// <summary>The home node's last session of the account ended: the activation may be collected when idle.</summary>
    Task ReleaseAsync();

    /// <summary>These sessions of the account died with their node: its contacts are told they are unavailable.</summary>
    [AlwaysInterleave]
    Task LostAsync(string[] sessions);
}

/// <summary>The answer to a claim.</summary>
[GenerateSerializer]
[Immutable]
public sealed record ClaimReply([property: Id(0)] ClaimOutcome Outcome, [property: Id(1)] string? ClientAddress);

[GenerateSerializer]
public enum ClaimOutcome
{
    /// <summary>The caller's node is the home.</summary>
    Granted,

    /// <summary>The home is moving to the caller's node: ask again.</summary>
    Moving,

    /// <summary>Another node has sessions of the account: the client goes there (see-other-host).</summary>
    Elsewhere,
}

[PreferLocalPlacement]
internal sealed class HomeGrain(OrleansCluster node, ILocalSiloDetails silo) : Grain, IHomeGrain
{
    private Core.Addressing.Jid _jid = null!;

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        _jid = Core.Addressing.Jid.Parse(this.GetPrimaryKeyString());
        node.Arrived(_jid);
        return Task.CompletedTask;
    }

    public override Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        node.Left(_jid, reason.Description);
        return Task.CompletedTask;
    }

    public async Task<string> RouteAsync(string stanza, string from, string to)
    {
        await node.RouteHereAsync(stanza, from, to);
        Touch();
        return node.SiloKey;
    }

    /// <summary>An account with sessions here, or a room with occupants, keeps its home; otherwise it may be collected when idle.</summary>
    private void Touch() => DelayDeactivation(node.Holds(_jid) ? Timeout.InfiniteTimeSpan : TimeSpan.Zero);

    public Task<ClaimReply> ClaimAsync(SiloAddress caller)
    {
        if (caller.Equals(silo.SiloAddress))
        {
            node.Hold(_jid);

            // Never collected while it has sessions here: an activation elsewhere would be a second home.
            DelayDeactivation(Timeout.InfiniteTimeSpan);
            return Task.FromResult(new ClaimReply(ClaimOutcome.Granted, null));
        }

        if (node.Holds(_jid))
        {
            return Task.FromResult(new ClaimReply(ClaimOutcome.Elsewhere, node.ClientAddress));
        }

        // No session here: the home follows the client. Migration runs once this call has returned; calls
        // arriving meanwhile wait and then reach the new activation.
        RequestContext.Set(IPlacementDirector.PlacementHintKey, caller);
        this.MigrateOnIdle();
        return Task.FromResult(new ClaimReply(ClaimOutcome.Moving, null));
    }

    public Task LostAsync(string[] sessions) => node.LostHereAsync(_jid, sessions);

    public Task ReleaseAsync()
    {
        if (!node.Holds(_jid))
        {
            DelayDeactivation(TimeSpan.Zero);
        }

        return Task.CompletedTask;
    }
}
