using System.Net;
using System.Xml.Linq;
using Xmpp.Core.Addressing;
using Xmpp.Core.Sasl;

namespace Xmpp.Server.Config;

/// <summary>
/// Reads the children of &lt;xmppserver&gt; one element at a time, each with a reader of its own, and
/// gathers what they say; <see cref="Finish"/> checks what concerns several elements and builds the
/// options. An element that may appear once and appears again replaces what the earlier one said.
/// </summary>
internal sealed class ConfigReader
{
    private static readonly string[] LogLevels = ["Trace", "Debug", "Info", "Warn", "Error", "Fatal", "Off"];

    private readonly ConfigContext _ctx;
    private readonly Dictionary<string, Action<XElement>> _readers;
    private readonly List<HostOptions> _hosts = [];
    private readonly List<ListenerOptions> _listeners = [];
    private readonly List<Jid> _admins = [];
    private readonly List<ComponentOptions> _components = [];
    private readonly Dictionary<string, IReadOnlyDictionary<string, string>> _modules = [];
    private ServerOptions _options;
    private XElement? _clusterElement;
    private string? _dataDir;
    private string? _dbFile;
    private bool _modulesSeen;
    private XElement? _componentElement;

    public ConfigReader(ConfigContext ctx)
    {
        _ctx = ctx;
        _options = new ServerOptions { SourceFile = ctx.File };
        _readers = new Dictionary<string, Action<XElement>>(StringComparer.Ordinal)
        {
            ["host"] = ReadHost,
            ["listen"] = ReadListen,
            ["s2s"] = ReadS2s,
            ["acme"] = ReadAcme,
            ["cluster"] = ReadCluster,
            ["admin"] = ReadAdmin,
            ["component"] = ReadComponent,
            ["data-dir"] = ReadDataDir,
            ["http"] = ReadHttp,
            ["tls"] = ReadTls,
            ["storage"] = ReadStorage,
            ["authentication"] = ReadAuthentication,
            ["limits"] = ReadLimits,
            ["logging"] = ReadLogging,
            ["modules"] = ReadModules,
        };
    }

    /// <summary>One child of the root element.</summary>
    public void Read(XElement e)
    {
        if (!_readers.TryGetValue(e.Name.LocalName, out var reader))
        {
            throw _ctx.Error(e, "unknown element");
        }

        reader(e);
    }

    /// <summary>The checks across elements, then the options.</summary>
    public ServerOptions Finish(XElement root)
    {
        if (_hosts.Count == 0)
        {
            throw _ctx.Error(root, "at least one <host name=\"...\"/> is required");
        }

        if (_components.Find(c => _hosts.Exists(h => h.Name == c.Domain)) is { } clash)
        {
            throw _ctx.Error(_componentElement!, $"'{clash.Domain}' is a <host>; a component needs a domain of its own");
        }

        if (_components.Count > 0 && !_listeners.Exists(l => l.Kind == ListenerKind.Component))
        {
            throw _ctx.Error(_componentElement!, "components need a <listen type=\"component\" port=\"5347\"/> to connect to");
        }

        if (_clusterElement is not null && _options.Storage.Provider != "postgresql")
        {
            throw _ctx.Error(_clusterElement, "cluster mode needs <storage type=\"postgresql\" connection=\"...\"/>: the nodes share one database");
        }

        var dir = _dataDir ?? Path.Combine(_ctx.BaseDirectory, "data");
        return _options with
        {
            Hosts = _hosts,
            Listeners = _listeners,
            DataDirectory = dir,
            Storage = _options.Storage.Provider == "sqlite" ? _options.Storage with { File = _dbFile ?? Path.Combine(dir, "xmpp.db") } : _options.Storage,
            Modules = _modulesSeen ? _modules : ServerOptions.DefaultModules,
            Admins = _admins,
            Components = _components,
        };
    }

    /// <summary>&lt;host name&gt;, with an optional &lt;certificate cert key&gt;.</summary>
    private void ReadHost(XElement e)
    {
        _ctx.CheckAttributes(e, "name");
        var name = _ctx.Required(e, "name");
        if (!Jid.TryPrepareDomain(name, out var prepared))
        {
            throw _ctx.Error(e, $"'{name}' is not a valid domain name");
        }

        string? cert = null, key = null;
        foreach (var c in e.Elements())
        {
            if (c.Name.LocalName != "certificate")
            {
                throw _ctx.Error(c, "unknown element (expected <certificate>)");
            }

            _ctx.CheckAttributes(c, "cert", "key");
            cert = _ctx.PathAttr(c, "cert", required: true);
            key = _ctx.PathAttr(c, "key", required: true);
        }

        if (_hosts.Exists(h => h.Name == prepared))
        {
            throw _ctx.Error(e, $"host '{prepared}' is declared twice");
        }

        _hosts.Add(new HostOptions(prepared, cert, key));
    }

