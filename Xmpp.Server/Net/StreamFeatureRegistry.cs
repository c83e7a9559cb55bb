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
