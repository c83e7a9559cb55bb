using Xmpp.Core.Sasl;

namespace Xmpp.Server.Net;

/// <summary>The channel binding data of one TLS connection.</summary>
internal sealed class ClientChannelBinding(byte[]? exporter, byte[] endPoint) : IChannelBindingSource
{
    public IReadOnlyList<string> SupportedTypes { get; } = exporter is null
        ? [ChannelBindingTypes.TlsServerEndPoint]
        : [ChannelBindingTypes.TlsExporter, ChannelBindingTypes.TlsServerEndPoint];

    public byte[]? GetBindingData(string type) => type switch
    {
        ChannelBindingTypes.TlsExporter => exporter,
        ChannelBindingTypes.TlsServerEndPoint => endPoint,
        _ => null,
    };
}
