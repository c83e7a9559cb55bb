using Xmpp.Core.Sasl;

namespace Xmpp.Server.Net;

/// <summary>
/// The channel binding data of one TLS connection: tls-exporter (RFC 9266) and tls-unique (RFC 5929 §3)
/// where they could be computed, tls-server-end-point (RFC 5929 §4) always. XEP-0440 advertises them in
/// this order.
/// </summary>
internal sealed class ClientChannelBinding : IChannelBindingSource
{
    private readonly byte[]? _exporter;
    private readonly byte[]? _unique;
    private readonly byte[] _endPoint;

    public ClientChannelBinding(byte[]? exporter, byte[]? unique, byte[] endPoint)
    {
        _exporter = exporter;
        _unique = unique;
        _endPoint = endPoint;
        var types = new List<string>(3);
        if (exporter is not null)
        {
            types.Add(ChannelBindingTypes.TlsExporter);
        }

        if (unique is not null)
        {
            types.Add(ChannelBindingTypes.TlsUnique);
        }

        types.Add(ChannelBindingTypes.TlsServerEndPoint);
        SupportedTypes = types;
    }

    public IReadOnlyList<string> SupportedTypes { get; }

    public byte[]? GetBindingData(string type) => type switch
    {
        ChannelBindingTypes.TlsExporter => _exporter,
        ChannelBindingTypes.TlsUnique => _unique,
        ChannelBindingTypes.TlsServerEndPoint => _endPoint,
        _ => null,
    };
}
