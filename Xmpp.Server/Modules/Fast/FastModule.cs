using System.Globalization;
using Xmpp.Core;
using Xmpp.Core.Sasl;
using Xmpp.Core.Xml;
using Xmpp.Server.Modules.Sasl2;
using Xmpp.Server.Streams;

namespace Xmpp.Server.Modules.Fast;

/// <summary>
/// Fast authentication streamlining tokens (XEP-0484) in SASL2: a client asks for a token inside a login and
/// logs in with it next time, in one round trip, with the HT-SHA-256 mechanisms (channel-bound where the TLS
/// allows). A token belongs to one account, user agent and mechanism; using it retires the one before it.
/// </summary>
public sealed class FastModule : IXmppModule, ISasl2Mechanisms
{
    public const string Namespace = "urn:xmpp:fast:0";
    private const string Kind = "fast";

    /// <summary>How long a token stays valid without being used.</summary>
    private static readonly TimeSpan TokenLifetime = TimeSpan.FromDays(14);

    private IModuleContext _context = null!;

    public string Name => "fast";

    public void Register(IModuleContext context)
    {
        _context = context;
        var sasl2 = context.Shared<Sasl2Extensions>();
        sasl2.AddMechanisms(this);
        sasl2.AddInline(10, Advertisement, UpdateTokenAsync);
    }

    public IEnumerable<string> Offered(IC2sContext stream) => HtServerMechanism.Offered(stream.ChannelBinding);

    public (ISaslServerMechanism? Mechanism, string? Refusal) Create(IC2sContext stream, string name, Element authenticate)
    {
        // §3: a token belongs to a user agent, which names itself.
        if (authenticate.Child("user-agent", Sasl2Module.Namespace)?.GetAttribute("id") is not { Length: > 0 } agent)
        {
            return (null, "FAST needs <user-agent id=...>");
        }

        var host = stream.Host!;
        return (new HtServerMechanism(name, (user, ct) => TokensAsync(host, user, agent, name, ct), stream.ChannelBinding), null);
    }

    /// <summary>Token mechanisms, usable after a token was requested in a login.</summary>
    private Element Advertisement(IC2sContext stream)
    {
        var fast = new Element("fast", Namespace);
        foreach (var name in Offered(stream))
        {
            fast.AddChild("mechanism", Namespace).AddText(name);
        }

        return fast;
    }

    /// <summary>
    /// The valid tokens of an account for one user agent and mechanism: the current one, and the previous one
    /// until the current is used. "Servers MUST bind tokens to the mechanism selected by the client in its
    /// original request, and reject attempts to use them with other mechanisms" (else a token issued for -EXPR
    /// would log in through -NONE, without the channel binding it was issued with).
    /// </summary>
    private async ValueTask<IReadOnlyList<string>> TokensAsync(string host, string user, string agent, string mechanism, CancellationToken ct)
    {
        if (await _context.Storage.Documents.GetAsync(host, user, Kind, agent, ct).ConfigureAwait(false) is not { } xml)
        {
            return [];
        }

        var doc = ElementParser.Parse(xml);
        if (!long.TryParse(doc.GetAttribute("expiry"), CultureInfo.InvariantCulture, out var expiry) || DateTimeOffset.FromUnixTimeSeconds(expiry) < DateTimeOffset.UtcNow)
        {
            return [];
        }

        var tokens = new List<string>(2);
        if (doc.GetAttribute("mechanism") == mechanism && doc.GetAttribute("current") is { } current)
        {
            tokens.Add(current);
        }

        if (doc.GetAttribute("previous-mechanism") == mechanism && doc.GetAttribute("previous") is { } previous)
        {
            tokens.Add(previous);
        }

        return tokens;
    }

    /// <summary>
    /// After a SASL2 success: a token used retires the one before it; &lt;fast invalidate='true'/&gt; removes it;
    /// &lt;request-token/&gt; issues a new one for the user agent (the old stays valid until the new is used).
    /// </summary>
    private async ValueTask UpdateTokenAsync(Sasl2Success success, CancellationToken ct)
    {
        if (success.UserAgent is not { } agent)
        {
            return;
        }

        var stream = success.Stream;
        var (host, user) = (stream.Host!, stream.User!);
        var used = success.Outcome.Mechanism as HtServerMechanism;
        var docs = _context.Storage.Documents;
        var stored = await docs.GetAsync(host, user, Kind, agent, ct).ConfigureAwait(false) is { } xml ? ElementParser.Parse(xml) : null;
        if (used is not null && success.Request.Child("fast", Namespace)?.GetAttribute("invalidate") is "true" or "1")
        {
            await docs.SetAsync(host, user, Kind, agent, null, ct).ConfigureAwait(false);
            stream.Log.Info("FAST token of {User} for a user agent invalidated", user);
            stored = null;
        }
        else if (used is not null && stored is not null && used.MatchedToken == stored.GetAttribute("current") && stored.GetAttribute("previous") is not null)
        {
            stored.SetAttribute("previous", null).SetAttribute("previous-mechanism", null);
            await docs.SetAsync(host, user, Kind, agent, stored.ToString(), ct).ConfigureAwait(false);
        }

        var wanted = success.Request.Child("request-token", Namespace)?.GetAttribute("mechanism");
        if (wanted is null || !Offered(stream).Contains(wanted))
        {
            return;
        }

        var token = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
        var expiry = DateTimeOffset.UtcNow + TokenLifetime;
        var doc = new Element("fast", Namespace)
            .SetAttribute("current", token)
            .SetAttribute("mechanism", wanted)
            .SetAttribute("previous", stored?.GetAttribute("current"))
            .SetAttribute("previous-mechanism", stored?.GetAttribute("mechanism"))
            .SetAttribute("expiry", expiry.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture));
        await docs.SetAsync(host, user, Kind, agent, doc.ToString(), ct).ConfigureAwait(false);
        success.Inner.Add(new Element("token", Namespace)
            .SetAttribute("expiry", expiry.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture))
            .SetAttribute("token", token));
    }
}
