using System.Net;
using System.Text;
using Xmpp.Core;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;
using Xmpp.Server.Streams;
using Xmpp.Tests.EndToEnd;

namespace Xmpp.Tests.Server.Streams;

/// <summary>
/// The client stream's transition table, cell by cell: for every state and every kind of element, the stream is
/// brought to the state over an in-memory transport (no sockets), given an element of that kind, and must do what
/// <see cref="C2sTransitions"/> says: the action when it is legal, else the refusal the RFC names.
/// </summary>
[Parallelizable(ParallelScope.All)]
public sealed class C2sTransitionTests
{
    private const string Password = "wonderland";
    private static TestServer? _server;
    private static int _resources;

    [OneTimeSetUp]
    public static async Task StartAsync() =>
        _server = await TestServer.StartAsync(
            o => o with { Modules = new Dictionary<string, IReadOnlyDictionary<string, string>>(o.Modules) { ["register"] = new Dictionary<string, string>() } },
            "alice@localhost:" + Password,
            "bob@localhost:builder");

    [OneTimeTearDown]
    public static async Task StopAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
    }

    private static IEnumerable<TestCaseData> Cells() =>
        from state in Enum.GetValues<C2sState>()
        from kind in Enum.GetValues<C2sElementKind>()
        select new TestCaseData(state, kind).SetName($"{state} x {kind}: {C2sTransitions.For(state, kind)}");

    [TestCaseSource(nameof(Cells))]
    public async Task Every_state_takes_every_element_as_the_table_says(C2sState state, C2sElementKind kind)
    {
        var rule = C2sTransitions.For(state, kind);
        await using var stream = await StreamIn.StateAsync(_server!, state);
        stream.Transport.Send(Sample(kind));
        if (rule.Refusal is { Kind: C2sRefusalKind.StreamError } refused)
        {
            var items = await stream.Transport.UntilClosedAsync();
            Assert.That(items[^1].Error?.Condition, Is.EqualTo(refused.StreamError), Describe(items));
            return;
        }

        if (rule.Refusal is { Kind: C2sRefusalKind.SaslFailure } failed)
        {
            var failure = await stream.Transport.NextElementAsync();
            Assert.That((failure.Element?.Name, failure.Element?.Namespace), Is.EqualTo(("failure", Ns.Sasl)));
            Assert.That(failure.Element!.FirstElement()!.Name, Is.EqualTo(ErrorNames.ToElementName(failed.SaslFailure)));
            return;
        }

        await ExpectActionAsync(stream, rule.Action!.Value, state);
    }

    [Test]
    public void The_table_has_a_rule_in_every_cell()
    {
        foreach (var state in Enum.GetValues<C2sState>())
        {
            foreach (var kind in Enum.GetValues<C2sElementKind>())
            {
                var rule = C2sTransitions.For(state, kind);
                Assert.That(rule.IsLegal ^ rule.Refusal is not null, Is.True, $"{state} x {kind}");
            }
        }
    }

    /// <summary>What a legal element visibly does, per action.</summary>
    private static async Task ExpectActionAsync(StreamIn stream, C2sAction action, C2sState state)
    {
        var t = stream.Transport;
        switch (action)
        {
            case C2sAction.StartTls:
                var answer = await t.NextElementAsync();
                Assert.That((answer.Element?.Name, answer.Element?.Namespace), Is.EqualTo((state == C2sState.AwaitingStartTls ? "proceed" : "failure", Ns.Tls)),
                    "proceed where TLS is still to come; failure where the stream is secure already (RFC 6120 §5.4.2.2)");
                break;
            case C2sAction.SaslStart or C2sAction.SaslStep or C2sAction.SaslAbort:
                var sasl = await t.NextElementAsync();
                Assert.That(sasl.Element?.Namespace, Is.EqualTo(Ns.Sasl), sasl.Element?.ToString());
                break;
            case C2sAction.Bind or C2sAction.Session or C2sAction.PreAuthQuery:
                var result = await t.NextElementAsync();
                Assert.That((result.Element?.Name, result.Element?.GetAttribute("type")), Is.EqualTo(("iq", "result")), result.Element?.ToString());
                break;
            case C2sAction.Stanza:
                // Routed, and answered as any iq is: a result, or an error from whoever it went to.
                var routed = await t.NextElementAsync();
                Assert.That((routed.Element?.Name, routed.Element?.GetAttribute("type")), Is.EqualTo(("iq", "result")).Or.EqualTo(("iq", "error")), routed.Element?.ToString());
                break;
            case C2sAction.PeerError:
                var closed = await t.UntilClosedAsync();
                Assert.That(closed[^1].Error, Is.Null, "the client's error is not answered with one of ours");
                break;
            case C2sAction.Extension:
                // The module of the namespace (XEP-0198 here) answers in every state.
                var sm = await t.NextElementAsync();
                Assert.That(sm.Element?.Namespace, Is.EqualTo("urn:xmpp:sm:3"), sm.Element?.ToString());
                Assert.That(sm.Element!.Name, Is.EqualTo(state == C2sState.Established ? "enabled" : "failed"));
                break;
            case C2sAction.Ignore:
                // After our closing tag: nothing more is written for it.
                t.End();
                await stream.Completion.WaitAsync(TimeSpan.FromSeconds(10));
                Assert.That(t.Remaining().Select(i => i.Kind), Does.Not.Contain(OutputKind.Stanza).And.Not.Contain(OutputKind.Nonza));
                break;
        }
    }

    private static string Describe(List<OutputItem> items) => string.Join(" ", items.Select(i => i.Kind + ":" + (i.Element?.Name ?? i.Error?.Condition.ToString())));

    /// <summary>An element of each kind, as a client would send it.</summary>
    private static Element Sample(C2sElementKind kind) => ElementParser.Parse(kind switch
    {
        C2sElementKind.StartTls => "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
        C2sElementKind.SaslAuth => $"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{Plain("alice", Password)}</auth>",
        C2sElementKind.SaslResponse => "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>AAAA</response>",
        C2sElementKind.SaslAbort => "<abort xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>",
        C2sElementKind.SaslOther => "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>",
        C2sElementKind.Bind => $"<iq xmlns='jabber:client' type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>r{Interlocked.Increment(ref _resources)}</resource></bind></iq>",
        C2sElementKind.Session => "<iq xmlns='jabber:client' type='set' id='s'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>",
        C2sElementKind.PreAuthQuery => "<iq xmlns='jabber:client' type='get' id='r'><query xmlns='jabber:iq:register'/></iq>",
        C2sElementKind.Stanza => "<iq xmlns='jabber:client' type='get' id='p' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>",
        C2sElementKind.StreamError => "<error xmlns='http://etherx.jabber.org/streams'><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></error>",
        C2sElementKind.Extension => "<enable xmlns='urn:xmpp:sm:3'/>",
        _ => "<hello xmlns='urn:example:unknown'/>",
    });

    private static string Plain(string user, string password) => Convert.ToBase64String(Encoding.UTF8.GetBytes($"\0{user}\0{password}"));
}
