using Orleans;
using Orleans.Concurrency;
using Orleans.Placement;
using Orleans.Runtime;
using Orleans.Runtime.Placement;

namespace Xmpp.Server.Cluster.Orleans;

/// <summary>
/// One per account (keyed by bare JID): where its activation lives is the account's home node. The silo that
/// first needs it gets it (<see cref="PreferLocalPlacementAttribute"/>); a login elsewhere moves it there
/// while the account has no session; while it has, the login's session is bound here from its node (its edge).
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

    /// <summary>
    /// These sessions of the account (full JID: the targets of its directed presence) died with their node: its
    /// contacts and those targets are told they are unavailable.
    /// </summary>
    [AlwaysInterleave]
    Task LostAsync(Dictionary<string, string[]> sessions);

    /// <summary>
    /// A drain on <paramref name="caller"/>'s node, the home: the account's resumable sessions are parked and the
    /// home moves to <paramref name="target"/> with them. Returns how many were parked.
    /// </summary>
    Task<int> DrainAsync(SiloAddress caller, SiloAddress target);

    /// <summary>The home's silo address (after a move, the new one's).</summary>
    Task<string> WhereAsync();

    /// <summary>
    /// A session of the account is bound on <paramref name="caller"/>'s node (its edge): its proxy is bound here
    /// (<see cref="OrleansCluster.AttachAsync"/>), unless the home moves to the caller's node, having no session here.
    /// </summary>
    Task<AttachReply> AttachAsync(SiloAddress caller, string full, long id, long connection, string state);

    /// <summary>The session with link <paramref name="id"/> ended on its edge node.</summary>
    [AlwaysInterleave]
    Task DetachAsync(long id);

    /// <summary>A message that a session of the account on another node never acknowledged, that session over: delivered, stored or bounced here.</summary>
    [AlwaysInterleave]
    Task RedeliverAsync(string message);

    /// <summary>Routes what a client sent on its edge node as its proxy here; returns the home's silo address, empty when the proxy is not here.</summary>
    [AlwaysInterleave]
    Task<string> FromEdgeAsync(string stanza, string from, long id);

    /// <summary>A drain on the edge node of the session with link <paramref name="id"/> parked it: it replaces its proxy here.</summary>
    Task<AttachOutcome> AdoptAsync(long id, string parked);

    /// <summary>A client resumes on another node the session with this resumption id, waiting here: its snapshot, or empty.</summary>
    Task<string> TakeWaitingAsync(string resumeId);

    /// <summary>An administrator ends these sessions of the account (a full JID, or all of them): on the home, where they are.</summary>
    [AlwaysInterleave]
    Task<int> EndSessionsAsync(string jid);
}

/// <summary>The answer to a claim.</summary>
[GenerateSerializer]
[Immutable]
public sealed record ClaimReply([property: Id(0)] ClaimOutcome Outcome, [property: Id(1)] string? Node);

[GenerateSerializer]
public enum ClaimOutcome
{
    /// <summary>The caller's node is the home.</summary>
    Granted,

    /// <summary>The home is moving to the caller's node: ask again.</summary>
    Moving,

    /// <summary>Another node has sessions of the account and stays its home: the client's session is bound there from its node.</summary>
    Elsewhere,
}

[PreferLocalPlacement]
internal sealed class HomeGrain(OrleansCluster node, ILocalSiloDetails silo) : Grain, IHomeGrain, IGrainMigrationParticipant
{
    private Core.Addressing.Jid _jid = null!;

    /// <summary>Sessions parked for the home's next node, which moves with the activation (XEP-0198 resumption there).</summary>
    private string[]? _parked;

    /// <summary>Stanzas for the account that reached the home while its sessions were parked, routed once they arrive.</summary>
    private List<Forwarded>? _queued;

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        _jid = Core.Addressing.Jid.Parse(this.GetPrimaryKeyString());
        node.Arrived(_jid);
        if (_parked is { } parked)
        {
            _parked = null;
            node.RestoreHere(_jid, parked);
            DelayDeactivation(Timeout.InfiniteTimeSpan);
        }
        else if (node.Recovers(_jid) && await node.RecoverHereAsync(_jid))
        {
            // Its node died: it goes on here from its checkpoint, with the occupants that survive.
            DelayDeactivation(Timeout.InfiniteTimeSpan);
        }

