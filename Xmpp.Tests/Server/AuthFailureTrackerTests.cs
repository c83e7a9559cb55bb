using System.Net;
using Xmpp.Server.Net;

namespace Xmpp.Tests.Server;

public sealed class AuthFailureTrackerTests
{
    private sealed class ManualTime : TimeProvider
    {
        public DateTimeOffset Now { get; set; } = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

        public override DateTimeOffset GetUtcNow() => Now;
    }

    [Test]
    public void First_three_failures_are_free_then_the_delay_doubles_up_to_the_cap()
    {
        var tracker = new AuthFailureTracker(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(5), new ManualTime());
        var ip = IPAddress.Parse("192.0.2.1");
        var delays = Enumerable.Range(0, 7).Select(_ => tracker.RecordFailure(ip).TotalSeconds).ToList();
        Assert.That(delays, Is.EqualTo(new double[] { 0, 0, 0, 1, 2, 4, 5 }));
        Assert.That(tracker.RecordFailure(IPAddress.Parse("192.0.2.2")), Is.EqualTo(TimeSpan.Zero), "per address");
    }

    [Test]
    public void Success_or_a_quiet_window_resets_the_count()
    {
        var time = new ManualTime();
        var tracker = new AuthFailureTracker(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(60), time);
        var ip = IPAddress.Parse("192.0.2.1");
        for (var i = 0; i < 4; i++)
        {
            tracker.RecordFailure(ip);
        }

        tracker.RecordSuccess(ip);
        Assert.That(tracker.RecordFailure(ip), Is.EqualTo(TimeSpan.Zero));
        for (var i = 0; i < 4; i++)
        {
            tracker.RecordFailure(ip);
        }

        time.Now += TimeSpan.FromMinutes(11);
        Assert.That(tracker.RecordFailure(ip), Is.EqualTo(TimeSpan.Zero));
    }
}
