using Xmpp.Core.Sasl;
using Xmpp.Core.Stanzas;

namespace Xmpp.Server.Streams;

/// <summary>What the client stream does with an element it may take in its state.</summary>
public enum C2sAction
{
    StartTls,
    SaslStart,
    SaslStep,
    SaslAbort,
    Bind,
    Session,
    PreAuthQuery,
    Stanza,

    /// <summary>The client ended the stream with an error: log it, close ours.</summary>
    PeerError,

    /// <summary>The module of the element's namespace handles it, knowing the state.</summary>
    Extension,

    /// <summary>Dropped without an answer (after our closing tag).</summary>
    Ignore,
}

/// <summary>How an element that is not legal in a state is refused: with a stream error, or a SASL failure (the stream goes on).</summary>
public enum C2sRefusalKind
{
    StreamError,
    SaslFailure,
}

/// <summary>The refusal the RFC names for an element out of place.</summary>
public sealed record C2sRefusal(C2sRefusalKind Kind, string Reason, StreamErrorCondition StreamError = default, SaslFailure SaslFailure = default);

/// <summary>One cell of the table: an action when the element is legal, or the refusal.</summary>
public sealed record C2sRule(C2sAction? Action, C2sRefusal? Refusal)
{
    public bool IsLegal => Action is not null;

    public override string ToString() => Action is { } a ? a.ToString() : $"{Refusal!.Kind} {Refusal.StreamError}{Refusal.SaslFailure} ({Refusal.Reason})";
}

/// <summary>
/// The client stream's transition table (RFC 6120 §4-§8), one row per state and one column per kind of
/// element, with the guard on every element that processone/xmpp's xmpp_stream_in has: what is legal, and for
/// what is not, the error the RFC names. The stream (<see cref="C2sStateMachine"/>) and its tests read this same table.
/// </summary>
public static class C2sTransitions
{
    private static readonly C2sRule[,] Table = Build();

    public static C2sRule For(C2sState state, C2sElementKind kind) => Table[(int)state, (int)kind];

    private static C2sRule Do(C2sAction action) => new(action, null);

    private static C2sRule StreamError(StreamErrorCondition condition, string reason) =>
        new(null, new C2sRefusal(C2sRefusalKind.StreamError, reason, StreamError: condition));

    private static C2sRule Sasl(SaslFailure failure, string reason) =>
        new(null, new C2sRefusal(C2sRefusalKind.SaslFailure, reason, SaslFailure: failure));

