using Xmpp.Server.Hosting;

namespace Xmpp.Tests.Server;

/// <summary>The runtime settings the server chooses from the machine at start.</summary>
[TestFixture]
public sealed class RuntimeTuningTests
{
    [Test]
    public void Thread_pool_spinning_is_off_on_one_processor_only_and_never_against_an_explicit_setting()
    {
        static string? None(string _) => null;
        Assert.That(RuntimeTuning.SpinsNotNeeded(1, null, None), Is.True);
        Assert.That(RuntimeTuning.SpinsNotNeeded(2, null, None), Is.False);
        Assert.That(RuntimeTuning.SpinsNotNeeded(1, 30, None), Is.False, "runtimeconfig.json says");
        Assert.That(RuntimeTuning.SpinsNotNeeded(1, null, n => n == "DOTNET_ThreadPool_UnfairSemaphoreSpinLimit" ? "50" : null), Is.False, "the environment says");
    }
}
