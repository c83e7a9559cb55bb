using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;

namespace Xmpp.Server.Modules.ExternalServices;

/// <summary>
/// External service discovery (XEP-0215): the STUN and TURN servers clients need for calls (Jingle,
/// Conversations, Dino, Monal), given to this server's own users only. TURN credentials are made on each
/// request in the shared-secret scheme of the TURN REST API that coturn implements (use-auth-secret):
/// username "EXPIRY:USER", password base64(HMAC-SHA1(secret, username)), valid for ttl seconds.
/// The expiry is counted from a grid of steps (a 24th of ttl, 1 s to 1 h), so that requests close in time,
/// e.g. for all services and then for the TURN ones only, get the same credentials (§3.2 compares them).
/// Configured as &lt;extdisco stun="host:port" turn="host:port" turns="host:port" secret="…" ttl="86400"/&gt;,
/// each address list separated by spaces.
/// </summary>
[Specification("XEP-0215", "1.0.0", Note = "STUN, TURN (UDP and TCP) and TURNS entries from the configuration, for local users only, with time-limited TURN credentials in coturn's shared-secret (TURN REST API) scheme; services and credentials requests. Tested with coturn.")]
public sealed class ExternalServicesModule : IXmppModule
{
    public const string Namespace = "urn:xmpp:extdisco:2";

    private readonly List<Service> _services = [];
    private byte[] _secret = [];
    private TimeSpan _ttl;

    public string Name => "extdisco";

    public void Register(IModuleContext context)
    {
        foreach (var (option, type, transports) in new[] { ("stun", "stun", new[] { "udp" }), ("turn", "turn", ["udp", "tcp"]), ("turns", "turns", ["tcp"]) })
        {
            foreach (var address in (context.Option(option) ?? string.Empty).Split(' ', StringSplitOptions.RemoveEmptyEntries))
            {
                var colon = address.LastIndexOf(':');
                if (colon <= 0 || !int.TryParse(address[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port is < 1 or > 65535)
                {
                    throw new Config.ConfigException($"module extdisco: '{address}' in {option} must be host:port");
                }

                foreach (var transport in transports)
                {
                    _services.Add(new Service(type, address[..colon].Trim('[', ']'), port, transport));
                }
            }
        }

        var secret = context.Option("secret");
        _ttl = TimeSpan.FromSeconds(context.Number("ttl", 86_400, min: 1));
        if (_services.Count == 0)
        {
            throw new Config.ConfigException("module extdisco: give at least one of stun, turn, turns (host:port)");
        }

        if (_services.Any(s => s.Type != "stun"))
        {
            _secret = secret is { Length: >= 16 } ? Encoding.UTF8.GetBytes(secret)
                : throw new Config.ConfigException("module extdisco: TURN needs secret, the static-auth-secret of the TURN server (at least 16 characters)");
        }

        context.Disco.AddFeature(Namespace, IqTarget.Host);
        context.HandleIq("get", Namespace, "services", IqTarget.Host, (ctx, services, _) =>
        {
            var user = LocalUser(context, ctx);
            var type = services.GetAttribute("type");
            var result = new Element("services", Namespace).SetAttribute("type", type);
            var expires = Expiry(DateTimeOffset.UtcNow, _ttl);
            foreach (var s in _services.Where(s => type is null || s.Type == type))
            {
                result.Add(Describe(s, user, expires));
            }

            return ValueTask.FromResult<Element?>(result);
        });

        // §3.3: credentials for one service, e.g. when the first ones expired.
        context.HandleIq("get", Namespace, "credentials", IqTarget.Host, (ctx, credentials, _) =>
        {
            var user = LocalUser(context, ctx);
            var wanted = credentials.Child("service", Namespace);
            var matches = _services.Where(s => s.Type != "stun" && s.Host == wanted?.GetAttribute("host") &&
                (wanted.GetAttribute("type") is not { } t || t == s.Type) &&
                (wanted.GetAttribute("port") is not { } p || p == s.Port.ToString(CultureInfo.InvariantCulture))).ToList();
            if (matches.Count == 0)
            {
                throw new StanzaErrorException(StanzaErrorCondition.ItemNotFound, "no such service with credentials");
            }

            var result = new Element("credentials", Namespace);
            var expires = Expiry(DateTimeOffset.UtcNow, _ttl);
            foreach (var s in matches)
            {
                result.Add(Describe(s, user, expires));
            }

            return ValueTask.FromResult<Element?>(result);
        });
    }

    /// <summary>
    /// When credentials issued at <paramref name="now"/> expire: <paramref name="ttl"/> after the start of the
    /// step <paramref name="now"/> falls in, a step being a 24th of the ttl (at least 1 s, at most 1 h). Two
    /// requests in the same step get the same credentials, however many milliseconds apart (a client comparing
    /// a typed request with the full list must see the same entries), and every credential given out is valid
    /// for at least ttl minus one step.
    /// </summary>
    public static DateTimeOffset Expiry(DateTimeOffset now, TimeSpan ttl)
    {
        var step = Step(ttl).Ticks;
        return new DateTimeOffset(now.UtcTicks - (now.UtcTicks % step), TimeSpan.Zero) + ttl;
    }

    /// <summary>The grid of <see cref="Expiry"/>: a 24th of the ttl in whole seconds, at least 1 s, at most 1 h.</summary>
    public static TimeSpan Step(TimeSpan ttl) =>
        TimeSpan.FromSeconds(Math.Clamp((long)ttl.TotalSeconds / 24, 1, 3600));

    /// <summary>The TURN REST API credential pair for a user, valid until <paramref name="expires"/>.</summary>
    public static (string Username, string Password) Credentials(byte[] secret, string user, DateTimeOffset expires)
    {
        var username = expires.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture) + ":" + user;

        // The scheme is coturn's (and the TURN REST API draft's): HMAC-SHA1 is what the TURN server checks.
#pragma warning disable CA5350
        var password = Convert.ToBase64String(HMACSHA1.HashData(secret, Encoding.UTF8.GetBytes(username)));
#pragma warning restore CA5350
        return (username, password);
    }

    private static string LocalUser(IModuleContext context, Routing.StanzaContext ctx)
    {
        // Relays cost bandwidth: only this server's own users get them.
        if (ctx.Origin is null || ctx.From.Local is null || !context.Router.IsLocal(ctx.From.Domain))
        {
            throw new StanzaErrorException(StanzaErrorCondition.Forbidden, "external services are for this server's users");
        }

        return ctx.From.Bare.ToString();
    }

    private Element Describe(Service s, string user, DateTimeOffset expires)
    {
        var e = new Element("service", Namespace)
            .SetAttribute("type", s.Type).SetAttribute("host", s.Host)
            .SetAttribute("port", s.Port.ToString(CultureInfo.InvariantCulture)).SetAttribute("transport", s.Transport);
        if (s.Type != "stun")
        {
            var (username, password) = Credentials(_secret, user, expires);
            e.SetAttribute("username", username).SetAttribute("password", password)
             .SetAttribute("expires", expires.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture))
             .SetAttribute("restricted", "1");
        }

        return e;
    }

    private sealed record Service(string Type, string Host, int Port, string Transport);
}
