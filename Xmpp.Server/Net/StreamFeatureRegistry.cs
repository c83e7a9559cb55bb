using Xmpp.Core.Xml;

namespace Xmpp.Server.Net;

/// <summary>
/// Stream features that modules add to the features offered after authentication (RFC 6120 §4.3.2),
/// e.g. roster versioning or subscription pre-approval. Filled while the server starts, read-only after.
/// </summary>
public sealed class StreamFeatureRegistry
{
    private readonly List<Element> _afterAuth = [];

    public IReadOnlyList<Element> AfterAuthentication => _afterAuth;

    public void Add(Element feature) => _afterAuth.Add(feature);
}

/// <summary>An iq a client sends before it has authenticated (XEP-0077 registration), with what the connection knows.</summary>
public sealed record PreAuthRequest(Element Iq, Element Payload, string Host, System.Net.IPAddress Remote);

/// <summary>Answers a request before authentication with the whole reply iq.</summary>
public delegate ValueTask<Element> PreAuthIqHandler(PreAuthRequest request, CancellationToken cancellationToken);

/// <summary>
/// What modules offer before authentication: stream features next to the SASL mechanisms, and iq handlers
/// by payload namespace. Only over TLS when TLS is required. Filled while the server starts.
/// </summary>
public sealed class PreAuthRegistry
{
    private readonly List<Element> _features = [];
    private readonly Dictionary<string, PreAuthIqHandler> _handlers = new(StringComparer.Ordinal);

    public IReadOnlyList<Element> Features => _features;

    public void AddFeature(Element feature) => _features.Add(feature);

    public void Add(string ns, PreAuthIqHandler handler) => _handlers.Add(ns, handler);

    public bool TryGet(string ns, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out PreAuthIqHandler? handler) =>
        _handlers.TryGetValue(ns, out handler);
}

/// <summary>
/// Features a client may ask for inside a XEP-0386 Bind2 request (carbons, client state...), by namespace:
/// advertised in the SASL2 features and run on the new session right after it is bound.
/// </summary>
public sealed class Bind2Registry
{
    private readonly Dictionary<string, Action<Sessions.IClientSession, Element>> _handlers = new(StringComparer.Ordinal);

    public IEnumerable<string> Features => _handlers.Keys;

    public void Add(string ns, Action<Sessions.IClientSession, Element> handler) => _handlers.Add(ns, handler);

    public bool TryGet(string ns, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out Action<Sessions.IClientSession, Element>? handler) =>
        _handlers.TryGetValue(ns, out handler);
}

/// <summary>
/// Handlers of top-level elements that are not stanzas ("nonzas", such as XEP-0352's &lt;active/&gt;),
/// by namespace, for bound client streams. Filled while the server starts, read-only after.
/// </summary>
public sealed class StreamElementRegistry
{
    private readonly Dictionary<string, Action<Sessions.IClientSession, Element>> _handlers = new(StringComparer.Ordinal);

    public void Add(string ns, Action<Sessions.IClientSession, Element> handler) => _handlers.Add(ns, handler);

    public bool TryGet(string ns, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out Action<Sessions.IClientSession, Element>? handler) =>
        _handlers.TryGetValue(ns, out handler);
}
