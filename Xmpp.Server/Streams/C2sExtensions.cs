using Xmpp.Core.Xml;

namespace Xmpp.Server.Streams;

/// <summary>
/// An iq a client sends before it has authenticated (XEP-0077 registration, XEP-0445 invitation tokens), with what
/// the stream knows; <paramref name="Stream"/> keeps what one request leaves for the next (a token presented).
/// </summary>
public sealed record PreAuthRequest(Element Iq, Element Payload, string Host, System.Net.IPAddress Remote, IC2sContext Stream);

/// <summary>Answers a request before authentication with the whole reply iq.</summary>
public delegate ValueTask<Element> PreAuthIqHandler(PreAuthRequest request, CancellationToken cancellationToken);

/// <summary>Handles a first-level element of a module's namespace on a client stream, in whatever state it is (see <see cref="IC2sContext.State"/>).</summary>
public delegate ValueTask C2sElementHandler(IC2sContext stream, Element element, CancellationToken cancellationToken);

/// <summary>When a stream feature is offered.</summary>
public enum C2sFeaturePhase
{
    /// <summary>Next to the SASL mechanisms (only over TLS when TLS is required).</summary>
    BeforeAuthentication,

    /// <summary>After authentication, next to resource binding (RFC 6120 §4.3.2).</summary>
    AfterAuthentication,
}

/// <summary>
/// The client stream's extension points, which modules fill while the server starts (one set per module
/// generation, read-only after): stream features, requests answered before authentication, and handlers of
/// nonzas by namespace. The stream names no XEP; what XEP-0198, XEP-0352 or XEP-0388 add comes through here.
/// </summary>
public sealed class C2sExtensions
{
    private readonly List<Func<IC2sContext, Element?>> _beforeAuth = [];
    private readonly List<Func<IC2sContext, Element?>> _afterAuth = [];
    private readonly Dictionary<string, PreAuthIqHandler> _preAuth = new(StringComparer.Ordinal);
    private readonly Dictionary<string, C2sElementHandler> _elements = new(StringComparer.Ordinal);

    /// <summary>A feature, or a function of the stream that gives one or none (offered only in some conditions).</summary>
    public void AddFeature(C2sFeaturePhase phase, Func<IC2sContext, Element?> feature) =>
        (phase == C2sFeaturePhase.BeforeAuthentication ? _beforeAuth : _afterAuth).Add(feature);

    public IEnumerable<Element> Features(C2sFeaturePhase phase, IC2sContext stream)
    {
        foreach (var f in phase == C2sFeaturePhase.BeforeAuthentication ? _beforeAuth : _afterAuth)
        {
            if (f(stream) is { } feature)
            {
                yield return feature;
            }
        }
    }

    public void AddPreAuthQuery(string ns, PreAuthIqHandler handler) => _preAuth.Add(ns, handler);

    public bool TryGetPreAuthQuery(string ns, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out PreAuthIqHandler? handler) =>
        _preAuth.TryGetValue(ns, out handler);

    public void AddElementHandler(string ns, C2sElementHandler handler) => _elements.Add(ns, handler);

    public bool TryGetElementHandler(string ns, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out C2sElementHandler? handler) =>
        _elements.TryGetValue(ns, out handler);

    public bool HandlesNamespace(string ns) => _elements.ContainsKey(ns);
}
