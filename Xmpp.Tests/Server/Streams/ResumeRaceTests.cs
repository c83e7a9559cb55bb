using Xmpp.Core;
using Xmpp.Core.Xml;
using Xmpp.Server.Modules.StreamManagement;
using Xmpp.Server.Streams;
using Xmpp.Tests.EndToEnd;

namespace Xmpp.Tests.Server.Streams;

/// <summary>
/// XEP-0198 §5 while a stanza of the old stream is still being handled: in cluster mode a client's message to another
/// node is counted only once its forward got there (Cluster.ForwardWindow), so a client that resumes its session on
/// a new stream meanwhile gets a &lt;resumed h/&gt; without it and sends it again. The old stream's late count must
/// then not raise 'h' above what the client sent on the new one. The race is forced here by holding a stanza "in
/// handling" on the tracker, as the window does, across the resumption (in-memory streams, no sockets).
/// </summary>
public sealed class ResumeRaceTests
{
    private const string Sm = "urn:xmpp:sm:3";

    [Test]
    public async Task A_count_that_comes_after_the_session_was_resumed_on_another_stream_is_not_added()
    {
        await using var server = await TestServer.StartAsync(null, "alice@localhost:wonderland");
        await using var first = await StreamIn.StateAsync(server, C2sState.Established);
        first.Transport.Send($"<enable xmlns='{Sm}' resume='true'/>");
        var enabled = await first.NextAsync();
        Assert.That(enabled.Name, Is.EqualTo("enabled"), enabled.ToString());
        var previd = enabled.GetAttribute("id")!;

        // One stanza handled and counted the ordinary way: 'h' is 1.
        first.Transport.Send("<iq xmlns='jabber:client' type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
        var pong = await NextStanzaAsync(first);
        Assert.That(pong.GetAttribute("id"), Is.EqualTo("p1"));

        // A second one is under way on the first stream (as a windowed message whose forward has not completed) ...
        var tracker = (ManagedSession)first.Machine.Session!.Tracker!;
        Assert.That(tracker.BeginHandling(), Is.True);

        // ... when the client, which thinks that stream dead, resumes the session on a new one: 'h' there is 1.
        await using var second = await StreamIn.StateAsync(server, C2sState.AwaitingBind);
        second.Transport.Send($"<resume xmlns='{Sm}' previd='{previd}' h='1'/>");
        var resumed = await second.NextAsync();
        Assert.That((resumed.Name, resumed.GetAttribute("h")), Is.EqualTo(("resumed", "1")), resumed.ToString());

        // The late count of the old stream is not added: the client sends that stanza again on the new stream.
        tracker.Handled(first.Machine);
        Assert.That(await AskHAsync(second), Is.EqualTo("1"), "the old stream's late count was added after <resumed/>");

        // The client's resend counts on the new stream, as anything it sends there does.
        second.Transport.Send("<iq xmlns='jabber:client' type='get' id='p2' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
        Assert.That((await NextStanzaAsync(second)).GetAttribute("id"), Is.EqualTo("p2"));
        Assert.That(await AskHAsync(second), Is.EqualTo("2"));

        // Nothing is left counted as "in handling": a drain of the session (cluster mode's park) does not wait.
        Assert.That(tracker.QuiesceAsync().IsCompleted, Is.True, "the late count did not end its handling");
    }

    [Test]
    public async Task A_count_from_the_stream_that_still_holds_the_session_is_added()
    {
        await using var server = await TestServer.StartAsync(null, "alice@localhost:wonderland");
        await using var stream = await StreamIn.StateAsync(server, C2sState.Established);
        stream.Transport.Send($"<enable xmlns='{Sm}' resume='true'/>");
        Assert.That((await stream.NextAsync()).Name, Is.EqualTo("enabled"));

        var tracker = (ManagedSession)stream.Machine.Session!.Tracker!;
        Assert.That(tracker.BeginHandling(), Is.True);
        var quiet = tracker.QuiesceAsync();
        Assert.That(quiet.IsCompleted, Is.False, "a stanza in handling holds a drain until it is counted");
        tracker.Handled(stream.Machine);
        await quiet.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.That(tracker.HandledCount, Is.EqualTo(1));
    }

    /// <summary>Sends &lt;r/&gt; and returns the 'h' of the answer, skipping the server's own requests.</summary>
    private static async Task<string?> AskHAsync(StreamIn stream)
    {
        stream.Transport.Send($"<r xmlns='{Sm}'/>");
        while (true)
        {
            var e = await stream.NextAsync();
            if (e.Name == "a" && e.Namespace == Sm)
            {
                return e.GetAttribute("h");
            }

            Assert.That((e.Name, e.Namespace), Is.EqualTo(("r", Sm)), "only the server's own <r/> may come before the answer: " + e);
        }
    }

    /// <summary>The next stanza, past the server's &lt;r/&gt; requests.</summary>
    private static async Task<Element> NextStanzaAsync(StreamIn stream)
    {
        while (true)
        {
            var e = await stream.NextAsync();
            if (e.Namespace != Sm)
            {
                return e;
            }
        }
    }
}
