using System.Globalization;
using System.Net;
using System.Numerics;
using System.Xml;
using System.Xml.Linq;
using Xmpp.Core.Addressing;
using Xmpp.Core.Sasl;

namespace Xmpp.Server.Config;

/// <summary>
/// Reads server.config.xml. Every element and attribute is known; anything else is an error that names
/// the file, line and element. Relative paths resolve against the folder of the configuration file.
/// </summary>
public static class ConfigLoader
{
    private static readonly string[] LogLevels = ["Trace", "Debug", "Info", "Warn", "Error", "Fatal", "Off"];

    public static ServerOptions Load(string path)
    {
        var full = Path.GetFullPath(path);
        if (!File.Exists(full))
        {
            throw new ConfigException($"{full}: configuration file not found");
        }

        XDocument doc;
        try
        {
            var settings = new XmlReaderSettings { DtdProcessing = DtdProcessing.Prohibit, XmlResolver = null };
            using var reader = XmlReader.Create(full, settings);
            doc = XDocument.Load(reader, LoadOptions.SetLineInfo);
        }
        catch (XmlException ex)
        {
            throw new ConfigException($"{full}:{ex.LineNumber}: not well-formed XML: {ex.Message}", ex);
        }

        return Parse(doc, full);
    }

    public static ServerOptions Parse(string xml, string fileName)
    {
        try
        {
            return Parse(XDocument.Parse(xml, LoadOptions.SetLineInfo), fileName);
        }
        catch (XmlException ex)
        {
            throw new ConfigException($"{fileName}:{ex.LineNumber}: not well-formed XML: {ex.Message}", ex);
        }
    }

