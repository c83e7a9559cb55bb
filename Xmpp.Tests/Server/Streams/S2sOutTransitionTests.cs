using Xmpp.Core;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;
using Xmpp.Server.Streams;

namespace Xmpp.Tests.Server.Streams;

/// <summary>
/// The outgoing server stream's transition table, cell by cell: for every state and every kind of element, a stream
/// from a.test to b.test is driven into the state through the connection core over an in-memory transport (the test
/// plays b.test), the element is fed, and what the stream does is what <see cref="S2sOutTransitions"/> says: the
/// action's visible effect, or the RFC's stream error. A stanza waits in the stream's queue from the start: it is
/// written when the stream becomes ready.
/// </summary>
[Parallelizable(ParallelScope.Children)]
public sealed class S2sOutTransitionTests
{
    private const string Db = "xmlns:db='jabber:server:dialback'";
    private const string Stream = "xmlns:stream='http://etherx.jabber.org/streams'";
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);
    private S2sTestServers _servers = null!;

    [OneTimeSetUp]
    public async Task StartAsync() => _servers = await S2sTestServers.StartAsync();

    [OneTimeTearDown]
    public async Task StopAsync() => await _servers.DisposeAsync();

    public static IEnumerable<TestCaseData> Cells() =>
        from state in Enum.GetValues<S2sOutState>()
        from kind in Enum.GetValues<S2sOutElementKind>()
        select new TestCaseData(state, kind).SetName($"{state} x {kind}: {S2sOutTransitions.For(state, kind)}");

    [Test]
    public void Every_cell_is_filled_and_every_element_kind_is_classified()
    {
        foreach (var state in Enum.GetValues<S2sOutState>())
        {
            foreach (var kind in Enum.GetValues<S2sOutElementKind>())
            {
                var rule = S2sOutTransitions.For(state, kind);
                Assert.That(rule.IsLegal ^ rule.Refusal is not null, Is.True, $"{state} x {kind}");
                Assert.That(OutgoingS2sStateMachine.Classify(Sample(kind)), Is.EqualTo(kind));
            }
        }

        // RFC 6120 §4.3.2: the receiving entity's features come first.
        Assert.That(S2sOutTransitions.For(S2sOutState.AwaitingFeatures, S2sOutElementKind.Other).Refusal!.Condition, Is.EqualTo(StreamErrorCondition.UnsupportedStanzaType));

        // XEP-0220 §2.2: answers to our db:verify questions are taken whatever our own authentication's state.
        foreach (var state in new[] { S2sOutState.AwaitingFeatures, S2sOutState.AwaitingProceed, S2sOutState.AwaitingSaslResult, S2sOutState.AwaitingDialbackResult, S2sOutState.Ready })
        {
            Assert.That(S2sOutTransitions.For(state, S2sOutElementKind.DialbackVerify).Action, Is.EqualTo(S2sOutAction.VerifyAnswer), state.ToString());
        }
    }

    [TestCaseSource(nameof(Cells))]
    public async Task Cell(S2sOutState state, S2sOutElementKind kind)
    {
        var transport = new S2sTestTransport();
        var machine = new OutgoingS2sStateMachine(_servers.ContextA, _servers.ContextA.S2s, "a.test", "b.test");
        Assert.That(machine.Send(Waiting()), Is.EqualTo(Enqueued.Queued));
        var connection = machine.Attach(transport, directTls: false, CancellationToken.None);
        var rule = S2sOutTransitions.For(state, kind);
        if (state == S2sOutState.Connecting)
        {
            // Before the connection core runs there is no stream to read from: the machine is asked directly.
            Assert.That(machine.State, Is.EqualTo(state));
            var refused = Assert.ThrowsAsync<XmppStreamException>(async () => await machine.OnElementAsync(Sample(kind), CancellationToken.None));
            Assert.That(refused!.Condition, Is.EqualTo(rule.Refusal!.Condition), rule.ToString());
            return;
        }

        var run = connection.RunAsync();
        try
        {
            await DriveAsync(transport, machine, state);
            Assert.That(machine.State, Is.EqualTo(state), "driven into the state");

            // A question asked before its answer comes: the answer completes it (XEP-0220 §2.2).
            var question = rule.Action == S2sOutAction.VerifyAnswer ? machine.VerifyAsync("probe", "key", CancellationToken.None) : null;
            transport.Send(Sample(kind));
            if (rule.Refusal is { } refusal)
            {
                Assert.That((await transport.ClosedAsync())?.Condition, Is.EqualTo(refusal.Condition), rule.ToString());
            }
            else if (question is not null)
            {
                Assert.That(await question.WaitAsync(Wait), Is.True, "the answer said valid");
            }
            else
            {
                await ExpectAsync(transport, machine, rule.Action!.Value, run);
            }
        }
        finally
        {
            transport.End();
            await run.WaitAsync(Wait);
        }
    }

    /// <summary>Plays b.test until the stream is in <paramref name="state"/>.</summary>
    private async Task DriveAsync(S2sTestTransport transport, OutgoingS2sStateMachine machine, S2sOutState state)
    {
        // RFC 6120 §4.2: the initiating entity's header first.
        var header = await transport.NextAsync();
        Assert.That((header.Kind, header.Header?.From, header.Header?.To), Is.EqualTo((OutputKind.Header, "a.test", "b.test")));
        if (state == S2sOutState.AwaitingHeader)
        {
            return;
        }

        transport.Header("b.test", "a.test", id: "in-1");
        await transport.IdleAsync();
        if (state == S2sOutState.AwaitingFeatures)
        {
            return;
        }

        transport.Send(Sample(S2sOutElementKind.Features));
        Assert.That((await transport.NextElementAsync()).Name, Is.EqualTo("starttls"));
        if (state == S2sOutState.AwaitingProceed)
        {
            return;
        }

        transport.Send(Sample(S2sOutElementKind.TlsProceed));
        Assert.That((await transport.NextAsync()).Kind, Is.EqualTo(OutputKind.Header), "a new stream after TLS");
        transport.Header("b.test", "a.test", id: "in-2");

        // a.test's certificate is valid by its own rules (the test CA): EXTERNAL is tried first (XEP-0178).
        transport.Send($"<stream:features {Stream}><mechanisms xmlns='{Ns.Sasl}'><mechanism>EXTERNAL</mechanism></mechanisms><dialback xmlns='{Ns.DialbackFeature}'/></stream:features>");
        var auth = await transport.NextElementAsync();
        Assert.That((auth.Name, auth.GetAttribute("mechanism")), Is.EqualTo(("auth", "EXTERNAL")));
        if (state == S2sOutState.AwaitingSaslResult)
        {
            return;
        }

        // Refused: dialback on the same stream, with a.test's key for b.test's stream id (XEP-0220 §2.1.1).
        transport.Send(Sample(S2sOutElementKind.SaslFailure));
        var result = await transport.NextElementAsync();
        Assert.That((result.Name, result.Text), Is.EqualTo(("result", _servers.ContextA.S2s.Dialback.Key("b.test", "a.test", "in-2"))));
        if (state == S2sOutState.AwaitingDialbackResult)
        {
            return;
        }

        transport.Send(Sample(S2sOutElementKind.DialbackResult));
        Assert.That((await transport.NextElementAsync()).GetAttribute("id"), Is.EqualTo("waiting"), "the waiting stanza goes out once ready");
        if (state == S2sOutState.Ready)
        {
            return;
        }

        machine.CheckIdle(Environment.TickCount64 + (long)TimeSpan.FromDays(1).TotalMilliseconds, 0);
        Assert.That(await transport.ClosedAsync(), Is.Null, "the idle close has no error");
    }

    /// <summary>What each action visibly does on the stream.</summary>
    private static async Task ExpectAsync(S2sTestTransport transport, OutgoingS2sStateMachine machine, S2sOutAction action, Task run)
    {
        switch (action)
        {
            case S2sOutAction.Negotiate:
                // Before TLS, with <starttls/> offered: STARTTLS (RFC 6120 §5.4.2.1).
                Assert.That((await transport.NextElementAsync()).Name, Is.EqualTo("starttls"));
                break;
            case S2sOutAction.StartTls:
                // RFC 6120 §5.4.3.3: the handshake, then our new header.
                Assert.That((await transport.NextAsync()).Kind, Is.EqualTo(OutputKind.Header));
                Assert.That((transport.TlsNegotiations, transport.IsSecure), Is.EqualTo((1, true)));
                Assert.That(machine.State, Is.EqualTo(S2sOutState.AwaitingHeader));
                break;
            case S2sOutAction.SaslSuccess:
                // RFC 6120 §6.4.6: a new stream, on the same TLS.
                Assert.That((await transport.NextAsync()).Kind, Is.EqualTo(OutputKind.Header));
                Assert.That((transport.TlsNegotiations, machine.State), Is.EqualTo((1, S2sOutState.AwaitingHeader)));
                break;
            case S2sOutAction.SaslRefused:
                Assert.That((await transport.NextElementAsync()).Name, Is.EqualTo("result"), "dialback next");
                Assert.That(machine.State, Is.EqualTo(S2sOutState.AwaitingDialbackResult));
                break;
            case S2sOutAction.DialbackResult:
                Assert.That((await transport.NextElementAsync()).GetAttribute("id"), Is.EqualTo("waiting"), "ready: the waiting stanza goes out");
                Assert.That(machine.State, Is.EqualTo(S2sOutState.Ready));
                break;
            case S2sOutAction.TlsRefused or S2sOutAction.PeerError:
                Assert.That(await transport.ClosedAsync(), Is.Null, "our closing tag, without an error");
                Assert.That(machine.State, Is.EqualTo(S2sOutState.Closing));
                break;
            case S2sOutAction.Ignore when machine.State == S2sOutState.Closing:
                // After our closing tag nothing is answered (RFC 6120 §4.4).
                transport.End();
                await run.WaitAsync(Wait);
                Assert.That(transport.Written().Where(i => i.Kind != OutputKind.Close), Is.Empty);
                break;
            default:
                // Dropped, and the stream goes on: an answer to a question asked now is still taken.
                var question = machine.VerifyAsync("after", "key", CancellationToken.None);
                transport.Send($"<db:verify {Db} from='b.test' to='a.test' id='after' type='valid'/>");
                Assert.That(await question.WaitAsync(Wait), Is.True);
                Assert.That(transport.Written().Select(i => i.Element?.Name), Is.All.EqualTo("verify"), "nothing but the question was written");
                break;
        }
    }

    /// <summary>The stanza that waits in the queue until the stream is ready.</summary>
    private static Element Waiting() =>
        ElementParser.Parse("<message xmlns='jabber:client' from='alice@a.test/r' to='bob@b.test' id='waiting' type='headline'><body>x</body></message>");

    /// <summary>An element of each kind, as b.test would send it.</summary>
    private static Element Sample(S2sOutElementKind kind) => ElementParser.Parse(kind switch
    {
        S2sOutElementKind.Features => $"<stream:features {Stream}><starttls xmlns='{Ns.Tls}'/><dialback xmlns='{Ns.DialbackFeature}'/></stream:features>",
        S2sOutElementKind.TlsProceed => $"<proceed xmlns='{Ns.Tls}'/>",
        S2sOutElementKind.TlsFailure => $"<failure xmlns='{Ns.Tls}'/>",
        S2sOutElementKind.SaslSuccess => $"<success xmlns='{Ns.Sasl}'/>",
        S2sOutElementKind.SaslFailure => $"<failure xmlns='{Ns.Sasl}'><not-authorized/></failure>",
        S2sOutElementKind.DialbackResult => $"<db:result {Db} from='b.test' to='a.test' type='valid'/>",
        S2sOutElementKind.DialbackVerify => $"<db:verify {Db} from='b.test' to='a.test' id='probe' type='valid'/>",
        S2sOutElementKind.StreamError => $"<stream:error {Stream}><conflict xmlns='{Ns.Streams}'/></stream:error>",
        _ => "<message xmlns='jabber:client' from='bob@b.test' to='alice@a.test'><body>on the wrong stream</body></message>",
    });
}
