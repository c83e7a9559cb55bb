using Xmpp.Core.Xml;
using Xmpp.Server.Sessions;
using Xmpp.Server.Streams;

namespace Xmpp.Server.Modules.Bind2;

/// <summary>
/// Switches on a feature inline in a XEP-0386 bind request (carbons, client state, stream management...) for the
/// new session, before it is reachable; returns what goes into the &lt;bound/&gt; answer, or null.
/// </summary>
public delegate Element? Bind2InlineHandler(IC2sContext stream, ClientSession session, Element request);

/// <summary>
/// The features a Bind2 request may switch on inline, by namespace (shared through
/// <see cref="IModuleContext.Shared{T}"/>): advertised in the SASL2 features, run on the new session.
/// </summary>
public sealed class Bind2Features
{
    private readonly Dictionary<string, Bind2InlineHandler> _handlers = new(StringComparer.Ordinal);

    public IEnumerable<string> Namespaces => _handlers.Keys;

    public void Add(string ns, Bind2InlineHandler handler) => _handlers.Add(ns, handler);

    public bool TryGet(string ns, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out Bind2InlineHandler? handler) =>
        _handlers.TryGetValue(ns, out handler);
}