    private static C2sRule[,] Build()
    {
        var t = new C2sRule[Enum.GetValues<C2sState>().Length, Enum.GetValues<C2sElementKind>().Length];
        var beforeAuth = StreamError(StreamErrorCondition.NotAuthorized, "before authentication"); // RFC 6120 §4.9.3.12
        var authenticated = StreamError(StreamErrorCondition.PolicyViolation, "the stream is already authenticated");
        var unknownAfterAuth = StreamError(StreamErrorCondition.UnsupportedStanzaType, "unknown element");

        // The reader reports the header before anything else; an element here would be a bug upstream.
        Row(t, C2sState.AwaitingHeader, all: StreamError(StreamErrorCondition.NotAuthorized, "no stream header"));

        // §5.3.1: with TLS required, only STARTTLS; SASL is refused with encryption-required (§6.4.5).
        Row(t, C2sState.AwaitingStartTls, all: beforeAuth,
            startTls: Do(C2sAction.StartTls),
            saslAuth: Sasl(SaslFailure.EncryptionRequired, "STARTTLS first"),
            saslResponse: Sasl(SaslFailure.EncryptionRequired, "STARTTLS first"),
            saslAbort: Do(C2sAction.SaslAbort),
            saslOther: Sasl(SaslFailure.MalformedRequest, "unexpected element"),
            streamError: Do(C2sAction.PeerError),
            extension: Do(C2sAction.Extension));

        // §6: SASL (or TLS, when it is offered and optional; a second STARTTLS is a TLS failure, §5.4.2.2).
        Row(t, C2sState.AwaitingAuthentication, all: beforeAuth,
            startTls: Do(C2sAction.StartTls),
            saslAuth: Do(C2sAction.SaslStart),
            saslResponse: Sasl(SaslFailure.MalformedRequest, "no exchange in progress"),
            saslAbort: Do(C2sAction.SaslAbort),
            saslOther: Sasl(SaslFailure.MalformedRequest, "unexpected element"),
            preAuthQuery: Do(C2sAction.PreAuthQuery),
            streamError: Do(C2sAction.PeerError),
            extension: Do(C2sAction.Extension));

        // §6.4.2: responses to challenges; a new <auth/> starts over, <abort/> ends the exchange (§6.4.4).
        Row(t, C2sState.Authenticating, all: beforeAuth,
            startTls: Do(C2sAction.StartTls),
            saslAuth: Do(C2sAction.SaslStart),
            saslResponse: Do(C2sAction.SaslStep),
            saslAbort: Do(C2sAction.SaslAbort),
            saslOther: Sasl(SaslFailure.MalformedRequest, "unexpected element"),
            preAuthQuery: Do(C2sAction.PreAuthQuery),
            streamError: Do(C2sAction.PeerError),
            extension: Do(C2sAction.Extension));

        // §7.1: no stanzas before a resource is bound; negotiation is over.
        Row(t, C2sState.AwaitingBind, all: StreamError(StreamErrorCondition.NotAuthorized, "bind a resource first"),
            startTls: authenticated,
            saslAuth: authenticated,
            saslResponse: authenticated,
            saslAbort: authenticated,
            saslOther: authenticated,
            bind: Do(C2sAction.Bind),
            session: Do(C2sAction.Session),
            streamError: Do(C2sAction.PeerError),
            extension: Do(C2sAction.Extension),
            unknown: unknownAfterAuth);

        // §8: stanzas; a second bind is an ordinary iq to the server, which has no handler for it.
        Row(t, C2sState.Established, all: Do(C2sAction.Stanza),
            startTls: authenticated,
            saslAuth: authenticated,
            saslResponse: authenticated,
            saslAbort: authenticated,
            saslOther: authenticated,
            session: Do(C2sAction.Session),
            streamError: Do(C2sAction.PeerError),
            extension: Do(C2sAction.Extension),
            unknown: unknownAfterAuth);

        // §4.4: after our closing tag, the client may still be sending: dropped.
        Row(t, C2sState.Closing, all: Do(C2sAction.Ignore));
        return t;
    }

    private static void Row(
        C2sRule[,] table,
        C2sState state,
        C2sRule all,
        C2sRule? startTls = null,
        C2sRule? saslAuth = null,
        C2sRule? saslResponse = null,
        C2sRule? saslAbort = null,
        C2sRule? saslOther = null,
        C2sRule? bind = null,
        C2sRule? session = null,
        C2sRule? preAuthQuery = null,
        C2sRule? stanza = null,
        C2sRule? streamError = null,
        C2sRule? extension = null,
        C2sRule? unknown = null)
    {
        var s = (int)state;
        table[s, (int)C2sElementKind.StartTls] = startTls ?? all;
        table[s, (int)C2sElementKind.SaslAuth] = saslAuth ?? all;
        table[s, (int)C2sElementKind.SaslResponse] = saslResponse ?? all;
        table[s, (int)C2sElementKind.SaslAbort] = saslAbort ?? all;
        table[s, (int)C2sElementKind.SaslOther] = saslOther ?? all;
        table[s, (int)C2sElementKind.Bind] = bind ?? all;
        table[s, (int)C2sElementKind.Session] = session ?? all;
        table[s, (int)C2sElementKind.PreAuthQuery] = preAuthQuery ?? all;
        table[s, (int)C2sElementKind.Stanza] = stanza ?? all;
        table[s, (int)C2sElementKind.StreamError] = streamError ?? all;
        table[s, (int)C2sElementKind.Extension] = extension ?? all;
        table[s, (int)C2sElementKind.Unknown] = unknown ?? all;
    }
}
