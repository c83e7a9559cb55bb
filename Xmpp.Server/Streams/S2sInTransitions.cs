using Xmpp.Core.Stanzas;
using Table = Xmpp.Server.Streams.TransitionTable<Xmpp.Server.Streams.S2sInState, Xmpp.Server.Streams.S2sInElementKind, Xmpp.Server.Streams.S2sInAction>;

namespace Xmpp.Server.Streams;

/// <summary>
/// The incoming server stream's transition table (RFC 6120 §4-§8, XEP-0178, XEP-0220): one row per state, one
/// column per kind of element. The stream (<see cref="IncomingS2sStateMachine"/>) and its tests read this same table.
/// </summary>
public static class S2sInTransitions
{
    public static Table Table { get; } = Build();

    public static StreamRule<S2sInAction> For(S2sInState state, S2sInElementKind kind) => Table.For(state, kind);

    private static Table Build()
    {
        var peerError = (S2sInElementKind.StreamError, Table.Do(S2sInAction.PeerError));

        // RFC 6120 §4.9.3.24: what a server stream does not define is refused.
        var unknown = Table.Refuse(StreamErrorCondition.UnsupportedStanzaType, "unknown element");

        // The negotiation a peer may run before and after its first domain is authenticated: STARTTLS (refused
        // once TLS is up), SASL EXTERNAL (XEP-0178), dialback for each further domain (XEP-0220 §2.1), and
        // db:verify answered as the authoritative server whatever this stream authenticated (§2.2).
        (S2sInElementKind, StreamRule<S2sInAction>)[] negotiation =
        [
            (S2sInElementKind.StartTls, Table.Do(S2sInAction.StartTls)),
            (S2sInElementKind.SaslAuth, Table.Do(S2sInAction.SaslExternal)),
            (S2sInElementKind.DialbackResult, Table.Do(S2sInAction.DialbackResult)),
            (S2sInElementKind.DialbackVerify, Table.Do(S2sInAction.DialbackVerify)),
            (S2sInElementKind.DialbackOther, Table.Do(S2sInAction.Ignore)),
            peerError,
        ];

        return new Table()

            // The reader reports the header before anything else; an element here would be a bug upstream.
            .Row(S2sInState.AwaitingHeader, Table.Refuse(StreamErrorCondition.NotAuthorized, "no stream header"))

            // RFC 6120 §5.3.1: TLS is mandatory-to-negotiate here; nothing else until it is up.
            .Row(
                S2sInState.AwaitingStartTls,
                Table.Refuse(StreamErrorCondition.PolicyViolation, "STARTTLS is required"),
                (S2sInElementKind.StartTls, Table.Do(S2sInAction.StartTls)),
                peerError)

            // RFC 6120 §4.9.3.12: stanzas before any domain is authenticated.
            .Row(
                S2sInState.AwaitingAuthentication,
                unknown,
                [.. negotiation, (S2sInElementKind.Stanza, Table.Refuse(StreamErrorCondition.NotAuthorized, "authenticate first"))])

            // RFC 6120 §8.1.1.2, §8.1.2.2: stanzas, checked against the authenticated domains by the action.
            .Row(S2sInState.Authenticated, unknown, [.. negotiation, (S2sInElementKind.Stanza, Table.Do(S2sInAction.Stanza))])

            // RFC 6120 §4.4: after our closing tag, the peer may still be sending: dropped.
            .Row(S2sInState.Closing, Table.Do(S2sInAction.Ignore))
            .Build();
    }
}
