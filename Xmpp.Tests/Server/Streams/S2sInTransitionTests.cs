using Xmpp.Core;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;
using Xmpp.Server.Streams;

namespace Xmpp.Tests.Server.Streams;

/// <summary>
/// The incoming server stream's transition table, cell by cell: for every state and every kind of element, the
/// machine is driven into the state through the connection core over an in-memory transport, the element is fed,
/// and what the stream does is what <see cref="S2sInTransitions"/> says: the action's answer, or the RFC's stream error.
/// </summary>
[Parallelizable(ParallelScope.Children)]
public sealed class S2sInTransitionTests
{
    private const string DialbackNs = "xmlns:db='jabber:server:dialback'";
    private S2sTestServers _servers = null!;

    [OneTimeSetUp]
    public async Task StartAsync() => _servers = await S2sTestServers.StartAsync();

    [OneTimeTearDown]
    public async Task StopAsync() => await _servers.DisposeAsync();

    public static IEnumerable<TestCaseData> Cells() =>
        from state in Enum.GetValues<S2sInState>()
        from kind in Enum.GetValues<S2sInElementKind>()
        select new TestCaseData(state, kind).SetName($"{state} x {kind}: {S2sInTransitions.For(state, kind)}");

    [Test]
    public void Every_cell_is_filled_and_every_element_kind_is_classified()
    {
        foreach (var state in Enum.GetValues<S2sInState>())
        {
            foreach (var kind in Enum.GetValues<S2sInElementKind>())
            {
                Assert.That(S2sInTransitions.For(state, kind), Is.Not.Null, $"{state} x {kind}");
                Assert.That(IncomingS2sStateMachine.Classify(Sample(kind, "0")), Is.EqualTo(kind));
            }
        }

        Assert.That(S2sInTransitions.For(S2sInState.AwaitingStartTls, S2sInElementKind.DialbackResult).Refusal!.Condition, Is.EqualTo(StreamErrorCondition.PolicyViolation), "RFC 6120 §5.3.1");
        Assert.That(S2sInTransitions.For(S2sInState.AwaitingAuthentication, S2sInElementKind.Stanza).Refusal!.Condition, Is.EqualTo(StreamErrorCondition.NotAuthorized), "RFC 6120 §4.9.3.12");
    }

    [TestCaseSource(nameof(Cells))]
    public async Task Cell(S2sInState state, S2sInElementKind kind)
    {
        var transport = new S2sTestTransport();
        var connection = IncomingS2sStateMachine.Create(_servers.ContextB, transport, directTls: false, CancellationToken.None);
        var machine = (IncomingS2sStateMachine)connection.Protocol;
        var run = connection.RunAsync();
        try
        {
            var streamId = await DriveAsync(transport, machine, state);
            Assert.That(machine.State, Is.EqualTo(state), "driven into the state");
            var rule = S2sInTransitions.For(state, kind);
            var secure = transport.IsSecure;
            transport.Send(Sample(kind, streamId, _servers.ContextA.S2s.Dialback.Key("b.test", "a.test", streamId)));
            if (rule.Refusal is { } refusal)
            {
                Assert.That((await transport.ClosedAsync())?.Condition, Is.EqualTo(refusal.Condition), rule.ToString());
            }
            else if (state == S2sInState.Closing)
            {
                // After our closing tag nothing is answered (RFC 6120 §4.4).
                transport.End();
                await run.WaitAsync(TimeSpan.FromSeconds(10));
                Assert.That(transport.Written().Where(i => i.Kind != OutputKind.Close), Is.Empty);
            }
            else
            {
                await ExpectAsync(transport, rule.Action!.Value, secure);
            }
        }
        finally
        {
            transport.End();
            await run.WaitAsync(TimeSpan.FromSeconds(10));
        }
    }

    /// <summary>Feeds the peer's side until the machine is in <paramref name="state"/>; returns the current stream id.</summary>
    private async Task<string> DriveAsync(S2sTestTransport transport, IncomingS2sStateMachine machine, S2sInState state)
    {
        if (state == S2sInState.AwaitingHeader)
        {
            return string.Empty;
        }

        var id = await OpenAsync(transport);
        if (state == S2sInState.AwaitingStartTls)
        {
            return id;
        }

        transport.Send($"<starttls xmlns='{Ns.Tls}'/>");
        Assert.That((await transport.NextElementAsync()).Name, Is.EqualTo("proceed"));
        id = await OpenAsync(transport);
        if (state == S2sInState.AwaitingAuthentication)
        {
            return id;
        }

        // XEP-0220 §2.1: a.test's own key for this stream, which b.test checks with a.test over TCP.
        var key = _servers.ContextA.S2s.Dialback.Key("b.test", "a.test", id);
        transport.Send($"<db:result {DialbackNs} from='a.test' to='b.test'>{key}</db:result>");
        Assert.That((await transport.NextElementAsync()).GetAttribute("type"), Is.EqualTo("valid"));
        if (state == S2sInState.Authenticated)
        {
            return id;
        }

        machine.CheckIdle(Environment.TickCount64 + (long)TimeSpan.FromDays(1).TotalMilliseconds, 0);
        Assert.That(await transport.ClosedAsync(), Is.Null, "the idle close has no error");
        return id;
    }

