using Xmpp.Core.Threading;

namespace Xmpp.Tests.Core;

/// <summary>The hop off a socket engine's thread (or any thread outside the pool) before work that blocks.</summary>
[TestFixture]
public sealed class ThreadPoolHopTests
{
    [Test]
    public async Task From_a_thread_outside_the_pool_it_continues_on_the_pool()
    {
        static async Task<(bool Before, bool After)> HopAsync()
        {
            var before = Thread.CurrentThread.IsThreadPoolThread;
            await ThreadPoolHop.Instance;
            return (before, Thread.CurrentThread.IsThreadPoolThread);
        }

        Task<(bool Before, bool After)>? hop = null;
        var thread = new Thread(() => hop = HopAsync());
        thread.Start();
        Assert.That(thread.Join(TimeSpan.FromSeconds(30)), Is.True);
        var (before, after) = await hop!;
        Assert.That(before, Is.False);
        Assert.That(after, Is.True);
    }

    [Test]
    public async Task On_the_pool_it_does_not_queue_again()
    {
        var completedAtOnce = await Task.Run(() => ThreadPoolHop.Instance.GetAwaiter().IsCompleted);
        Assert.That(completedAtOnce, Is.True);
    }
}