    /// <summary>&lt;listen type address port&gt;: the port's default depends on the type.</summary>
    private void ReadListen(XElement e)
    {
        _ctx.CheckAttributes(e, "type", "address", "port");
        var type = _ctx.Required(e, "type");
        var kind = type switch
        {
            "c2s" => ListenerKind.C2s,
            "c2s-tls" => ListenerKind.C2sDirectTls,
            "s2s" => ListenerKind.S2s,
            "s2s-tls" => ListenerKind.S2sDirectTls,
            "component" => ListenerKind.Component,
            "https" => ListenerKind.Https,
            _ => throw _ctx.Error(e, $"unknown listener type '{type}' (expected c2s, c2s-tls, s2s, s2s-tls, component or https)"),
        };
        var address = (string?)e.Attribute("address") ?? "localhost";
        if (address is not ("localhost" or "*") && !IPAddress.TryParse(address, out _))
        {
            throw _ctx.Error(e, $"address '{address}' is not an IP address, 'localhost' or '*'");
        }

        var defaultPort = kind switch
        {
            ListenerKind.C2s => 5222,
            ListenerKind.C2sDirectTls => 5223,
            ListenerKind.S2s => 5269,
            ListenerKind.Component => 5347,
            ListenerKind.Https => 5443,
            _ => 5270,
        };
        _listeners.Add(new ListenerOptions(kind, address, _ctx.Int(e, "port", defaultPort, 0, 65535)));
    }

    /// <summary>&lt;s2s&gt;: the federation policy, with its &lt;route&gt; children.</summary>
    private void ReadS2s(XElement e)
    {
        _ctx.CheckAttributes(e, "require-encryption", "dialback", "ca-file", "dns-server", "connect-timeout", "idle-timeout", "queue");
        var routes = new Dictionary<string, S2sRoute>(StringComparer.Ordinal);
        foreach (var r in e.Elements())
        {
            var (domain, route) = ReadRoute(r);
            routes[domain] = route;
        }

        var dns = (string?)e.Attribute("dns-server");
        if (dns is not null && !IPEndPoint.TryParse(dns, out _))
        {
            throw _ctx.Error(e, $"dns-server '{dns}' is not an IP address (with an optional :port)");
        }

        _options = _options with
        {
            S2s = new S2sOptions
            {
                RequireEncryption = _ctx.Bool(e, "require-encryption", true),
                AllowDialback = _ctx.Bool(e, "dialback", true),
                CaFile = _ctx.PathAttr(e, "ca-file", required: false),
                DnsServer = dns,
                ConnectTimeout = _ctx.Seconds(e, "connect-timeout", 10, 1, 600),
                IdleTimeout = _ctx.Seconds(e, "idle-timeout", 600, 1, 86_400),
                QueueLimit = _ctx.Int(e, "queue", 1000, 1, 1_000_000),
                Routes = routes,
            },
        };
    }

    /// <summary>&lt;acme directory contact http-address http-port renew-before-days check-interval retry-delay ca-file&gt;.</summary>
    private void ReadAcme(XElement e)
    {
        _ctx.CheckAttributes(e, "directory", "contact", "http-address", "http-port", "renew-before-days", "check-interval", "retry-delay", "ca-file");
        var directoryText = _ctx.Required(e, "directory");
        if (!Uri.TryCreate(directoryText, UriKind.Absolute, out var directory) || directory.Scheme != Uri.UriSchemeHttps)
        {
            throw _ctx.Error(e, $"directory '{directoryText}' is not an https URL (RFC 8555 §6.1: ACME runs over HTTPS)");
        }

        var contact = ((string?)e.Attribute("contact") ?? string.Empty).Split([' ', ','], StringSplitOptions.RemoveEmptyEntries);
        foreach (var c in contact)
        {
            if (!c.StartsWith("mailto:", StringComparison.Ordinal) || c.Length <= "mailto:".Length || !c.Contains('@', StringComparison.Ordinal))
            {
                throw _ctx.Error(e, $"contact '{c}' is not a mailto: URI such as mailto:admin@example.org");
            }
        }

        var address = (string?)e.Attribute("http-address") ?? "*";
        if (address is not ("localhost" or "*") && !IPAddress.TryParse(address, out _))
        {
            throw _ctx.Error(e, $"http-address '{address}' is not an IP address, 'localhost' or '*'");
        }

        var check = _ctx.Seconds(e, "check-interval", 86_400, 1, 7 * 86_400);
        _options = _options with
        {
            Acme = new AcmeOptions
            {
                Directory = directory,
                Contact = contact,
                HttpAddress = address,
                HttpPort = _ctx.Int(e, "http-port", 80, 1, 65535),
                RenewBeforeDays = _ctx.Int(e, "renew-before-days", 30, 1, 3650),
                CheckInterval = check,
                RetryDelay = _ctx.Seconds(e, "retry-delay", Math.Min(300, check.TotalSeconds), 1, 86_400),
                CaFile = _ctx.PathAttr(e, "ca-file", required: false),
            },
        };
    }

