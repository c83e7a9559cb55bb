using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using Xmpp.Server.Hosting;
using Xmpp.Server.Storage;

namespace Xmpp.Server.Modules.Invites;

/// <summary>
/// The invitation page at /invite/TOKEN on the HTTPS listener (XEP-0401 §3.2, XEP-0379 §3.3), rendered on the
/// server, without scripts: who invites, clients per platform, the xmpp: link and its QR code, and a sign-up form
/// for clients that cannot use the token. Unknown tokens get 404, used or expired ones 410.
/// </summary>
/// <remarks>
/// The form has no session and no cookie, so there is no ambient authority for a cross-site request to ride on:
/// the token in the address is the permission, and whoever has it can use it anyway. What a forged request could
/// still do is make a visitor's browser use up a token it has seen; so a POST must come from this page's own
/// origin when the browser says where it comes from (Origin), and carry a nonce that only this page hands out:
/// an HMAC, under a key the server picks at start, of the token and the time the form was served, valid for an hour.
/// </remarks>
internal sealed class InvitePage(InvitesModule module)
{
    private static readonly TimeSpan FormLifetime = TimeSpan.FromHours(1);

    public async Task HandleAsync(IHttpExchange http)
    {
        var token = http.Path[Invitations.PagePath.Length..].TrimEnd('/');
        var invite = await module.FindAsync(token, http.Aborted).ConfigureAwait(false);
        var now = DateTimeOffset.UtcNow;
        if (invite is null)
        {
            await SendAsync(http, 404, "Invitation not found", "<p>This invitation does not exist, or it was removed. Ask the person who invited you for a new link.</p>").ConfigureAwait(false);
            return;
        }

        if (!invite.IsValid(now))
        {
            var why = invite.UsesLeft <= 0 ? "This invitation has been used already." : "This invitation has expired.";
            await SendAsync(http, 410, "Invitation no longer valid", $"<p>{why} Ask the person who invited you for a new link.</p>").ConfigureAwait(false);
            return;
        }

        if (http.Method == "POST")
        {
            await SignUpAsync(http, invite, now).ConfigureAwait(false);
            return;
        }

        await SendAsync(http, 200, Title(invite), Invitation(invite, now, null, null)).ConfigureAwait(false);
    }

    private static string Title(Invite invite) => invite.Inviter is null ? $"Join {invite.Host}" : $"{invite.Inviter} invites you to chat";

    /// <summary>The page: who invites, the link and its code, clients, and the form when the invitation creates accounts.</summary>
    private string Invitation(Invite invite, DateTimeOffset now, string? problem, string? username)
    {
        var uri = Invitations.XmppUri(invite);
        var sb = new StringBuilder();
        var who = invite.Inviter is null ? $"the administrators of <b>{H(invite.Host)}</b>" : $"<b>{H(invite.Inviter)}</b>";
        sb.Append(CultureInfo.InvariantCulture, $"<p>You have been invited by {who} to chat on XMPP (also called Jabber), an open and decentralised messaging network.</p>");
        sb.Append(CultureInfo.InvariantCulture, $"<p class=\"small\">This invitation is valid until {H(invite.Expires.UtcDateTime.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture))}.</p>");
        sb.Append("<h2>1. Install a client</h2><ul class=\"clients\">");
        sb.Append("<li><b>Android:</b> <a href=\"https://f-droid.org/packages/eu.siacs.conversations/\">Conversations</a> or <a href=\"https://f-droid.org/packages/de.monocles.chat/\">Monocles Chat</a></li>");
        sb.Append("<li><b>iPhone and iPad:</b> <a href=\"https://monal-im.org/\">Monal</a> or <a href=\"https://siskin.im/\">Siskin IM</a></li>");
        sb.Append("<li><b>Windows, macOS, Linux:</b> <a href=\"https://gajim.org/\">Gajim</a> or <a href=\"https://dino.im/\">Dino</a></li></ul>");
        sb.Append("<h2>2. Open the invitation in it</h2>");
        sb.Append(CultureInfo.InvariantCulture, $"<p><a class=\"button\" href=\"{H(uri)}\">Open the invitation</a></p>");
        sb.Append("<p class=\"small\">On another device, scan this code with the client (Conversations and Monal can):</p>");
        sb.Append("<div class=\"qr\">").Append(QrSvg.Render(uri, "QR code of the invitation")).Append("</div>");
        sb.Append(CultureInfo.InvariantCulture, $"<p class=\"small\">Or copy the link: <code>{H(uri)}</code></p>");
        if (invite.CreatesAccounts)
        {
            sb.Append(CultureInfo.InvariantCulture, $"<h2>Or create your account here</h2><p>If your client cannot open the invitation, create an account on <b>{H(invite.Host)}</b> with this form, then log in with your client.</p>");
            if (problem is not null)
            {
                sb.Append(CultureInfo.InvariantCulture, $"<p class=\"error\" role=\"alert\">{H(problem)}</p>");
            }

            var issued = now.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture);
            sb.Append("<form method=\"post\" autocomplete=\"off\">");
            sb.Append(CultureInfo.InvariantCulture, $"<input type=\"hidden\" name=\"issued\" value=\"{issued}\"><input type=\"hidden\" name=\"nonce\" value=\"{Nonce(invite.Token, issued)}\">");
            if (invite.Username is not null)
            {
                sb.Append(CultureInfo.InvariantCulture, $"<label>Username<input name=\"username\" value=\"{H(invite.Username)}\" readonly></label>");
            }
            else
            {
                sb.Append(CultureInfo.InvariantCulture, $"<label>Username<span class=\"row\"><input name=\"username\" value=\"{H(username ?? string.Empty)}\" required autocapitalize=\"none\" spellcheck=\"false\"><span>@{H(invite.Host)}</span></span></label>");
            }

            sb.Append("<label>Password<input type=\"password\" name=\"password\" required autocomplete=\"new-password\"></label>");
            sb.Append("<label>Password again<input type=\"password\" name=\"password2\" required autocomplete=\"new-password\"></label>");
            sb.Append("<button type=\"submit\">Create account</button></form>");
        }

