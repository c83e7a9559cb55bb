using Xmpp.Server.Cluster;
using Xmpp.Server.Cluster.Orleans;

namespace Xmpp.Tests.Server;

/// <summary>
/// Cluster mode's window of a client's messages on their way to another node: each counts as handled (XEP-0198's
/// 'h') once it got there and every message before it did, never out of order.
/// </summary>
[TestFixture]
[CancelAfter(10_000)]
public sealed class ForwardWindowTests
{
    [Test]
    public void A_message_with_nothing_under_way_counts_at_once()
    {
        var window = new ForwardWindow();
        var handled = new List<int>();
        window.Completed(null, () => handled.Add(1));
        Assert.That(handled, Is.EqualTo(new[] { 1 }));
        Assert.That(window.Tail.IsCompleted, Is.True);
    }

    [Test]
    public async Task Messages_count_in_the_order_sent_whichever_arrives_first()
    {
        var window = new ForwardWindow();
        var handled = new List<int>();
        var first = new TaskCompletionSource();
        var second = new TaskCompletionSource();
        window.Completed(first.Task, () => { lock (handled) { handled.Add(1); } });
        window.Completed(second.Task, () => { lock (handled) { handled.Add(2); } });

        // A local message after them (nothing under way) still counts after them.
        window.Completed(null, () => { lock (handled) { handled.Add(3); } });
        Assert.That(window.Tail.IsCompleted, Is.False);

        second.SetResult();
        await Task.Yield();
        lock (handled)
        {
            Assert.That(handled, Is.Empty, "the second message waits for the first");
        }

        first.SetResult();
        await window.Tail;
        Assert.That(handled, Is.EqualTo(new[] { 1, 2, 3 }));
    }

    [Test]
    public async Task A_failed_forward_still_counts_and_does_not_stop_the_window()
    {
        var window = new ForwardWindow();
        var handled = 0;
        window.Completed(Task.FromException(new InvalidOperationException("node gone")), () => Interlocked.Increment(ref handled));
        window.Completed(Task.CompletedTask, () => Interlocked.Increment(ref handled));
        await window.Tail;
        Assert.That(handled, Is.EqualTo(2));
    }

    [Test]
    public async Task The_window_is_full_at_its_limit_and_empties_as_forwards_finish()
    {
        var window = new ForwardWindow();
        var gate = new TaskCompletionSource();
        for (var i = 0; i < ForwardWindow.MaxInFlight; i++)
        {
            Assert.That(window.Full, Is.False);
            window.Completed(gate.Task, () => { });
        }

        Assert.That(window.Full, Is.True);
        gate.SetResult();
        await window.Tail;
        Assert.That(window.Full, Is.False);
    }

    [Test]
    public void A_scope_collects_the_forwards_of_its_message_until_closed()
    {
        var slot = new AsyncLocal<PipelineScope?>();
        var scope = new PipelineScope(Task.CompletedTask);
        Assert.That(scope.IsOpen, Is.True);
        Assert.That(scope.Close(), Is.Null, "nothing under way");

        slot.Value = scope;
        using (var other = new PipelineScope(Task.CompletedTask, scope, slot))
        {
            slot.Value = other;
            var one = new TaskCompletionSource();
            other.Add(one.Task);
            Assert.That(other.Close(), Is.SameAs(one.Task));
            Assert.That(other.IsOpen, Is.False, "a forward started later is waited for by its own caller");
        }

        Assert.That(slot.Value, Is.SameAs(scope), "disposing gives the caller's scope back");
    }

    [Test]
    public void A_node_batches_start_in_the_order_sent_whatever_order_they_arrive_in()
    {
        var order = new BatchOrder();
        Assert.That(order.TurnAsync(1).IsCompleted, Is.True, "the first batch goes at once");
        var third = order.TurnAsync(3);
        var second = order.TurnAsync(2);
        Assert.That(second.IsCompleted || third.IsCompleted, Is.False, "2 and 3 wait for 1");
        order.Started(1);
        Assert.That(second.IsCompleted, Is.True);
        Assert.That(third.IsCompleted, Is.False, "3 waits for 2");
        order.Started(2);
        Assert.That(third.IsCompleted, Is.True);
        order.Started(3);
    }

    [Test]
    public void A_batch_that_never_came_is_passed_over_and_one_that_comes_late_goes_at_once()
    {
        var order = new BatchOrder();
        order.Started(1);
        var third = order.TurnAsync(3);
        Assert.That(third.IsCompleted, Is.False);

        // Its wait ran out (NodeGrain waits BatchOrder.Patience): it starts, and so may 4.
        order.Started(3);
        Assert.That(order.TurnAsync(4).IsCompleted, Is.True);
        Assert.That(order.TurnAsync(2).IsCompleted, Is.True, "the lost one, if it comes after all, does not wait");
    }
}
