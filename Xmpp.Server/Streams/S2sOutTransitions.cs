using Xmpp.Core.Stanzas;
using Table = Xmpp.Server.Streams.TransitionTable<Xmpp.Server.Streams.S2sOutState, Xmpp.Server.Streams.S2sOutElementKind, Xmpp.Server.Streams.S2sOutAction>;

namespace Xmpp.Server.Streams;

/// <summary>
/// The outgoing server stream's transition table (RFC 6120 §4-§6, XEP-0178, XEP-0220 as the originating server):
/// one row per state, one column per kind of element. The stream (<see cref="OutgoingS2sStateMachine"/>) and its
/// tests read this same table.
/// </summary>
public static class S2sOutTransitions
{
    public static Table Table { get; } = Build();

    public static StreamRule<S2sOutAction> For(S2sOutState state, S2sOutElementKind kind) => Table.For(state, kind);

    private static Table Build()
    {
        // Whatever the state once the peer's stream is open, its stream error ends the stream and the answers to
        // our db:verify questions (asked for streams it opened to us) complete them.
        var peerError = (S2sOutElementKind.StreamError, Table.Do(S2sOutAction.PeerError));
        var verify = (S2sOutElementKind.DialbackVerify, Table.Do(S2sOutAction.VerifyAnswer));
        var noHeader = Table.Refuse(StreamErrorCondition.BadFormat, "no stream header from the peer");

        return new Table()

            // No transport yet, then no header: the reader reports the header before any element.
            .Row(S2sOutState.Connecting, noHeader)
            .Row(S2sOutState.AwaitingHeader, noHeader)

            // RFC 6120 §4.3.2: the receiving entity sends its features first.
            .Row(
                S2sOutState.AwaitingFeatures,
                Table.Refuse(StreamErrorCondition.UnsupportedStanzaType, "stream features expected"),
                (S2sOutElementKind.Features, Table.Do(S2sOutAction.Negotiate)),
                peerError,
                verify)

            // RFC 6120 §5.4.2.2: anything but <proceed/> is a refusal of TLS (its stream error is logged as such).
            .Row(
                S2sOutState.AwaitingProceed,
                Table.Do(S2sOutAction.TlsRefused),
                (S2sOutElementKind.TlsProceed, Table.Do(S2sOutAction.StartTls)),
                peerError,
                verify)

            // XEP-0178 §2: anything but <success/> refuses EXTERNAL; dialback is tried next on the same stream.
            .Row(
                S2sOutState.AwaitingSaslResult,
                Table.Do(S2sOutAction.SaslRefused),
                (S2sOutElementKind.SaslSuccess, Table.Do(S2sOutAction.SaslSuccess)),
                peerError,
                verify)

            // XEP-0220 §2.1.3: the typed <db:result/> decides; anything else is waited through.
            .Row(
                S2sOutState.AwaitingDialbackResult,
                Table.Do(S2sOutAction.Ignore),
                (S2sOutElementKind.DialbackResult, Table.Do(S2sOutAction.DialbackResult)),
                peerError,
                verify)

            // A stream carries stanzas one way (RFC 6120 §2.4): what else the peer sends here is dropped.
            .Row(S2sOutState.Ready, Table.Do(S2sOutAction.Ignore), peerError, verify)
            .Row(S2sOutState.Closing, Table.Do(S2sOutAction.Ignore))
            .Build();
    }
}
