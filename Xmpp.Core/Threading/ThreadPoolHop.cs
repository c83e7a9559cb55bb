using System.Runtime.CompilerServices;

namespace Xmpp.Core.Threading;

/// <summary>
/// <c>await ThreadPoolHop.Instance</c>: continues on a thread-pool thread, at once when already on one, else
/// queued. For work that blocks or computes for long (SQLite, PBKDF2) where the caller may be a socket engine's
/// thread: with DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=1 (an administrator's opt-in, README "Benchmark")
/// socket completions continue there, and such a thread also serves every other connection's reads. On a
/// thread-pool thread (the default) it costs nothing.
/// </summary>
public readonly struct ThreadPoolHop : ICriticalNotifyCompletion
{
    public static ThreadPoolHop Instance => default;

    public ThreadPoolHop GetAwaiter() => this;

    public bool IsCompleted => Thread.CurrentThread.IsThreadPoolThread;

    public void GetResult()
    {
    }

    public void OnCompleted(Action continuation) =>
        ThreadPool.QueueUserWorkItem(static c => c(), continuation, preferLocal: false);

    public void UnsafeOnCompleted(Action continuation) =>
        ThreadPool.UnsafeQueueUserWorkItem(static c => c(), continuation, preferLocal: false);
}
