using System.Runtime.InteropServices;
using NLog;

namespace Xmpp.Server.Hosting;

/// <summary>
/// Gives back to the system the memory that the C library's allocator keeps once a burst is over. OpenSSL's
/// handshakes, SQLite and the runtime allocate with malloc from several threads, each thread's arena keeps
/// what was freed for reuse, and glibc returns an arena's memory only from its top: after 10,500 logins the
/// server was 322 MB resident, of which `malloc_trim(0)` gave back 90 MB (bench/README, 2026-12-06), memory
/// an admin would otherwise see held until the next restart. So the server looks once a minute, and at the
/// first look that finds it quiet after a busy spell (little allocated since the look before), a full
/// collection gives back the GC's share (the burst's dead objects in the oldest generation, which an idle
/// server never collects otherwise) and the free pages of every arena go back (glibc's malloc_trim, which
/// unmaps whole free pages inside arenas too). A busy server reuses that memory and is left alone. Other C
/// libraries (musl) have no malloc_trim: then only the collection is done.
/// </summary>
internal static partial class FreedNativeMemory
{
    /// <summary>Allocated by the GC between two looks, at most, for the server to count as quiet.</summary>
    internal const long QuietBytes = 32L * 1024 * 1024;

    /// <summary>Heap size (after the last collection) up to which a quiet spell also gets a full, decommitting collection.</summary>
    internal const long CollectBelowBytes = 256L * 1024 * 1024;

    /// <summary>Looks once every <paramref name="period"/> until <paramref name="cancellationToken"/> ends (Linux only).</summary>
    public static async Task RunAsync(Logger log, TimeSpan period, CancellationToken cancellationToken)
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        using var timer = new PeriodicTimer(period);
        var allocated = GC.GetTotalAllocatedBytes();
        var trimmedAtRest = false;
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false))
            {
                var now = GC.GetTotalAllocatedBytes();
                var quiet = now - allocated <= QuietBytes;
                allocated = now;
                if (!quiet)
                {
                    trimmedAtRest = false;
                    continue;
                }

                // Once per quiet spell: nothing more is freed while nothing happens.
                if (trimmedAtRest)
                {
                    continue;
                }

                trimmedAtRest = true;
                GiveBack(log, "after a busy spell");
            }
        }
        catch (OperationCanceledException)
        {
            // Shutdown.
        }
    }

    /// <summary>
    /// One full, decommitting collection (small heaps only) and the allocator's free pages back to the system
    /// (Linux only). Also once at the end of <c>xmppserver run</c>'s start, which is a busy spell of its own.
    /// </summary>
    public static void GiveBack(Logger log, string when)
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        var before = Environment.WorkingSet;

        // The GC's share: what the burst left in the oldest generation stays there, dead and committed,
        // until a full collection, which an idle server never needs otherwise. One that gives back what
        // it frees, unless the heap is so large that its pause would be felt.
        if (GC.GetGCMemoryInfo().HeapSizeBytes <= CollectBelowBytes)
        {
            GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        }

        var trimmed = Trim();
        var after = Environment.WorkingSet;
        log.Debug(
            "Memory: {Released} MB given back {When} ({Resident} MB resident){Note}",
            Math.Max(0, before - after) / (1024 * 1024),
            when,
            after / (1024 * 1024),
            trimmed ? string.Empty : "; this C library has no malloc_trim, so freed native memory stays with its allocator");
    }

    /// <summary>Returns the allocator's free pages to the system; false where glibc's malloc_trim is missing.</summary>
    internal static bool Trim()
    {
        try
        {
            // 1 when memory was given back, 0 when there was none to give: either way it ran.
            _ = malloc_trim(0);
            return true;
        }
        catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }
    }

    // glibc's soname: a C library without it (musl) has no malloc_trim either.
    [LibraryImport("libc.so.6")]
    private static partial int malloc_trim(nuint pad);
}
