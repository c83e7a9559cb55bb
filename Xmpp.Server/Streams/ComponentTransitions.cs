using Xmpp.Core.Stanzas;
using Table = Xmpp.Server.Streams.TransitionTable<Xmpp.Server.Streams.ComponentState, Xmpp.Server.Streams.ComponentElementKind, Xmpp.Server.Streams.ComponentAction>;

namespace Xmpp.Server.Streams;

/// <summary>
/// The component stream's transition table (XEP-0114 §3): one row per state, one column per kind of element.
/// The stream (<see cref="ComponentStateMachine"/>) and its tests read this same table.
/// </summary>
public static class ComponentTransitions
{
    public static Table Table { get; } = Build();

    public static StreamRule<ComponentAction> For(ComponentState state, ComponentElementKind kind) => Table.For(state, kind);

    private static Table Build()
    {
        var peerError = (ComponentElementKind.StreamError, Table.Do(ComponentAction.PeerError));
        return new Table()

            // The reader reports the header before anything else; an element here would be a bug upstream.
            .Row(ComponentState.AwaitingHeader, Table.Refuse(StreamErrorCondition.NotAuthorized, "no stream header"))

            // XEP-0114 §3: nothing before the handshake (RFC 6120 §4.9.3.12).
            .Row(
                ComponentState.AwaitingHandshake,
                Table.Refuse(StreamErrorCondition.NotAuthorized, "send <handshake/> first"),
                (ComponentElementKind.Handshake, Table.Do(ComponentAction.Handshake)),
                peerError)

            // Stanzas; anything else, a second handshake included, is not defined on the stream (RFC 6120 §4.9.3.24).
            .Row(
                ComponentState.Established,
                Table.Refuse(StreamErrorCondition.UnsupportedStanzaType, "unknown element"),
                (ComponentElementKind.Stanza, Table.Do(ComponentAction.Stanza)),
                peerError)
            .Row(ComponentState.Closing, Table.Do(ComponentAction.Ignore))
            .Build();
    }
}