        return sb.ToString();
    }

    /// <summary>The sign-up form: same origin, a fresh nonce of this page, matching passwords; then the account.</summary>
    private async Task SignUpAsync(IHttpExchange http, Invite invite, DateTimeOffset now)
    {
        var log = module.Context.Log;
        if (!invite.CreatesAccounts)
        {
            await SendAsync(http, 403, "Not possible", "<p>This invitation does not create accounts.</p>").ConfigureAwait(false);
            return;
        }

        if (http.Header("Origin") is { Length: > 0 } origin && origin != "null" && !HttpForms.SameOrigin(origin, http.Header("Host")))
        {
            log.Warn("Refusing a sign-up form from {Remote} posted from another origin ({Origin})", http.RemoteAddress, origin);
            await SendAsync(http, 403, "Not possible", "<p>The form must be sent from this page.</p>").ConfigureAwait(false);
            return;
        }

        var form = await HttpForms.ReadAsync(http).ConfigureAwait(false);
        if (form is null)
        {
            await SendAsync(http, 413, "Not possible", "<p>The form is too large.</p>").ConfigureAwait(false);
            return;
        }

        string? Field(string name) => form.TryGetValue(name, out var v) ? v : null;
        var issued = Field("issued");
        if (issued is null || Field("nonce") is not { } nonce || !CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(nonce), Encoding.ASCII.GetBytes(Nonce(invite.Token, issued)))
            || !long.TryParse(issued, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds) || now - DateTimeOffset.FromUnixTimeSeconds(seconds) > FormLifetime)
        {
            await SendAsync(http, 400, Title(invite), Invitation(invite, now, "The form was old or did not come from this page; please fill it in again.", Field("username"))).ConfigureAwait(false);
            return;
        }

        var username = (invite.Username ?? Field("username") ?? string.Empty).Trim();
        var password = Field("password") ?? string.Empty;
        if (username.Length == 0 || password.Length == 0)
        {
            await SendAsync(http, 400, Title(invite), Invitation(invite, now, "Choose a username and a password.", username)).ConfigureAwait(false);
            return;
        }

        if (password != Field("password2"))
        {
            await SendAsync(http, 400, Title(invite), Invitation(invite, now, "The passwords do not match.", username)).ConfigureAwait(false);
            return;
        }

        var (outcome, account) = await module.RedeemAsync(invite.Token, invite.Host, username, password, checkExpiry: true, http.Aborted).ConfigureAwait(false);
        var problem = outcome switch
        {
            RedeemOutcome.Ok => null,
            RedeemOutcome.Exists => "That username is taken; choose another.",
            RedeemOutcome.InvalidPassword => "That password cannot be used; choose another.",
            RedeemOutcome.WrongUsername => "This invitation is for another username.",
            RedeemOutcome.Gone => "This invitation is no longer valid.",
            _ => "That username cannot be used; choose another (letters, digits, dots, dashes).",
        };
        if (outcome == RedeemOutcome.Gone)
        {
            await SendAsync(http, 410, "Invitation no longer valid", $"<p>{problem}</p>").ConfigureAwait(false);
            return;
        }

        if (problem is not null)
        {
            await SendAsync(http, outcome == RedeemOutcome.Exists ? 409 : 400, Title(invite), Invitation(invite, now, problem, username)).ConfigureAwait(false);
            return;
        }

        log.Info("Account {Account} created from the invitation page by {Remote}", account, http.RemoteAddress);
        var contact = invite.Subscribe && invite.Inviter is not null ? $"<p><b>{H(invite.Inviter)}</b> is in your contacts already.</p>" : string.Empty;
        await SendAsync(
            http,
            200,
            "Your account is ready",
            $"<p>Your address is <b>{H(account!.ToString())}</b>. Log in with it and your password in your client (see the list below).</p>{contact}" +
            "<ul class=\"clients\"><li><b>Android:</b> <a href=\"https://f-droid.org/packages/eu.siacs.conversations/\">Conversations</a>, <a href=\"https://f-droid.org/packages/de.monocles.chat/\">Monocles Chat</a></li>" +
            "<li><b>iPhone and iPad:</b> <a href=\"https://monal-im.org/\">Monal</a>, <a href=\"https://siskin.im/\">Siskin IM</a></li><li><b>Windows, macOS, Linux:</b> <a href=\"https://gajim.org/\">Gajim</a>, <a href=\"https://dino.im/\">Dino</a></li></ul>").ConfigureAwait(false);
    }

    private string Nonce(string token, string issued) =>
        Convert.ToHexStringLower(HMACSHA256.HashData(module.FormKey, Encoding.UTF8.GetBytes(token + "|" + issued)));

    private static string H(string s) => WebUtility.HtmlEncode(s);

    /// <summary>A whole page: phone-sized, one stylesheet inline, no script, nothing from elsewhere; never cached, no referrer (the address holds the token).</summary>
    private static async Task SendAsync(IHttpExchange http, int status, string title, string body)
    {
        var html = $$"""
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <meta name="referrer" content="no-referrer">
            <title>{{H(title)}}</title>
            <style>
            body{font-family:system-ui,sans-serif;max-width:34rem;margin:0 auto;padding:1rem;line-height:1.45;color:#222;background:#fafafa}
            h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:1.6rem}
            .button,button{display:inline-block;background:#1565c0;color:#fff;border:0;border-radius:.4rem;padding:.7rem 1.2rem;font-size:1rem;text-decoration:none}
            .qr{max-width:14rem}.qr svg{width:100%;height:auto}
            label{display:block;margin:.6rem 0}input{display:block;width:100%;box-sizing:border-box;padding:.5rem;font-size:1rem;margin-top:.2rem}
            .row{display:flex;align-items:center;gap:.3rem}.row input{flex:1}
            .small{font-size:.9rem;color:#555}code{word-break:break-all}.error{color:#b00020;font-weight:bold}
            .clients li{margin:.3rem 0}
            </style>
            </head>
            <body>
            <h1>{{H(title)}}</h1>
            {{body}}
            </body>
            </html>

            """;
        var bytes = Encoding.UTF8.GetBytes(html);
        http.StatusCode = status;
        http.SetHeader("Content-Type", "text/html; charset=utf-8");
        http.SetHeader("Cache-Control", "no-store");
        http.SetHeader("Referrer-Policy", "no-referrer");
        http.SetHeader("X-Content-Type-Options", "nosniff");
        http.SetHeader("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'");
        http.SetHeader("Content-Length", bytes.Length.ToString(CultureInfo.InvariantCulture));
        await http.ResponseBody.WriteAsync(bytes, http.Aborted).ConfigureAwait(false);
    }
}
