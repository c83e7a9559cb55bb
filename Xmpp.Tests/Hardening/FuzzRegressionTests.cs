using Xmpp.Fuzz;

namespace Xmpp.Tests.Hardening;

/// <summary>
/// Replays the fuzzers' seed corpus and every input that ever made a fuzz target fail (fuzz/regressions)
/// through the same targets that afl-fuzz runs (fuzz/run), without instrumentation.
/// </summary>
[TestFixture]
[CancelAfter(300_000)]
public sealed class FuzzRegressionTests
{
    public static IEnumerable<TestCaseData> Inputs()
    {
        var fuzz = Path.Combine(RepositoryRoot(), "fuzz");
        foreach (var folder in new[] { "corpus", "regressions" })
        {
            foreach (var target in FuzzTargets.Names)
            {
                var dir = Path.Combine(fuzz, folder, target);
                if (!Directory.Exists(dir))
                {
                    continue;
                }

                foreach (var file in Directory.GetFiles(dir).Order(StringComparer.Ordinal))
                {
                    yield return new TestCaseData(target, file).SetName($"{target}: {folder}/{Path.GetFileName(file)}");
                }
            }
        }
    }

    [Test]
    public void EveryTargetHasSeedsAndTheRegressionFolderExists()
    {
        var fuzz = Path.Combine(RepositoryRoot(), "fuzz");
        foreach (var target in FuzzTargets.Names)
        {
            Assert.That(Directory.GetFiles(Path.Combine(fuzz, "corpus", target)), Is.Not.Empty, target);
            Assert.That(Directory.Exists(Path.Combine(fuzz, "regressions", target)), Is.True, target);
        }
    }

    [TestCaseSource(nameof(Inputs))]
    public async Task InputIsHandled(string target, string file)
    {
        var input = await File.ReadAllBytesAsync(file);
        if (target == "stream")
        {
            await using var harness = await StreamTarget.Harness.CreateAsync();
            await harness.RunAsync(input);
        }
        else
        {
            FuzzTargets.Get(target)(input);
        }
    }

    private static string RepositoryRoot()
    {
        var dir = new DirectoryInfo(TestContext.CurrentContext.TestDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "XmppServer.sln")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException("XmppServer.sln not found above the test directory");
    }
}
