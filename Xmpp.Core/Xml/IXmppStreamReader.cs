namespace Xmpp.Core.Xml;

/// <summary>
/// The XML front end of one stream (one per stream restart). Reports the header, each first-level
/// element and the end, or throws <see cref="Stanzas.XmppStreamException"/> with the RFC's stream error.
/// Replaceable: the server depends on this interface only.
/// </summary>
public interface IXmppStreamReader : IDisposable
{
    ValueTask<XmppStreamEvent> ReadAsync(CancellationToken cancellationToken);
}
