using Orleans;
using Orleans.Concurrency;
using Orleans.Placement;
using Orleans.Runtime;
using Orleans.Runtime.Placement;

namespace Xmpp.Server.Cluster.Orleans;

/// <summary>
/// One per node, keyed by its silo address and always on that silo (<see cref="SiloKeyPlacementAttribute"/>):
/// stanzas for accounts and rooms homed there arrive in batches, one grain call for all that one node has for
/// another at a moment, instead of one call per stanza.
/// </summary>
public interface INodeGrain : IGrainWithStringKey
{
    /// <summary>
    /// Routes each stanza whose recipient is homed here; false for those that are not (the sender asks the recipient's
    /// home grain instead). <paramref name="seq"/> numbers the batches <paramref name="sender"/> sends here (from 1):
    /// Orleans does not promise that calls not awaited one by one arrive in order, and a client's messages in two
    /// batches must be routed in the order sent.
    /// </summary>
    Task<bool[]> DeliverAsync(Forwarded[] batch, string sender, long seq);

    /// <summary>
    /// What the homes of sessions bound here (their edge) deliver to them, in order; returns the ids of the sessions
    /// that are not here (any more).
    /// </summary>
    Task<long[]> ToEdgesAsync(EdgeItem[] batch);

    /// <summary>A client resumes on another node a session whose connection was here and dropped: "link id, newline, snapshot", or empty.</summary>
    Task<string> TakeWaitingAsync(string bare, string resumeId);

    /// <summary>The live checkpoints of this node's entities of a service domain (its occupied rooms), as "JID, snapshot" pairs.</summary>
    Task<string[]> CheckpointsAsync(string domain);

    /// <summary>Failed authentications on any node blocked this username until then.</summary>
    [OneWay]
    Task BlockAsync(string account, DateTimeOffset until);
}

/// <summary>
/// A stanza crossing nodes: its XML, its trusted sender and its recipient. With <paramref name="Edge"/>, one a client
/// sent on its session's edge node, routed on its home as from the session's proxy with that link id. With
/// <paramref name="Ordered"/>, a client's message sent without waiting for the one before it (ForwardWindow): routed
/// after the sender's previous such message.
/// </summary>
[GenerateSerializer]
[Immutable]
public sealed record Forwarded([property: Id(0)] string Stanza, [property: Id(1)] string From, [property: Id(2)] string To, [property: Id(3)] long Edge = 0, [property: Id(4)] bool Ordered = false);

[SiloKeyPlacement]
[Reentrant]
internal sealed class NodeGrain(OrleansCluster node) : Grain, INodeGrain
{
    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        DelayDeactivation(Timeout.InfiniteTimeSpan);
        return Task.CompletedTask;
    }

    /// <summary>Each sending node's batches, started in the order sent.</summary>
    private readonly Dictionary<string, BatchOrder> _orders = new(StringComparer.Ordinal);

    public async Task<bool[]> DeliverAsync(Forwarded[] batch, string sender, long seq)
    {
        // The grain's turns run one at a time: what is started here is started in batch order. A batch whose
        // predecessor is late waits for it a moment (a lost call never comes: Orleans delivers at most once).
        if (!_orders.TryGetValue(sender, out var order))
        {
            _orders[sender] = order = new BatchOrder();
        }

        var turn = order.TurnAsync(seq);
        if (!turn.IsCompleted)
        {
            await Task.WhenAny(turn, Task.Delay(BatchOrder.Patience));
        }

        // Started in order: a sender's stanzas are routed in order by TryRouteHereAsync, the rest side by side.
        var routed = new Task<bool>[batch.Length];
        for (var i = 0; i < batch.Length; i++)
        {
            routed[i] = node.TryRouteHereAsync(batch[i]);
        }

        order.Started(seq);
        return await Task.WhenAll(routed);
    }

    public Task<long[]> ToEdgesAsync(EdgeItem[] batch) => Task.FromResult(node.ToEdgesHere(batch));

    public Task<string> TakeWaitingAsync(string bare, string resumeId) => Task.FromResult(node.TakeEdgeWaitingHere(Core.Addressing.Jid.Parse(bare), resumeId));

    public Task<string[]> CheckpointsAsync(string domain) => node.CheckpointsHereAsync(domain);

    public Task BlockAsync(string account, DateTimeOffset until)
    {
        node.BlockHere(account, until);
        return Task.CompletedTask;
    }
}

/// <summary>Placement on the silo whose address (<see cref="SiloAddress.ToParsableString"/>) is the grain's key.</summary>
[GenerateSerializer]
[Immutable]
public sealed class SiloKeyPlacement : PlacementStrategy
{
    public static readonly SiloKeyPlacement Instance = new();
}

[AttributeUsage(AttributeTargets.Class, AllowMultiple = false)]
public sealed class SiloKeyPlacementAttribute : PlacementAttribute
{
    public SiloKeyPlacementAttribute()
        : base(SiloKeyPlacement.Instance)
    {
    }
}

internal sealed class SiloKeyPlacementDirector : IPlacementDirector
{
    public Task<SiloAddress> OnAddActivation(PlacementStrategy strategy, PlacementTarget target, IPlacementContext context)
    {
        var key = target.GrainIdentity.Key.ToString();
        foreach (var silo in context.GetCompatibleSilos(target))
        {
            if (silo.ToParsableString() == key)
            {
                return Task.FromResult(silo);
            }
        }

        throw new OrleansException($"node {key} is not a member of the cluster");
    }
}

/// <summary>The batches of one sending node, numbered from 1: each starts once the one before it has (on the node grain's turns).</summary>
internal sealed class BatchOrder
{
    /// <summary>How long a batch waits for one before it that has not come (lost with a failed call).</summary>
    public static readonly TimeSpan Patience = TimeSpan.FromSeconds(1);

    private readonly Dictionary<long, TaskCompletionSource> _waiting = [];
    private long _next = 1;

    /// <summary>Completes when the batch may start: at once if it is next (or late).</summary>
    public Task TurnAsync(long seq)
    {
        if (seq <= _next)
        {
            return Task.CompletedTask;
        }

        var turn = new TaskCompletionSource();
        _waiting[seq] = turn;
        return turn.Task;
    }

    /// <summary>The batch started: the next may.</summary>
    public void Started(long seq)
    {
        _waiting.Remove(seq);
        if (seq >= _next)
        {
            _next = seq + 1;
            if (_waiting.Remove(_next, out var next))
            {
                next.SetResult();
            }
        }
    }
}
