namespace Xmpp.Server.Modules;

/// <summary>
/// Answers disco#info or disco#items for a node of the server (XEP-0030 §3.2, §4.2): the query's
/// children, or null when the node is not this handler's. Throws <see cref="StanzaErrorException"/> to refuse.
/// </summary>
public delegate ValueTask<IEnumerable<Xmpp.Core.Xml.Element>?> DiscoNodeHandler(Routing.StanzaContext context, string node, CancellationToken cancellationToken);

/// <summary>Features and identities that modules advertise through service discovery (XEP-0030).</summary>
public sealed class DiscoRegistry
{
    private readonly SortedSet<string> _hostFeatures = new(StringComparer.Ordinal);
    private readonly SortedSet<string> _accountFeatures = new(StringComparer.Ordinal);
    private readonly List<(string Category, string Type, string? Name)> _hostIdentities = [];
    private readonly List<Xmpp.Core.Xml.Element> _hostExtensions = [];
    private readonly List<(string Category, string Type, string? Name)> _accountIdentities = [];
    private readonly List<Func<Routing.StanzaContext, CancellationToken, ValueTask<IEnumerable<Xmpp.Core.Xml.Element>>>> _accountItems = [];
    private readonly List<Func<string, IEnumerable<Xmpp.Core.Xml.Element>>> _hostItems = [];
    private readonly List<DiscoNodeHandler> _hostNodeInfo = [];
    private readonly List<DiscoNodeHandler> _hostNodeItems = [];

    /// <summary>Handlers of disco#info to nodes of the server, asked in turn.</summary>
    public IReadOnlyList<DiscoNodeHandler> HostNodeInfo => _hostNodeInfo;

    /// <summary>Handlers of disco#items to nodes of the server, asked in turn.</summary>
    public IReadOnlyList<DiscoNodeHandler> HostNodeItems => _hostNodeItems;

    /// <summary>Serves nodes of the server (e.g. XEP-0050's command list and its commands).</summary>
    public void AddHostNodes(DiscoNodeHandler info, DiscoNodeHandler items)
    {
        _hostNodeInfo.Add(info);
        _hostNodeItems.Add(items);
    }

    public IReadOnlyCollection<string> HostFeatures => _hostFeatures;

    public IReadOnlyCollection<string> AccountFeatures => _accountFeatures;

    public IReadOnlyList<(string Category, string Type, string? Name)> HostIdentities => _hostIdentities;

    public void AddFeature(string feature, IqTarget targets)
    {
        if (targets.HasFlag(IqTarget.Host))
        {
            _hostFeatures.Add(feature);
        }

        if (targets.HasFlag(IqTarget.Bare))
        {
            _accountFeatures.Add(feature);
        }
    }

    /// <summary>Identities of every account besides account/registered (e.g. pubsub/pep).</summary>
    public IReadOnlyList<(string Category, string Type, string? Name)> AccountIdentities => _accountIdentities;

    public void AddAccountIdentity(string category, string type, string? name) => _accountIdentities.Add((category, type, name));

    /// <summary>Sources of an account's disco#items (e.g. its PEP nodes), given the request.</summary>
    public IReadOnlyList<Func<Routing.StanzaContext, CancellationToken, ValueTask<IEnumerable<Xmpp.Core.Xml.Element>>>> AccountItems => _accountItems;

    public void AddAccountItems(Func<Routing.StanzaContext, CancellationToken, ValueTask<IEnumerable<Xmpp.Core.Xml.Element>>> source) => _accountItems.Add(source);

    /// <summary>Sources of a host's disco#items (its services, e.g. the multi-user chat service), given the host.</summary>
    public IReadOnlyList<Func<string, IEnumerable<Xmpp.Core.Xml.Element>>> HostItems => _hostItems;

    public void AddHostItems(Func<string, IEnumerable<Xmpp.Core.Xml.Element>> source) => _hostItems.Add(source);

    public void AddHostIdentity(string category, string type, string? name) => _hostIdentities.Add((category, type, name));

    /// <summary>XEP-0128 extended information: data forms (type "result", with a FORM_TYPE) added to the server's disco#info.</summary>
    public IReadOnlyList<Xmpp.Core.Xml.Element> HostExtensions => _hostExtensions;

    public void AddHostExtension(Xmpp.Core.Xml.Element form) => _hostExtensions.Add(form);
}
