using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Xmpp.Core.Addressing;
using Xmpp.Server.Config;
using Xmpp.Server.Storage;

namespace Xmpp.Server.Modules.Invites;

/// <summary>
/// Invitations as the invites module, the invite command and the invitation page share them: new tokens, the
/// xmpp: URIs of XEP-0401 and XEP-0379, and the page's address.
/// </summary>
public static class Invitations
{
    /// <summary>XEP-0379 and XEP-0445: the element that carries a token in a subscription request or before registration.</summary>
    public const string PreAuthNamespace = "urn:xmpp:pars:0";

    /// <summary>XEP-0445 §3: the stream feature of a server that takes invitation tokens for in-band registration.</summary>
    public const string IbrTokenNamespace = "urn:xmpp:ibr-token:0";

    /// <summary>XEP-0401: the FORM_TYPE of the commands' results.</summary>
    public const string FormType = "urn:xmpp:invite#invitation";

    /// <summary>The path prefix of the invitation page on the HTTPS listener.</summary>
    public const string PagePath = "/invite/";

    /// <summary>The module's name in &lt;modules&gt;.</summary>
    public const string ModuleName = "invites";

    /// <summary>How long an invitation lasts unless told otherwise (the module's expires option).</summary>
    public const int DefaultDays = 7;

    /// <summary>128 random bits, base64url without padding: 22 characters that need no escaping in a URI.</summary>
    public static string NewToken()
    {
        Span<byte> bytes = stackalloc byte[16];
        RandomNumberGenerator.Fill(bytes);
        return Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
    }

    /// <summary>Whether a string has the shape of a token (so that a path or a stanza cannot smuggle anything else into a lookup).</summary>
    public static bool LooksLikeToken(string? token) =>
        token is { Length: 22 } && token.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_');

    /// <summary>
    /// The invitation's xmpp: URI: xmpp:HOST?register;preauth=TOKEN (xmpp:USER@HOST with a reserved username,
    /// XEP-0401 §3.5) for an account, xmpp:INVITER?roster;preauth=TOKEN[;ibr=y] for a contact (XEP-0379 §3.2,
    /// XEP-0445 §2.3).
    /// </summary>
    public static string XmppUri(Invite invite)
    {
        if (invite.Kind == InviteKind.Register)
        {
            var address = invite.Username is null ? EscapeDomain(invite.Host) : EscapeLocal(invite.Username) + "@" + EscapeDomain(invite.Host);
            return $"xmpp:{address}?register;preauth={invite.Token}";
        }

        var inviter = Jid.Parse(invite.Inviter!);
        return $"xmpp:{EscapeLocal(inviter.Local!)}@{EscapeDomain(inviter.Domain)}?roster;preauth={invite.Token}{(invite.AllowRegistration ? ";ibr=y" : string.Empty)}";
    }

    /// <summary>The invitation page: BASE/invite/TOKEN.</summary>
    public static Uri LandingUrl(Uri baseUrl, string token) => new(baseUrl, PagePath.TrimStart('/') + token);

    /// <summary>
    /// Where the page is served for a host, as the configuration says it, for the command line (the running server
    /// asks its listener): the invites module's url option, else https://HOST:PORT/ of the first HTTPS listener with
    /// a fixed port; null without either.
    /// </summary>
    public static Uri? ConfiguredBase(ServerOptions options, string host)
    {
        if (options.Modules.TryGetValue(ModuleName, out var moduleOptions) && moduleOptions.TryGetValue("url", out var url))
        {
            return ParseBase(url);
        }

        var https = options.Listeners.FirstOrDefault(l => l.Kind == ListenerKind.Https && l.Port != 0);
        return https is null ? null : new Uri(string.Create(CultureInfo.InvariantCulture, $"https://{host}{(https.Port == 443 ? string.Empty : ":" + https.Port)}/"));
    }

    /// <summary>The url option: an absolute http(s) URL, read as a folder.</summary>
    public static Uri? ParseBase(string url) =>
        Uri.TryCreate(url.EndsWith('/') ? url : url + "/", UriKind.Absolute, out var u) && u.Scheme is "https" or "http" ? u : null;

    /// <summary>XEP-0082 DateTime in UTC, as the commands' expire field carries it.</summary>
    public static string DateTime(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    /// <summary>A new invitation, stored.</summary>
    public static async Task<Invite> CreateAsync(IStorage storage, InviteKind kind, string host, Jid? inviter, string? username, bool allowRegistration, bool subscribe, int uses, TimeSpan validity, CancellationToken cancellationToken)
    {
        var now = DateTimeOffset.UtcNow;
        var invite = new Invite(NewToken(), kind, host, inviter?.Bare.ToString(), username, allowRegistration, subscribe, uses, now + validity, now);
        await storage.Invites.CreateAsync(invite, cancellationToken).ConfigureAwait(false);
        return invite;
    }

    /// <summary>RFC 5122 §2.8: a localpart in an IRI, with what the URI's own syntax uses percent-encoded.</summary>
    private static string EscapeLocal(string local)
    {
        var sb = new StringBuilder();
        foreach (var b in Encoding.UTF8.GetBytes(local))
        {
            var c = (char)b;
            if (b < 0x80 && (char.IsAsciiLetterOrDigit(c) || c is '-' or '.' or '_' or '~' or '!' or '$' or '(' or ')' or '*' or '+' or ',' or '=' or ':'))
            {
                sb.Append(c);
            }
            else
            {
                sb.Append('%').Append(b.ToString("X2", CultureInfo.InvariantCulture));
            }
        }

        return sb.ToString();
    }

    private static string EscapeDomain(string domain) => EscapeLocal(domain);
}