    private static async Task<string> OpenAsync(S2sTestTransport transport)
    {
        transport.Header("a.test", "b.test");
        var header = await transport.NextAsync();
        Assert.That(header.Kind, Is.EqualTo(OutputKind.Header));
        Assert.That((await transport.NextElementAsync()).Name, Is.EqualTo("features"));
        return header.Header!.Id!;
    }

    /// <summary>What each action visibly does on the stream.</summary>
    /// <param name="secure">Whether TLS was up before the element (the machine may have negotiated it since).</param>
    private static async Task ExpectAsync(S2sTestTransport transport, S2sInAction action, bool secure)
    {
        switch (action)
        {
            case S2sInAction.StartTls when secure:
                Assert.That((await transport.ClosedAsync())?.Condition, Is.EqualTo(StreamErrorCondition.PolicyViolation), "RFC 6120 §5.4.3.1: TLS once");
                break;
            case S2sInAction.StartTls:
                Assert.That((await transport.NextElementAsync()).Name, Is.EqualTo("proceed"));

                // <proceed/> is written before the handshake starts: the count is read once the stream waits for the new header.
                await transport.IdleAsync();
                Assert.That((transport.TlsNegotiations, transport.IsSecure), Is.EqualTo((1, true)));
                break;
            case S2sInAction.SaslExternal:
                var failure = await transport.NextElementAsync();
                Assert.That((failure.Name, failure.FirstElement()!.Name), Is.EqualTo(("failure", "not-authorized")), "no certificate proves a.test");
                break;
            case S2sInAction.DialbackResult:
                Assert.That((await transport.NextElementAsync()).GetAttribute("type"), Is.EqualTo("valid"));
                break;
            case S2sInAction.DialbackVerify:
                var verify = await transport.NextElementAsync();
                Assert.That((verify.Name, verify.GetAttribute("type")), Is.EqualTo(("verify", "invalid")), "not a key of b.test's");
                break;
            case S2sInAction.PeerError:
                Assert.That(await transport.ClosedAsync(), Is.Null, "our closing tag, without an error");
                break;
            default:
                // Routed or dropped, and the stream goes on: a db:verify question is answered next.
                transport.Send($"<db:verify {DialbackNs} from='a.test' to='b.test' id='probe'>0</db:verify>");
                Assert.That((await transport.NextElementAsync()).GetAttribute("id"), Is.EqualTo("probe"));
                break;
        }
    }

    /// <summary>An element of each kind; a dialback result carries <paramref name="key"/> (a.test's for the stream <paramref name="id"/>).</summary>
    private static Element Sample(S2sInElementKind kind, string id, string key = "0") => ElementParser.Parse(kind switch
    {
        S2sInElementKind.StartTls => $"<starttls xmlns='{Ns.Tls}'/>",
        S2sInElementKind.SaslAuth => $"<auth xmlns='{Ns.Sasl}' mechanism='EXTERNAL'>=</auth>",
        S2sInElementKind.SaslOther => $"<response xmlns='{Ns.Sasl}'/>",
        S2sInElementKind.DialbackResult => $"<db:result {DialbackNs} from='a.test' to='b.test'>{key}</db:result>",
        S2sInElementKind.DialbackVerify => $"<db:verify {DialbackNs} from='a.test' to='b.test' id='{id}'>0123</db:verify>",
        S2sInElementKind.DialbackOther => $"<db:result {DialbackNs} from='a.test' to='b.test' type='valid'/>",
        S2sInElementKind.Stanza => "<message xmlns='jabber:client' from='alice@a.test/r' to='bob@b.test' type='headline'><body>x</body></message>",
        S2sInElementKind.StreamError => $"<stream:error xmlns:stream='{Ns.Stream}'><conflict xmlns='{Ns.Streams}'/></stream:error>",
        _ => "<foo xmlns='urn:example:unknown'/>",
    });

}
