using System.Runtime.InteropServices;
using Xmpp.Server.Hosting;

namespace Xmpp.Tests.Server;

/// <summary>Freed native memory that the C library's allocator keeps is given back to the system (glibc's malloc_trim).</summary>
[TestFixture]
[NonParallelizable]
[CancelAfter(30_000)]
public sealed class FreedNativeMemoryTests
{
    [Test]
    public void Trimming_gives_back_memory_freed_below_a_block_still_in_use()
    {
        Assume.That(OperatingSystem.IsLinux(), "glibc's allocator");
        Assume.That(Environment.WorkingSet, Is.GreaterThan(0), "the working set");

        // 64 MB in small blocks, touched, then freed below one block that stays: glibc keeps such memory (it
        // returns an arena's memory only from its top), as after a burst of TLS handshakes. One retry: another
        // test's server in this process may trim at the same moment.
        long released = 0;
        for (var attempt = 0; attempt < 2 && released < 32L * 1024 * 1024; attempt++)
        {
            var blocks = new IntPtr[16_384];
            for (var i = 0; i < blocks.Length; i++)
            {
                blocks[i] = Marshal.AllocHGlobal(4000);
                for (var offset = 0; offset < 4000; offset += 1000)
                {
                    Marshal.WriteByte(blocks[i], offset, 1);
                }
            }

            var kept = Marshal.AllocHGlobal(4000);
            try
            {
                foreach (var block in blocks)
                {
                    Marshal.FreeHGlobal(block);
                }

                var before = Environment.WorkingSet;
                Assert.That(FreedNativeMemory.Trim(), Is.True, "glibc has malloc_trim");
                released = before - Environment.WorkingSet;
            }
            finally
            {
                Marshal.FreeHGlobal(kept);
            }
        }

        Assert.That(released, Is.GreaterThan(32L * 1024 * 1024), "at least half of the 64 MB freed went back to the system");
    }

    [Test]
    public void Giving_back_after_the_start_collects_the_whole_heap()
    {
        Assume.That(OperatingSystem.IsLinux(), "Linux only");
        Assume.That(GC.GetGCMemoryInfo().HeapSizeBytes, Is.LessThanOrEqualTo(FreedNativeMemory.CollectBelowBytes), "a heap small enough to be collected");
        using var logs = new NLog.LogFactory();
        var log = logs.GetLogger("test");
        var full = GC.CollectionCount(2);

        FreedNativeMemory.GiveBack(log, "after the start");

        Assert.That(GC.CollectionCount(2), Is.GreaterThan(full), "one full collection");
    }
}
