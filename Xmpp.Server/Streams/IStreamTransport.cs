using System.Net;
using System.Net.Security;
using Xmpp.Core.Xml;

namespace Xmpp.Server.Streams;

/// <summary>
/// How one XML stream reaches its peer: parsed stream events in, stream items out. TCP (with STARTTLS or TLS
/// from the first byte), WebSocket and BOSH each frame the same events and items in their own way, so the
/// connection core and the stream state machines above never see bytes.
/// </summary>
public interface IStreamTransport : IAsyncDisposable
{
    /// <summary>For the log: empty for plain TCP, " (direct TLS)", " (WebSocket)", " (BOSH)".</summary>
    string Description { get; }

    IPEndPoint Remote { get; }

    /// <summary>The transport is encrypted (TLS negotiated on it, or HTTPS underneath).</summary>
    bool IsSecure { get; }

    /// <summary>Whether STARTTLS can be negotiated on it now (a byte stream not yet encrypted).</summary>
    bool CanStartTls { get; }

    /// <summary>The TLS session of this connection, when this transport negotiated it (channel binding, certificates).</summary>
    SslStream? Tls { get; }

    /// <summary>Environment.TickCount64 when the peer last sent anything (bytes, frames, requests): the idle timeout's clock.</summary>
    long LastActivity { get; }

    /// <summary>The next stream event: the header, a first-level element, the end of the stream, or end of file.</summary>
    ValueTask<XmppStreamEvent> ReadAsync(CancellationToken cancellationToken);

    /// <summary>RFC 6120 §4.3.3: a new stream on the same transport (after STARTTLS, after SASL): the next read expects a header.</summary>
    void Restart();

    /// <summary>Negotiates TLS as the responding side (STARTTLS, or TLS from the first byte).</summary>
    ValueTask StartTlsAsServerAsync(ServerOptionsSelectionCallback options, CancellationToken cancellationToken);

    /// <summary>Negotiates TLS as the initiating side (outgoing server-to-server streams).</summary>
    ValueTask StartTlsAsClientAsync(SslClientAuthenticationOptions options, CancellationToken cancellationToken);

    /// <summary>Writes a batch of items in order and flushes. Called by the connection's one writer loop only.</summary>
    ValueTask WriteAsync(IReadOnlyList<OutputItem> items, CancellationToken cancellationToken);

    /// <summary>The writer has nothing more to write for now: output buffers can go back to their pools.</summary>
    void ReleaseBuffers();

    /// <summary>
    /// Reads and discards what the peer still sends, for at most <paramref name="budget"/> (after a stream
    /// error, so that closing with unread data does not reset the connection before the peer reads the error).
    /// </summary>
    ValueTask DrainAsync(TimeSpan budget);
}