    /// <summary>&lt;cluster id node address port probe-timeout missed-probes&gt;.</summary>
    private void ReadCluster(XElement e)
    {
        _ctx.CheckAttributes(e, "id", "node", "address", "port", "probe-timeout", "missed-probes");
        var addressText = _ctx.Required(e, "address");
        if (!IPAddress.TryParse(addressText, out var address) || address.Equals(IPAddress.Any) || address.Equals(IPAddress.IPv6Any))
        {
            throw _ctx.Error(e, $"address '{addressText}' is not an IP address the other nodes can reach");
        }

        var id = (string?)e.Attribute("id") ?? "xmppserver";
        var node = (string?)e.Attribute("node") ?? Environment.MachineName;
        foreach (var (name, value) in new[] { ("id", id), ("node", node) })
        {
            if (value.Length is 0 or > 100 || !value.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.'))
            {
                throw _ctx.Error(e, $"{name} '{value}' must be 1 to 100 letters, digits, '-', '_' or '.'");
            }
        }

        _clusterElement = e;
        _options = _options with
        {
            Cluster = new ClusterOptions
            {
                Id = id,
                Node = node,
                Address = address,
                Port = _ctx.Int(e, "port", 11111, 1, 65535),
                ProbeTimeout = _ctx.Seconds(e, "probe-timeout", 2, 0.2, 60),
                MissedProbes = _ctx.Int(e, "missed-probes", 3, 1, 10),
            },
        };
    }

    /// <summary>&lt;s2s&gt;&lt;route domain host port direct-tls&gt;.</summary>
    private (string Domain, S2sRoute Route) ReadRoute(XElement r)
    {
        if (r.Name.LocalName != "route")
        {
            throw _ctx.Error(r, "unknown element (expected <route domain host port/>)");
        }

        _ctx.CheckAttributes(r, "domain", "host", "port", "direct-tls");
        var domainText = _ctx.Required(r, "domain");
        if (!Jid.TryPrepareDomain(domainText, out var routeDomain))
        {
            throw _ctx.Error(r, $"'{domainText}' is not a valid domain");
        }

        var directTls = _ctx.Bool(r, "direct-tls", false);
        return (routeDomain, new S2sRoute(_ctx.Required(r, "host"), _ctx.Int(r, "port", directTls ? 5270 : 5269, 1, 65535), directTls));
    }

    /// <summary>&lt;admin jid&gt;: an account's bare JID.</summary>
    private void ReadAdmin(XElement e)
    {
        _ctx.CheckAttributes(e, "jid");
        var text = _ctx.Required(e, "jid");
        if (!Jid.TryParse(text, out var admin) || admin.Local is null || admin.Resource is not null)
        {
            throw _ctx.Error(e, $"'{text}' is not the address of an account (user@host)");
        }

        _admins.Add(admin);
    }

    /// <summary>&lt;component domain secret&gt;: an external component (XEP-0114).</summary>
    private void ReadComponent(XElement e)
    {
        _ctx.CheckAttributes(e, "domain", "secret");
        var text = _ctx.Required(e, "domain");
        if (!Jid.TryPrepareDomain(text, out var domain))
        {
            throw _ctx.Error(e, $"'{text}' is not a valid domain name");
        }

        if (_components.Exists(c => c.Domain == domain))
        {
            throw _ctx.Error(e, $"component '{domain}' is declared twice");
        }

        _components.Add(new ComponentOptions(domain, _ctx.Required(e, "secret")));
        _componentElement ??= e;
    }

    private void ReadDataDir(XElement e)
    {
        _ctx.CheckAttributes(e, "path");
        _dataDir = _ctx.PathAttr(e, "path", required: true);
    }

    /// <summary>&lt;http cors-origins&gt;: * or exact origins, separated by spaces.</summary>
    private void ReadHttp(XElement e)
    {
        _ctx.CheckAttributes(e, "cors-origins");
        var origins = (e.Attribute("cors-origins")?.Value ?? "*").Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        foreach (var origin in origins)
        {
            if (origin != "*" && !(Uri.TryCreate(origin, UriKind.Absolute, out var u) && u.Scheme is "https" or "http" && u.AbsolutePath == "/" && !origin.EndsWith('/')))
            {
                throw _ctx.Error(e, $"cors-origins: '{origin}' is not * or an origin such as https://chat.example.org");
            }
        }

        _options = _options with { Http = new HttpOptions { CorsOrigins = origins } };
    }

    private void ReadTls(XElement e)
    {
        _ctx.CheckAttributes(e, "required");
        _options = _options with { Tls = new TlsOptions { Required = _ctx.Bool(e, "required", true) } };
    }

    /// <summary>Npgsql's complaint about a connection string, or null. Apart, so that a SQLite server never loads Npgsql.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static string? InvalidPostgresConnection(string connection)
    {
        try
        {
            _ = new Npgsql.NpgsqlConnectionStringBuilder(connection);
            return null;
        }
        catch (ArgumentException ex)
        {
            return ex.Message;
        }
    }

    /// <summary>&lt;storage type file connection&gt;: SQLite takes a file, PostgreSQL a connection string.</summary>
    private void ReadStorage(XElement e)
    {
        _ctx.CheckAttributes(e, "type", "file", "connection");
        var type = (string?)e.Attribute("type") ?? "sqlite";
        string? connection = null;
        switch (type)
        {
            case "sqlite":
                if (e.Attribute("connection") is not null)
                {
                    throw _ctx.Error(e, "'connection' is for type=\"postgresql\"; SQLite takes 'file'");
                }

                _dbFile = _ctx.PathAttr(e, "file", required: false);
                break;
            case "postgresql":
                if (e.Attribute("file") is not null)
                {
                    throw _ctx.Error(e, "'file' is for type=\"sqlite\"; PostgreSQL takes 'connection'");
                }

                connection = _ctx.Required(e, "connection");
                if (InvalidPostgresConnection(connection) is { } problem)
                {
                    throw _ctx.Error(e, $"'connection' is not a valid PostgreSQL connection string: {problem}");
                }

                break;
            default:
                throw _ctx.Error(e, $"unknown storage type '{type}' (supported: sqlite, postgresql)");
        }

        _options = _options with { Storage = new StorageOptions { Provider = type, ConnectionString = connection } };
    }

    /// <summary>&lt;authentication&gt;: SASL mechanisms, iterations and the limits on failed attempts.</summary>
    private void ReadAuthentication(XElement e)
    {
        _ctx.CheckAttributes(e, "iterations", "allow-plain", "max-failures", "failure-delay", "max-failure-delay", "ip-failures", "account-failures", "block-time", "scram");
        var scram = (string?)e.Attribute("scram") is { } scramText ? ReadScram(e, scramText) : new AuthOptions().Scram;
        _options = _options with
        {
            Auth = new AuthOptions
            {
                Scram = scram,
                Iterations = _ctx.Int(e, "iterations", 4096, ScramCredential.MinimumIterations, 10_000_000),
                AllowPlain = _ctx.Bool(e, "allow-plain", true),
                MaxFailuresPerStream = _ctx.Int(e, "max-failures", 6, 3, 6),
                FailureDelay = _ctx.Seconds(e, "failure-delay", 1, 0, 60),
                MaxFailureDelay = _ctx.Seconds(e, "max-failure-delay", 16, 0, 3600),
                FailuresPerIp = _ctx.Int(e, "ip-failures", 30, 0, 1_000_000),
                FailuresPerAccount = _ctx.Int(e, "account-failures", 10, 0, 1_000_000),
                BlockTime = _ctx.Seconds(e, "block-time", 300, 1, 86_400),
            },
        };
    }

    /// <summary>The 'scram' attribute of &lt;authentication&gt;: hashes by name, strongest first; none only with PLAIN.</summary>
    private IReadOnlyList<ScramHash> ReadScram(XElement e, string scramText)
    {
        var chosen = new List<ScramHash>();
        foreach (var token in scramText.Split([' ', ','], StringSplitOptions.RemoveEmptyEntries))
        {
            var hash = ScramHashes.All.Cast<ScramHash?>().FirstOrDefault(h => "SCRAM-" + token == h!.Value.MechanismName())
                ?? throw _ctx.Error(e, $"unknown SCRAM hash '{token}' in 'scram' (SHA-1, SHA-256, SHA-512)");
            chosen.Add(hash);
        }

        if (chosen.Count == 0 && !_ctx.Bool(e, "allow-plain", true))
        {
            throw _ctx.Error(e, "with scram=\"\" and allow-plain=\"false\" no client could log in");
        }

        return [.. chosen.Distinct().OrderByDescending(h => h.Size())];
    }

    /// <summary>&lt;limits&gt;: sizes, rates and timeouts, each with its range.</summary>
    private void ReadLimits(XElement e)
    {
        _ctx.CheckAttributes(
            e, "stanza-size", "s2s-stanza-size", "depth", "attributes", "namespaces", "auth-timeout", "output-queue", "output-bytes", "close-timeout",
            "idle-timeout", "roster-items", "connections-per-ip", "stanza-rate", "stanza-burst", "sessions-per-account");
        _options = _options with
        {
            Limits = new LimitOptions
            {
                StanzaSize = _ctx.Int(e, "stanza-size", 256 * 1024, 10_000, 64 * 1024 * 1024),
                S2sStanzaSize = _ctx.Int(e, "s2s-stanza-size", 512 * 1024, 10_000, 64 * 1024 * 1024),
                MaxDepth = _ctx.Int(e, "depth", 64, 8, 1024),
                MaxAttributes = _ctx.Int(e, "attributes", 64, 8, 10_000),
                MaxNamespaces = _ctx.Int(e, "namespaces", 32, 4, 10_000),
                AuthTimeout = _ctx.Seconds(e, "auth-timeout", 60, 1, 3600),
                OutputQueue = _ctx.Int(e, "output-queue", 10_000, 16, 10_000_000),
                OutputBytes = _ctx.Int(e, "output-bytes", 16 * 1024 * 1024, 64 * 1024, int.MaxValue),
                CloseTimeout = _ctx.Seconds(e, "close-timeout", 5, 0, 600),
                IdleTimeout = _ctx.Seconds(e, "idle-timeout", 300, 1, 86_400),
                RosterItems = _ctx.Int(e, "roster-items", 2000, 10, 1_000_000),
                ConnectionsPerIp = _ctx.Int(e, "connections-per-ip", 100, 0, 10_000_000),
                StanzaRate = _ctx.Double(e, "stanza-rate", 50, 0, 1_000_000),
                StanzaBurst = _ctx.Int(e, "stanza-burst", 250, 1, 10_000_000),
                SessionsPerAccount = _ctx.Int(e, "sessions-per-account", 16, 1, 100_000),
            },
        };
    }

    /// <summary>&lt;logging level format file&gt;.</summary>
    private void ReadLogging(XElement e)
    {
        _ctx.CheckAttributes(e, "level", "format", "file");
        var level = (string?)e.Attribute("level") ?? "Info";
        var match = Array.Find(LogLevels, l => string.Equals(l, level, StringComparison.OrdinalIgnoreCase))
            ?? throw _ctx.Error(e, $"unknown log level '{level}' (one of {string.Join(", ", LogLevels)})");
        var format = (string?)e.Attribute("format") ?? "text";
        if (format is not ("text" or "json"))
        {
            throw _ctx.Error(e, $"unknown log format '{format}' (text or json)");
        }

        _options = _options with
        {
            Logging = new LoggingOptions { Level = match, Format = format, File = _ctx.PathAttr(e, "file", required: false) },
        };
    }

    /// <summary>
    /// &lt;modules&gt;: one child per module with its options as attributes (the modules check their own
    /// options when they load); several &lt;modules&gt; elements add up.
    /// </summary>
    private void ReadModules(XElement e)
    {
        _ctx.CheckAttributes(e);
        _modulesSeen = true;
        foreach (var m in e.Elements())
        {
            var name = m.Name.LocalName;
            if (_modules.ContainsKey(name))
            {
                throw _ctx.Error(m, $"module '{name}' is listed twice");
            }

            var attrs = new Dictionary<string, string>();
            foreach (var a in m.Attributes())
            {
                attrs[a.Name.LocalName] = a.Value;
            }

            _modules[name] = attrs;
        }
    }
}
