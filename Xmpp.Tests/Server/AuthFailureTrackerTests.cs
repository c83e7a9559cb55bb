using System.Net;
using Xmpp.Server.Config;
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
        var tracker = new AuthFailureTracker(new AuthOptions { FailureDelay = TimeSpan.FromSeconds(1), MaxFailureDelay = TimeSpan.FromSeconds(5), FailuresPerIp = 0 }, new ManualTime());
        var ip = IPAddress.Parse("192.0.2.1");
        var delays = Enumerable.Range(0, 7).Select(_ => tracker.RecordFailure(ip).TotalSeconds).ToList();
        Assert.That(delays, Is.EqualTo(new double[] { 0, 0, 0, 1, 2, 4, 5 }));
        Assert.That(tracker.RecordFailure(IPAddress.Parse("192.0.2.2")), Is.EqualTo(TimeSpan.Zero), "per address");
    }

    [Test]
    public void Success_or_a_quiet_window_resets_the_count()
    {
        var time = new ManualTime();
        var tracker = new AuthFailureTracker(new AuthOptions { FailureDelay = TimeSpan.FromSeconds(1), MaxFailureDelay = TimeSpan.FromSeconds(60), FailuresPerIp = 0 }, time);
        var ip = IPAddress.Parse("192.0.2.1");
        for (var i = 0; i < 4; i++)
        {
            tracker.RecordFailure(ip);
        }

        tracker.RecordSuccess(ip, "juliet@example.com");
        Assert.That(tracker.RecordFailure(ip), Is.EqualTo(TimeSpan.Zero));
        for (var i = 0; i < 4; i++)
        {
            tracker.RecordFailure(ip);
        }

        time.Now += TimeSpan.FromMinutes(11);
        Assert.That(tracker.RecordFailure(ip), Is.EqualTo(TimeSpan.Zero));
    }

    [Test]
    public void An_address_is_blocked_after_the_limit_and_free_again_after_the_block_time()
    {
        var time = new ManualTime();
        var tracker = new AuthFailureTracker(new AuthOptions { FailureDelay = TimeSpan.Zero, FailuresPerIp = 5, FailuresPerAccount = 0, BlockTime = TimeSpan.FromMinutes(5) }, time);
        var ip = IPAddress.Parse("192.0.2.1");
        for (var i = 0; i < 4; i++)
        {
            tracker.RecordFailure(ip, "u" + i + "@example.com");
        }

        Assert.That(tracker.IsBlocked(ip), Is.False);
        tracker.RecordFailure(ip);
        Assert.That(tracker.IsBlocked(ip), Is.True);
        Assert.That(tracker.IsBlocked(IPAddress.Parse("192.0.2.2")), Is.False, "per address");

        // Attempts during the block do not extend it.
        time.Now += TimeSpan.FromMinutes(4);
        tracker.RecordFailure(ip);
        time.Now += TimeSpan.FromMinutes(1.5);
        Assert.That(tracker.IsBlocked(ip), Is.False);
        tracker.RecordFailure(ip);
        Assert.That(tracker.IsBlocked(ip), Is.False, "the count starts again after a block");
    }

    [Test]
    public void A_username_is_blocked_from_every_address_whether_or_not_the_account_exists()
    {
        var time = new ManualTime();
        var tracker = new AuthFailureTracker(new AuthOptions { FailureDelay = TimeSpan.Zero, FailuresPerIp = 0, FailuresPerAccount = 3 }, time);
        for (var i = 0; i < 3; i++)
        {
            tracker.RecordFailure(IPAddress.Parse("192.0.2." + (i + 1)), "juliet@example.com");
        }

        Assert.That(tracker.IsBlocked("juliet@example.com"), Is.True);
        Assert.That(tracker.IsBlocked(IPAddress.Parse("192.0.2.9")), Is.False, "addresses are not blocked by it");
        Assert.That(tracker.IsBlocked("romeo@example.com"), Is.False);
        Assert.That(tracker.IsBlocked(IPAddress.Parse("192.0.2.1")), Is.False, "no address limit configured");
    }

    [Test]
    public void Token_bucket_allows_the_burst_then_paces_at_the_rate()
    {
        var bucket = new TokenBucket(rate: 10, burst: 5);
        var f = System.Diagnostics.Stopwatch.Frequency;
        var t0 = System.Diagnostics.Stopwatch.GetTimestamp();
        Assert.That(Enumerable.Range(0, 5).All(_ => bucket.Take(t0) == TimeSpan.Zero), Is.True, "the burst at once");
        Assert.That(bucket.Take(t0), Is.EqualTo(TimeSpan.FromMilliseconds(100)), "the next one after 1/rate");
        Assert.That(bucket.Take(t0), Is.EqualTo(TimeSpan.FromMilliseconds(200)), "and the one after that later still");

        // Whoever waited as told finds the pace kept: each next stanza 100 ms after the previous one.
        var t1 = t0 + (f / 5);
        Assert.That(bucket.Take(t1), Is.EqualTo(TimeSpan.FromMilliseconds(100)).Within(TimeSpan.FromTicks(10)));
        var much = t1 + (f * 60);
        Assert.That(Enumerable.Range(0, 6).Count(_ => bucket.Take(much) == TimeSpan.Zero), Is.EqualTo(5), "never more than the burst");
    }

    [Test]
    public void Guesses_at_one_account_from_many_addresses_are_slowed_down()
    {
        var tracker = new AuthFailureTracker(new AuthOptions { FailureDelay = TimeSpan.FromSeconds(1), MaxFailureDelay = TimeSpan.FromSeconds(60), FailuresPerIp = 0, FailuresPerAccount = 0 }, new ManualTime());
        var delays = Enumerable.Range(0, 6).Select(i => tracker.RecordFailure(IPAddress.Parse("192.0.2." + (i + 1)), "juliet@example.com").TotalSeconds).ToList();
        Assert.That(delays, Is.EqualTo(new double[] { 0, 0, 0, 1, 2, 4 }));
    }
}
