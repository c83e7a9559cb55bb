using Xmpp.Core.Xml;

namespace Xmpp.Server.Streams;

/// <summary>What the stream does after an element: go on reading, read a new stream (RFC 6120 §4.3.3), or stop.</summary>
public enum StreamStep
{
    Continue,
    Restart,
    Stop,
}

/// <summary>Why a connection's read loop ended.</summary>
public enum StreamEnd
{
    /// <summary>The peer closed the stream with its closing tag (or a stream error of its own).</summary>
    ClosedByPeer,

    /// <summary>The connection was lost (end of file, a reset, a failed TLS handshake).</summary>
    Dropped,

    /// <summary>We ended it: with a stream error, at shutdown, or because the stream asked to stop.</summary>
    ClosedByUs,
}

/// <summary>
/// One kind of stream (client, incoming or outgoing server, component) as the connection core drives it: the
/// core reads stream events from the transport and hands them here; this side holds the state machine and
/// answers through the <see cref="StreamConnection"/> it is given. No socket, no loop of its own.
/// </summary>
public interface IStreamProtocol
{
    /// <summary>"c2s", "s2s", "component": for the log and the stream error metrics.</summary>
    string Kind { get; }

    /// <summary>Runs before the first read (the initiating side sends its header here; direct TLS is negotiated here).</summary>
    ValueTask StartAsync(StreamConnection connection, CancellationToken cancellationToken);

    /// <summary>The peer's stream header, at the start and after every restart. Throws the RFC's stream error when it is refused.</summary>
    ValueTask OnHeaderAsync(StreamHeader header, CancellationToken cancellationToken);

    /// <summary>A first-level element of the stream. Throws the RFC's stream error when it ends the stream.</summary>
    ValueTask<StreamStep> OnElementAsync(Element element, CancellationToken cancellationToken);

    /// <summary>
    /// The read loop is over and our closing tag queued; the transport is still open (the session can be ended
    /// or kept, stanzas rerouted) and is released right after.
    /// </summary>
    ValueTask OnEndedAsync(StreamEnd end);

    /// <summary>
    /// The transport is released and the writer done: what it did not write (<see cref="StreamOutput.Drain"/>) can
    /// be bounced or rerouted now.
    /// </summary>
    ValueTask OnReleasedAsync();

    /// <summary>Called periodically with Environment.TickCount64: the stream's idle policy (ping, close).</summary>
    void CheckIdle(long now, long lastActivity);

    /// <summary>The header for a stream error sent before ours went out (RFC 6120 §4.9.1.1).</summary>
    OutgoingHeader ClosingHeader();
}