    private static ServerOptions Parse(XDocument doc, string file)
    {
        var baseDir = Path.GetDirectoryName(Path.GetFullPath(file)) ?? Directory.GetCurrentDirectory();
        var root = doc.Root ?? throw new ConfigException($"{file}: empty document");
        var ctx = new Ctx(file, baseDir);
        if (root.Name.LocalName != "xmppserver" || root.Name.NamespaceName.Length != 0)
        {
            throw ctx.Error(root, "the root element must be <xmppserver>");
        }

        ctx.CheckAttributes(root);
        var options = new ServerOptions { SourceFile = file };
        var hosts = new List<HostOptions>();
        var listeners = new List<ListenerOptions>();
        string? dataDir = null;
        string? dbFile = null;
        var modulesSeen = false;
        var modules = new Dictionary<string, IReadOnlyDictionary<string, string>>();
        var admins = new List<Jid>();
        var components = new List<ComponentOptions>();
        XElement? componentElement = null;

        foreach (var e in root.Elements())
        {
            switch (e.Name.LocalName)
            {
                case "host":
                    {
                        ctx.CheckAttributes(e, "name");
                        var name = ctx.Required(e, "name");
                        if (!Jid.TryPrepareDomain(name, out var prepared))
                        {
                            throw ctx.Error(e, $"'{name}' is not a valid domain name");
                        }

                        string? cert = null, key = null;
                        foreach (var c in e.Elements())
                        {
                            if (c.Name.LocalName != "certificate")
                            {
                                throw ctx.Error(c, "unknown element (expected <certificate>)");
                            }

                            ctx.CheckAttributes(c, "cert", "key");
                            cert = ctx.PathAttr(c, "cert", required: true);
                            key = ctx.PathAttr(c, "key", required: true);
                        }

                        if (hosts.Exists(h => h.Name == prepared))
                        {
                            throw ctx.Error(e, $"host '{prepared}' is declared twice");
                        }

                        hosts.Add(new HostOptions(prepared, cert, key));
                        break;
                    }

                case "listen":
                    {
                        ctx.CheckAttributes(e, "type", "address", "port");
                        var type = ctx.Required(e, "type");
                        var kind = type switch
                        {
                            "c2s" => ListenerKind.C2s,
                            "c2s-tls" => ListenerKind.C2sDirectTls,
                            "s2s" => ListenerKind.S2s,
                            "s2s-tls" => ListenerKind.S2sDirectTls,
                            "component" => ListenerKind.Component,
                            "https" => ListenerKind.Https,
                            _ => throw ctx.Error(e, $"unknown listener type '{type}' (expected c2s, c2s-tls, s2s, s2s-tls, component or https)"),
                        };
                        var address = (string?)e.Attribute("address") ?? "localhost";
                        if (address is not ("localhost" or "*") && !IPAddress.TryParse(address, out _))
                        {
                            throw ctx.Error(e, $"address '{address}' is not an IP address, 'localhost' or '*'");
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
                        var port = ctx.Int(e, "port", defaultPort, 0, 65535);
                        listeners.Add(new ListenerOptions(kind, address, port));
                        break;
                    }

                case "s2s":
                    {
                        ctx.CheckAttributes(e, "require-encryption", "dialback", "ca-file", "dns-server", "connect-timeout", "idle-timeout", "queue");
                        var routes = new Dictionary<string, S2sRoute>(StringComparer.Ordinal);
                        foreach (var r in e.Elements())
                        {
                            if (r.Name.LocalName != "route")
                            {
                                throw ctx.Error(r, "unknown element (expected <route domain host port/>)");
                            }

                            ctx.CheckAttributes(r, "domain", "host", "port", "direct-tls");
                            var domainText = ctx.Required(r, "domain");
                            if (!Jid.TryPrepareDomain(domainText, out var routeDomain))
                            {
                                throw ctx.Error(r, $"'{domainText}' is not a valid domain");
                            }

                            var directTls = ctx.Bool(r, "direct-tls", false);
                            routes[routeDomain] = new S2sRoute(ctx.Required(r, "host"), ctx.Int(r, "port", directTls ? 5270 : 5269, 1, 65535), directTls);
                        }

                        var dns = (string?)e.Attribute("dns-server");
                        if (dns is not null && !IPEndPoint.TryParse(dns, out _))
                        {
                            throw ctx.Error(e, $"dns-server '{dns}' is not an IP address (with an optional :port)");
                        }

                        options = options with
                        {
                            S2s = new S2sOptions
                            {
                                RequireEncryption = ctx.Bool(e, "require-encryption", true),
                                AllowDialback = ctx.Bool(e, "dialback", true),
                                CaFile = ctx.PathAttr(e, "ca-file", required: false),
                                DnsServer = dns,
                                ConnectTimeout = TimeSpan.FromSeconds(ctx.Double(e, "connect-timeout", 10, 1, 600)),
                                IdleTimeout = TimeSpan.FromSeconds(ctx.Double(e, "idle-timeout", 600, 1, 86_400)),
                                QueueLimit = ctx.Int(e, "queue", 1000, 1, 1_000_000),
                                Routes = routes,
                            },
                        };
                        break;
                    }

                case "admin":
                    {
                        ctx.CheckAttributes(e, "jid");
                        var text = ctx.Required(e, "jid");
                        if (!Jid.TryParse(text, out var admin) || admin.Local is null || admin.Resource is not null)
                        {
                            throw ctx.Error(e, $"'{text}' is not the address of an account (user@host)");
                        }

                        admins.Add(admin);
                        break;
                    }

                case "component":
                    {
                        ctx.CheckAttributes(e, "domain", "secret");
                        var text = ctx.Required(e, "domain");
                        if (!Jid.TryPrepareDomain(text, out var domain))
                        {
                            throw ctx.Error(e, $"'{text}' is not a valid domain name");
                        }

                        if (components.Exists(c => c.Domain == domain))
                        {
                            throw ctx.Error(e, $"component '{domain}' is declared twice");
                        }

                        components.Add(new ComponentOptions(domain, ctx.Required(e, "secret")));
                        componentElement ??= e;
                        break;
                    }

                case "data-dir":
                    ctx.CheckAttributes(e, "path");
                    dataDir = ctx.PathAttr(e, "path", required: true);
                    break;

                case "http":
                    ctx.CheckAttributes(e, "cors-origins");
                    var origins = (e.Attribute("cors-origins")?.Value ?? "*").Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                    foreach (var origin in origins)
                    {
                        if (origin != "*" && !(Uri.TryCreate(origin, UriKind.Absolute, out var u) && u.Scheme is "https" or "http" && u.AbsolutePath == "/" && !origin.EndsWith('/')))
                        {
                            throw ctx.Error(e, $"cors-origins: '{origin}' is not * or an origin such as https://chat.example.org");
                        }
                    }

                    options = options with { Http = new HttpOptions { CorsOrigins = origins } };
                    break;

                case "tls":
                    ctx.CheckAttributes(e, "required");
                    options = options with { Tls = new TlsOptions { Required = ctx.Bool(e, "required", true) } };
                    break;

                case "storage":
                    {
                        ctx.CheckAttributes(e, "type", "file", "connection");
                        var type = (string?)e.Attribute("type") ?? "sqlite";
                        string? connection = null;
                        switch (type)
                        {
                            case "sqlite":
                                if (e.Attribute("connection") is not null)
                                {
                                    throw ctx.Error(e, "'connection' is for type=\"postgresql\"; SQLite takes 'file'");
                                }

                                dbFile = ctx.PathAttr(e, "file", required: false);
                                break;
                            case "postgresql":
                                if (e.Attribute("file") is not null)
                                {
                                    throw ctx.Error(e, "'file' is for type=\"sqlite\"; PostgreSQL takes 'connection'");
                                }

                                connection = ctx.Required(e, "connection");
                                try
                                {
                                    _ = new Npgsql.NpgsqlConnectionStringBuilder(connection);
                                }
                                catch (ArgumentException ex)
                                {
                                    throw ctx.Error(e, $"'connection' is not a valid PostgreSQL connection string: {ex.Message}");
                                }

                                break;
                            default:
                                throw ctx.Error(e, $"unknown storage type '{type}' (supported: sqlite, postgresql)");
                        }

                        options = options with { Storage = new StorageOptions { Provider = type, ConnectionString = connection } };
                        break;
                    }

                case "authentication":
                    ctx.CheckAttributes(e, "iterations", "allow-plain", "max-failures", "failure-delay", "max-failure-delay", "ip-failures", "account-failures", "block-time", "scram");
                    var scram = new AuthOptions().Scram;
                    if ((string?)e.Attribute("scram") is { } scramText)
                    {
                        var chosen = new List<Xmpp.Core.Sasl.ScramHash>();
                        foreach (var token in scramText.Split([' ', ','], StringSplitOptions.RemoveEmptyEntries))
                        {
                            var hash = Xmpp.Core.Sasl.ScramHashes.All.Cast<Xmpp.Core.Sasl.ScramHash?>().FirstOrDefault(h => "SCRAM-" + token == h!.Value.MechanismName())
                                ?? throw ctx.Error(e, $"unknown SCRAM hash '{token}' in 'scram' (SHA-1, SHA-256, SHA-512)");
                            chosen.Add(hash);
                        }

                        if (chosen.Count == 0 && !ctx.Bool(e, "allow-plain", true))
                        {
                            throw ctx.Error(e, "with scram=\"\" and allow-plain=\"false\" no client could log in");
                        }

                        scram = [.. chosen.Distinct().OrderByDescending(h => h.Size())];
                    }

                    options = options with
                    {
                        Auth = new AuthOptions
                        {
                            Scram = scram,
                            Iterations = ctx.Int(e, "iterations", 4096, Xmpp.Core.Sasl.ScramCredential.MinimumIterations, 10_000_000),
                            AllowPlain = ctx.Bool(e, "allow-plain", true),
                            MaxFailuresPerStream = ctx.Int(e, "max-failures", 6, 3, 6),
                            FailureDelay = TimeSpan.FromSeconds(ctx.Double(e, "failure-delay", 1, 0, 60)),
                            MaxFailureDelay = TimeSpan.FromSeconds(ctx.Double(e, "max-failure-delay", 16, 0, 3600)),
                            FailuresPerIp = ctx.Int(e, "ip-failures", 30, 0, 1_000_000),
                            FailuresPerAccount = ctx.Int(e, "account-failures", 10, 0, 1_000_000),
                            BlockTime = TimeSpan.FromSeconds(ctx.Double(e, "block-time", 300, 1, 86_400)),
                        },
                    };
                    break;

                case "limits":
                    ctx.CheckAttributes(
                        e, "stanza-size", "s2s-stanza-size", "depth", "attributes", "namespaces", "auth-timeout", "output-queue", "output-bytes", "close-timeout",
                        "idle-timeout", "roster-items", "connections-per-ip", "stanza-rate", "stanza-burst", "sessions-per-account");
                    options = options with
                    {
                        Limits = new LimitOptions
                        {
                            StanzaSize = ctx.Int(e, "stanza-size", 256 * 1024, 10_000, 64 * 1024 * 1024),
                            S2sStanzaSize = ctx.Int(e, "s2s-stanza-size", 512 * 1024, 10_000, 64 * 1024 * 1024),
                            MaxDepth = ctx.Int(e, "depth", 64, 8, 1024),
                            MaxAttributes = ctx.Int(e, "attributes", 64, 8, 10_000),
                            MaxNamespaces = ctx.Int(e, "namespaces", 32, 4, 10_000),
                            AuthTimeout = TimeSpan.FromSeconds(ctx.Double(e, "auth-timeout", 60, 1, 3600)),
                            OutputQueue = ctx.Int(e, "output-queue", 10_000, 16, 10_000_000),
                            OutputBytes = ctx.Int(e, "output-bytes", 16 * 1024 * 1024, 64 * 1024, int.MaxValue),
                            CloseTimeout = TimeSpan.FromSeconds(ctx.Double(e, "close-timeout", 5, 0, 600)),
                            IdleTimeout = TimeSpan.FromSeconds(ctx.Double(e, "idle-timeout", 300, 1, 86_400)),
                            RosterItems = ctx.Int(e, "roster-items", 2000, 10, 1_000_000),
                            ConnectionsPerIp = ctx.Int(e, "connections-per-ip", 100, 0, 10_000_000),
                            StanzaRate = ctx.Double(e, "stanza-rate", 50, 0, 1_000_000),
                            StanzaBurst = ctx.Int(e, "stanza-burst", 250, 1, 10_000_000),
                            SessionsPerAccount = ctx.Int(e, "sessions-per-account", 16, 1, 100_000),
                        },
                    };
                    break;

                case "logging":
                    {
                        ctx.CheckAttributes(e, "level", "format", "file");
                        var level = (string?)e.Attribute("level") ?? "Info";
                        var match = Array.Find(LogLevels, l => string.Equals(l, level, StringComparison.OrdinalIgnoreCase))
                            ?? throw ctx.Error(e, $"unknown log level '{level}' (one of {string.Join(", ", LogLevels)})");
                        var format = (string?)e.Attribute("format") ?? "text";
                        if (format is not ("text" or "json"))
                        {
                            throw ctx.Error(e, $"unknown log format '{format}' (text or json)");
                        }

                        options = options with
                        {
                            Logging = new LoggingOptions { Level = match, Format = format, File = ctx.PathAttr(e, "file", required: false) },
                        };
                        break;
                    }

                case "modules":
                    ctx.CheckAttributes(e);
                    modulesSeen = true;
                    foreach (var m in e.Elements())
                    {
                        var name = m.Name.LocalName;
                        if (modules.ContainsKey(name))
                        {
                            throw ctx.Error(m, $"module '{name}' is listed twice");
                        }

                        var attrs = new Dictionary<string, string>();
                        foreach (var a in m.Attributes())
                        {
                            attrs[a.Name.LocalName] = a.Value;
                        }

                        modules[name] = attrs;
                    }

                    break;

                default:
                    throw ctx.Error(e, "unknown element");
            }
        }

        if (hosts.Count == 0)
        {
            throw ctx.Error(root, "at least one <host name=\"...\"/> is required");
        }

        if (components.Find(c => hosts.Exists(h => h.Name == c.Domain)) is { } clash)
        {
            throw ctx.Error(componentElement!, $"'{clash.Domain}' is a <host>; a component needs a domain of its own");
        }

        if (components.Count > 0 && !listeners.Exists(l => l.Kind == ListenerKind.Component))
        {
            throw ctx.Error(componentElement!, "components need a <listen type=\"component\" port=\"5347\"/> to connect to");
        }

        var dir = dataDir ?? Path.Combine(baseDir, "data");
        return options with
        {
            Hosts = hosts,
            Listeners = listeners,
            DataDirectory = dir,
            Storage = options.Storage.Provider == "sqlite" ? options.Storage with { File = dbFile ?? Path.Combine(dir, "xmpp.db") } : options.Storage,
            Modules = modulesSeen ? modules : ServerOptions.DefaultModules,
            Admins = admins,
            Components = components,
        };
    }

    private sealed class Ctx(string file, string baseDir)
    {
        public ConfigException Error(XElement e, string message)
        {
            var line = ((IXmlLineInfo)e).HasLineInfo() ? ((IXmlLineInfo)e).LineNumber : 0;
            return new ConfigException($"{file}:{line}: <{e.Name.LocalName}>: {message}");
        }

        public void CheckAttributes(XElement e, params string[] allowed)
        {
            foreach (var a in e.Attributes())
            {
                if (a.IsNamespaceDeclaration)
                {
                    continue;
                }

                if (Array.IndexOf(allowed, a.Name.LocalName) < 0 || a.Name.NamespaceName.Length != 0)
                {
                    throw Error(e, $"unknown attribute '{a.Name.LocalName}'" +
                        (allowed.Length > 0 ? $" (allowed: {string.Join(", ", allowed)})" : string.Empty));
                }
            }
        }

        public string Required(XElement e, string name) =>
            (string?)e.Attribute(name) is { Length: > 0 } v ? v : throw Error(e, $"attribute '{name}' is required");

        public string? PathAttr(XElement e, string name, bool required)
        {
            var v = required ? Required(e, name) : (string?)e.Attribute(name);
            return string.IsNullOrEmpty(v) ? null : Path.GetFullPath(Path.Combine(baseDir, v));
        }

        public int Int(XElement e, string name, int fallback, int min, int max) =>
            Number(e, name, fallback, min, max, "a whole number");

        public double Double(XElement e, string name, double fallback, double min, double max) =>
            Number(e, name, fallback, min, max, "a number");

        private T Number<T>(XElement e, string name, T fallback, T min, T max, string kind)
            where T : struct, INumber<T>
        {
            var v = (string?)e.Attribute(name);
            if (v is null)
            {
                return fallback;
            }

            if (!T.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out var n) || n < min || n > max)
            {
                throw Error(e, $"attribute '{name}' must be {kind} from {min} to {max}, not '{v}'");
            }

            return n;
        }

        public bool Bool(XElement e, string name, bool fallback)
        {
            var v = (string?)e.Attribute(name);
            return v switch
            {
                null => fallback,
                "true" or "1" or "yes" => true,
                "false" or "0" or "no" => false,
                _ => throw Error(e, $"attribute '{name}' must be true or false, not '{v}'"),
            };
        }
    }
}
