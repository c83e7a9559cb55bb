using System.Security.Cryptography;
using System.Text;
using Xmpp.Core;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;
using Xmpp.Server.Streams;

namespace Xmpp.Tests.Server.Streams;

/// <summary>
/// The component stream's transition table, cell by cell: for every state and every kind of element, a stream of
/// the component echo.a.test is driven into the state through the connection core over an in-memory transport,
/// the element is fed, and what the stream does is what <see cref="ComponentTransitions"/> says: the action's
/// visible effect, or the RFC's stream error. The cells run one after the other: a handshake makes the stream the
/// component's route, and a second one would replace it (with &lt;conflict/&gt;).
/// </summary>
[Parallelizable(ParallelScope.Self)]
public sealed class ComponentTransitionTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);
    private S2sTestServers _servers = null!;

    [OneTimeSetUp]
    public async Task StartAsync() => _servers = await S2sTestServers.StartAsync();

    [OneTimeTearDown]
    public async Task StopAsync() => await _servers.DisposeAsync();

    public static IEnumerable<TestCaseData> Cells() =>
        from state in Enum.GetValues<ComponentState>()
        from kind in Enum.GetValues<ComponentElementKind>()
        select new TestCaseData(state, kind).SetName($"{state} x {kind}: {ComponentTransitions.For(state, kind)}");

    [Test]
    public void Every_cell_is_filled_and_every_element_kind_is_classified()
    {
        foreach (var state in Enum.GetValues<ComponentState>())
        {
            foreach (var kind in Enum.GetValues<ComponentElementKind>())
            {
                var rule = ComponentTransitions.For(state, kind);
                Assert.That(rule.IsLegal ^ rule.Refusal is not null, Is.True, $"{state} x {kind}");
                Assert.That(ComponentStateMachine.Classify(Sample(kind, "0")), Is.EqualTo(kind));
            }
        }

        // XEP-0114 §3: nothing but the handshake before it (RFC 6120 §4.9.3.12).
        Assert.That(ComponentTransitions.For(ComponentState.AwaitingHandshake, ComponentElementKind.Stanza).Refusal!.Condition, Is.EqualTo(StreamErrorCondition.NotAuthorized));
    }

    [TestCaseSource(nameof(Cells))]
    public async Task Cell(ComponentState state, ComponentElementKind kind)
    {
        var transport = new S2sTestTransport(ComponentStateMachine.Namespace);
        var connection = ComponentStateMachine.Create(_servers.ContextA, transport, CancellationToken.None);
        var machine = (ComponentStateMachine)connection.Protocol;
        var run = connection.RunAsync();
        try
        {
            var streamId = await DriveAsync(transport, machine, state);
            Assert.That(machine.State, Is.EqualTo(state), "driven into the state");
            var rule = ComponentTransitions.For(state, kind);
            transport.Send(Sample(kind, streamId));
            if (rule.Refusal is { } refusal)
            {
                Assert.That((await transport.ClosedAsync())?.Condition, Is.EqualTo(refusal.Condition), rule.ToString());
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

    /// <summary>Plays the component until the stream is in <paramref name="state"/>; returns the stream id.</summary>
    private static async Task<string> DriveAsync(S2sTestTransport transport, ComponentStateMachine machine, ComponentState state)
    {
        if (state == ComponentState.AwaitingHeader)
        {
            return string.Empty;
        }

        // XEP-0114 §3, examples 1 and 2: the component names its domain; our header carries the stream id, no version.
        transport.Header(null, S2sTestServers.ComponentDomain);
        var header = (await transport.NextAsync()).Header!;
        Assert.That((header.From, header.Version), Is.EqualTo((S2sTestServers.ComponentDomain, (string?)null)));

        // The header is answered before it is checked (RFC 6120 §4.9.1.1): the state is read once it is taken.
        await transport.IdleAsync();
        if (state == ComponentState.AwaitingHandshake)
        {
            return header.Id!;
        }

        transport.Send(Sample(ComponentElementKind.Handshake, header.Id!));
        Assert.That((await transport.NextElementAsync()).Name, Is.EqualTo("handshake"));
        if (state == ComponentState.Established)
        {
            return header.Id!;
        }

        machine.Close(null);
        Assert.That(await transport.ClosedAsync(), Is.Null);
        return header.Id!;
    }

    /// <summary>What each action visibly does on the stream.</summary>
    private static async Task ExpectAsync(S2sTestTransport transport, ComponentStateMachine machine, ComponentAction action, Task run)
    {
        switch (action)
        {
            case ComponentAction.Handshake:
                // XEP-0114 §3, example 4: an empty handshake confirms it.
                var handshake = await transport.NextElementAsync();
                Assert.That((handshake.Name, handshake.Nodes.Count), Is.EqualTo(("handshake", 0)));
                Assert.That(machine.State, Is.EqualTo(ComponentState.Established));
                break;
            case ComponentAction.Stanza:
                // Routed: a.test answers the component's ping.
                var answer = await transport.NextElementAsync();
                Assert.That((answer.Name, answer.GetAttribute("type"), answer.GetAttribute("to")), Is.EqualTo(("iq", "result", S2sTestServers.ComponentDomain)));
                break;
            case ComponentAction.PeerError:
                Assert.That(await transport.ClosedAsync(), Is.Null, "our closing tag, without an error");
                break;
            default:
                // After our closing tag nothing is answered (RFC 6120 §4.4).
                transport.End();
                await run.WaitAsync(Wait);
                Assert.That(transport.Written().Where(i => i.Kind != OutputKind.Close), Is.Empty);
                break;
        }
    }

    /// <summary>An element of each kind, as the component sends it; the handshake is the right one for the stream <paramref name="id"/>.</summary>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Security", "CA5350", Justification = "XEP-0114 fixes SHA-1 for the handshake.")]
    private static Element Sample(ComponentElementKind kind, string id) => ElementParser.Parse(kind switch
    {
        ComponentElementKind.Handshake => $"<handshake xmlns='jabber:client'>{Convert.ToHexStringLower(SHA1.HashData(Encoding.UTF8.GetBytes(id + S2sTestServers.ComponentSecret)))}</handshake>",
        ComponentElementKind.Stanza => $"<iq xmlns='jabber:client' type='get' id='p' from='{S2sTestServers.ComponentDomain}' to='a.test'><ping xmlns='urn:xmpp:ping'/></iq>",
        ComponentElementKind.StreamError => $"<stream:error xmlns:stream='{Ns.Stream}'><conflict xmlns='{Ns.Streams}'/></stream:error>",
        _ => "<foo xmlns='urn:example:unknown'/>",
    });
}
