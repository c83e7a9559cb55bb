using Orleans.Runtime;
using Xmpp.Server.Cluster.Orleans;

namespace Xmpp.Tests.Server;

/// <summary>
/// Which failures of a grain call mean "that node is not there (now)": Orleans' own, and a cancellation that is not
/// the caller's (Orleans cancels the addressing of a message when a membership change interrupts its directory
/// lookup). Taken for the caller's own cancellation, it once ended a client's connection that had only sent a
/// message to a room whose node had just died.
/// </summary>
public sealed class UnreachableTests
{
    [Test]
    public void Orleans_failures_and_timeouts_are_unreachable()
    {
        Assert.That(Unreachable.Is(new OrleansException("gone"), CancellationToken.None), Is.True);
        Assert.That(Unreachable.Is(new SiloUnavailableException(), CancellationToken.None), Is.True);
        Assert.That(Unreachable.Is(new TimeoutException(), CancellationToken.None), Is.True);
    }

    [Test]
    public void A_cancellation_that_is_not_the_callers_is_unreachable_and_the_callers_own_is_not()
    {
        using var mine = new CancellationTokenSource();
        Assert.That(Unreachable.Is(new OperationCanceledException(), mine.Token), Is.True);
        Assert.That(Unreachable.Is(new TaskCanceledException(), mine.Token), Is.True);
        mine.Cancel();
        Assert.That(Unreachable.Is(new OperationCanceledException(mine.Token), mine.Token), Is.False);
    }

    [Test]
    public void Other_exceptions_are_bugs_not_absent_nodes()
    {
        Assert.That(Unreachable.Is(new InvalidOperationException(), CancellationToken.None), Is.False);
        Assert.That(Unreachable.Is(new ArgumentException("bad"), CancellationToken.None), Is.False);
    }
}