        if (_queued is { } queued)
        {
            _queued = null;
            await node.RouteQueuedAsync(_jid, queued);
        }
    }

    public void OnDehydrate(IDehydrationContext dehydrationContext)
    {
        if (_parked is not null)
        {
            dehydrationContext.TryAddValue("parked", _parked);
            dehydrationContext.TryAddValue("queued", _queued?.ToArray() ?? []);
        }
    }

    public void OnRehydrate(IRehydrationContext rehydrationContext)
    {
        if (rehydrationContext.TryGetValue<string[]>("parked", out var parked) && parked is not null)
        {
            _parked = parked;
            _queued = rehydrationContext.TryGetValue<Forwarded[]>("queued", out var queued) && queued is { Length: > 0 } ? [.. queued] : null;
        }
    }

    public override Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        node.Left(_jid, reason.Description);
        return Task.CompletedTask;
    }

    public async Task<string> RouteAsync(string stanza, string from, string to)
    {
        if (_parked is not null)
        {
            // The sessions are on their way to the next node: the stanza goes with them. No home to remember yet.
            (_queued ??= []).Add(new Forwarded(stanza, from, to));
            return string.Empty;
        }

        await node.RouteHereAsync(stanza, from, to);
        Touch();
        return node.SiloKey;
    }

    /// <summary>An account with sessions here, or a room with occupants, keeps its home; otherwise it may be collected when idle.</summary>
    private void Touch() => DelayDeactivation(node.Holds(_jid) ? Timeout.InfiniteTimeSpan : TimeSpan.Zero);

    public async Task<ClaimReply> ClaimAsync(SiloAddress caller)
    {
        if (_parked is not null)
        {
            return new ClaimReply(ClaimOutcome.Moving, null);
        }

        if (caller.Equals(silo.SiloAddress))
        {
            node.Hold(_jid);

            // Never collected while it has sessions here: an activation elsewhere would be a second home.
            DelayDeactivation(Timeout.InfiniteTimeSpan);
            return new ClaimReply(ClaimOutcome.Granted, null);
        }

        if (node.Holds(_jid))
        {
            // Every session here waits for its client to resume it (its connection dropped): they go with the home
            // to the node the client logged in on, where it can resume them (XEP-0198 §5 on another node).
            if (!node.CanHandOver(_jid) || !await ParkAsync())
            {
                return new ClaimReply(ClaimOutcome.Elsewhere, node.Node);
            }
        }

        // No session here (any more): the home follows the client. Migration runs once this call has returned;
        // calls arriving meanwhile wait and then reach the new activation.
        MoveTo(caller);
        return new ClaimReply(ClaimOutcome.Moving, null);
    }

    /// <summary>
    /// Parks the account's resumable sessions here to go with the activation. Meanwhile, and until the move, stanzas
    /// for the account are kept (<see cref="RouteAsync"/>). False when none could be parked: the home stays.
    /// </summary>
    private async Task<bool> ParkAsync()
    {
        _parked = [];
        var parked = await node.ParkHereAsync(_jid);
        if (parked.Length > 0)
        {
            _parked = parked;
            await node.SaveParkedAsync(_jid, parked);
            return true;
        }

        _parked = null;
        if (_queued is { } queued)
        {
            _queued = null;
            await node.RouteQueuedAsync(_jid, queued);
        }

        return false;
    }

    private void MoveTo(SiloAddress target)
    {
        RequestContext.Set(IPlacementDirector.PlacementHintKey, target);
        this.MigrateOnIdle();
    }

    public async Task<int> DrainAsync(SiloAddress caller, SiloAddress target)
    {
        // Only the node the sessions are on parks them; and one move at a time.
        if (!caller.Equals(silo.SiloAddress) || _parked is not null || !await ParkAsync())
        {
            return 0;
        }

        MoveTo(target);
        return _parked!.Length;
    }

    public async Task<AttachReply> AttachAsync(SiloAddress caller, string full, long id, long connection, string state)
    {
        if (_parked is not null)
        {
            return new AttachReply(AttachOutcome.Moving, string.Empty, string.Empty, string.Empty);
        }

        if (caller.Equals(silo.SiloAddress))
        {
            node.Hold(_jid);
            DelayDeactivation(Timeout.InfiniteTimeSpan);
            return new AttachReply(AttachOutcome.Here, string.Empty, string.Empty, string.Empty);
        }

        if (!node.Holds(_jid))
        {
            // No session here (any more): the home follows the client, as for a claim.
            MoveTo(caller);
            return new AttachReply(AttachOutcome.Moving, string.Empty, string.Empty, string.Empty);
        }

        var reply = await node.AttachHereAsync(_jid, full, id, connection, caller.ToParsableString(), state);
        Touch();
        return reply;
    }

    public async Task RedeliverAsync(string message)
    {
        await node.RedeliverHereAsync(_jid, message);
        Touch();
    }

    public async Task DetachAsync(long id)
    {
        await node.DetachHereAsync(id);
        Touch();
    }

    public async Task<string> FromEdgeAsync(string stanza, string from, long id)
    {
        if (_parked is not null)
        {
            // The home is moving with the session's proxy: routed once it has arrived, as the proxy there.
            (_queued ??= []).Add(new Forwarded(stanza, from, string.Empty, id));
            return OrleansCluster.Moving;
        }

        var routed = await node.FromEdgeHereAsync(stanza, from, id);
        Touch();
        return routed ? node.SiloKey : string.Empty;
    }

    public Task<AttachOutcome> AdoptAsync(long id, string parked)
    {
        if (_parked is not null)
        {
            return Task.FromResult(AttachOutcome.Moving);
        }

        var adopted = node.AdoptHere(_jid, id, parked);
        Touch();
        return Task.FromResult(adopted ? AttachOutcome.Attached : AttachOutcome.Refused);
    }

    public async Task<string> TakeWaitingAsync(string resumeId)
    {
        var taken = _parked is null ? await node.TakeWaitingHereAsync(_jid, resumeId) : string.Empty;
        Touch();
        return taken;
    }

    public Task<string> WhereAsync() => Task.FromResult(node.SiloKey);

    public Task<int> EndSessionsAsync(string jid) => node.EndHereAsync(jid);

    public Task LostAsync(Dictionary<string, string[]> sessions) => node.LostHereAsync(_jid, sessions);

    public Task ReleaseAsync()
    {
        if (_parked is null && !node.Holds(_jid))
        {
            DelayDeactivation(TimeSpan.Zero);
        }

        return Task.CompletedTask;
    }
}
