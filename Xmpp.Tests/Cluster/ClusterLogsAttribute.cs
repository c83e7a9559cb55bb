using NUnit.Framework.Interfaces;

namespace Xmpp.Tests.Cluster;

/// <summary>
/// Shows the cluster nodes' logs of a test that failed by an exception (a timeout, say): <see cref="ClusterNodes"/>
/// keeps them when it is disposed, before the test's outcome is known, and this shows them after the test if it
/// failed, and removes them either way.
/// </summary>
[AttributeUsage(AttributeTargets.Class | AttributeTargets.Method)]
public sealed class ClusterLogsAttribute : Attribute, ITestAction
{
    private static string KeptFolder(string testId) => Path.Combine(Path.GetTempPath(), "xmpp-cluster-logs", testId);

    public ActionTargets Targets => ActionTargets.Test;

    public void BeforeTest(ITest test)
    {
    }

    public void AfterTest(ITest test)
    {
        var kept = KeptFolder(test.Id);
        if (!System.IO.Directory.Exists(kept))
        {
            return;
        }

        if (TestContext.CurrentContext.Result.Outcome.Status == TestStatus.Failed)
        {
            Write(kept);
        }

        try
        {
            System.IO.Directory.Delete(kept, recursive: true);
        }
        catch (IOException)
        {
            // Left for the temp cleaner.
        }
    }

    /// <summary>The last lines of each node's log (all of them with XMPP_TEST_NODE_LOGS=all), to the test's output.</summary>
    internal static void Write(string folder)
    {
        foreach (var log in System.IO.Directory.GetFiles(folder, "n*.log").Order(StringComparer.Ordinal))
        {
            TestContext.Out.WriteLine($"---- {Path.GetFileNameWithoutExtension(log)} ----");
            TestContext.Out.WriteLine(string.Join('\n', File.ReadLines(log).TakeLast(Environment.GetEnvironmentVariable("XMPP_TEST_NODE_LOGS") == "all" ? int.MaxValue : 150)));
        }
    }

    /// <summary>Keeps the nodes' logs of the running test until its outcome is known.</summary>
    internal static void Keep(string folder)
    {
        var kept = KeptFolder(TestContext.CurrentContext.Test.ID);
        System.IO.Directory.CreateDirectory(kept);
        foreach (var log in System.IO.Directory.GetFiles(folder, "n*.log"))
        {
            File.Copy(log, Path.Combine(kept, Path.GetFileName(log)), overwrite: true);
        }
    }
}
