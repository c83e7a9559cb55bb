namespace Xmpp.Server.Hosting;

/// <summary>Runtime settings that depend on the machine, applied first thing in Main, before the thread pool starts.</summary>
internal static class RuntimeTuning
{
    /// <summary>The runtime's setting: how many times an idle thread-pool thread looks for work before it sleeps.</summary>
    internal const string SpinLimit = "System.Threading.ThreadPool.UnfairSemaphoreSpinLimit";

    /// <summary>
    /// On one processor (a small VPS, or the server pinned to a core), an idle thread-pool thread does not spin.
    /// There, each of its up to 70 rounds is a sched_yield that hands the processor to the thread that would
    /// have queued the work, and nothing else can run on it meanwhile: on one core these yields and the context
    /// switches they caused were 15% of a login's CPU (bench/README, 2026-12-05). On two or more processors the
    /// runtime's default stays: there a spinning thread does catch work another core queues, and with the spinning
    /// off everywhere the interop suite failed now and then on timing (README, "Running on a small machine").
    /// An explicit setting (runtimeconfig.json, DOTNET_ThreadPool_UnfairSemaphoreSpinLimit) is left alone.
    /// </summary>
    public static void Apply()
    {
        if (SpinsNotNeeded(Environment.ProcessorCount, AppContext.GetData(SpinLimit), Environment.GetEnvironmentVariable))
        {
            AppContext.SetData(SpinLimit, 0);
        }
    }

    internal static bool SpinsNotNeeded(int processors, object? configured, Func<string, string?> environment) =>
        processors == 1
        && configured is null
        && environment("DOTNET_ThreadPool_UnfairSemaphoreSpinLimit") is null
        && environment("COMPlus_ThreadPool_UnfairSemaphoreSpinLimit") is null;
}
