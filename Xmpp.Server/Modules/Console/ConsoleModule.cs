using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using Xmpp.Core.Addressing;
using Xmpp.Core.Sasl;
using Xmpp.Server.Accounts;
using Xmpp.Server.Hosting;
using static Xmpp.Server.Modules.Console.ConsoleHtml;

namespace Xmpp.Server.Modules.Console;

/// <summary>
/// The web administration console at /admin/ on the HTTPS listener: server-rendered HTML (one small script of its own
/// refreshes the dashboard's charts), for the accounts listed as &lt;admin jid="..."/&gt;. Sign-in checks the password
/// against the stored SCRAM keys with the SASL PLAIN mechanism the XMPP login uses, behind the same failure throttle; a
/// session is a random 256-bit id in a Secure, HttpOnly, SameSite=Strict cookie, kept in memory with an idle and an
/// absolute expiry; every POST carries the session's synchronizer token. Accounts and sessions are changed through the
/// code the command line and XEP-0133 use (<see cref="AccountService"/>, <see cref="Sessions.SessionEnding"/>).
/// </summary>
[Specification("RFC 6265", "§4.1", Note = "The web admin console's session cookie: __Secure- prefix, Secure, HttpOnly, SameSite=Strict (RFC 6265bis) and Path=/admin/, a random 256-bit id with idle and absolute expiry; every form with a synchronizer token.")]
public sealed partial class ConsoleModule : IXmppModule, IKeepsStateAcrossReload
{
    public const string Prefix = "/admin/";
    private const string LoginPath = Prefix + "login";
    private static readonly TimeSpan LoginFormLifetime = TimeSpan.FromHours(1);

    private IModuleContext _context = null!;
    private AccountService _accounts = null!;
    private ConsoleSessions _sessions = new(TimeProvider.System);

    /// <summary>The key of the sign-in form's nonce (the form has no session yet), drawn at start.</summary>
    private byte[] _formKey = RandomNumberGenerator.GetBytes(32);

    /// <summary>The dashboard's charts' samples (made in <see cref="Register"/>, or taken over from the generation before).</summary>
    private MetricsHistory _history = null!;

    public string Name => "console";

    internal ConsoleSessions Sessions => _sessions;

    internal MetricsHistory History => _history;

    public void TakeOver(IXmppModule previous)
    {
        if (previous is ConsoleModule old)
        {
            // A reload keeps everyone signed in (with the new generation's timeouts).
            var idle = _sessions.IdleTimeout;
            var lifetime = _sessions.Lifetime;
            _sessions = old._sessions;
            _sessions.IdleTimeout = idle;
            _sessions.Lifetime = lifetime;
            _formKey = old._formKey;
            _outcomes = old._outcomes;

            // The charts keep their hour: this generation's background work samples into the same history.
            _history = old._history;
        }
    }

    public void Register(IModuleContext context)
    {
        _context = context;
        _accounts = new AccountService(context.Options, context.Storage);
        _commands = context.Shared<AdHoc.AdHocCommands>();
        _muc = context.Shared<Muc.MucDirectory>();
        var server = context.Server;
        _history = new MetricsHistory(() => MetricsReading.Of(server), TimeProvider.System);
        _sessions.IdleTimeout = TimeSpan.FromMinutes(context.Number("idle-minutes", 30, 1, 24 * 60));
        _sessions.Lifetime = TimeSpan.FromHours(context.Number("lifetime-hours", 8, 1, 24 * 30));
        if (!context.Options.Listeners.Any(l => l.Kind == Config.ListenerKind.Https))
        {
            context.Log.Warn("The console needs an HTTPS listener (<listen type=\"https\" .../>); without one it is not reachable");
        }

        if (context.Options.Admins.Count == 0)
        {
            context.Log.Info("No <admin jid=\"...\"/> in the configuration: nobody can sign in to the console");
        }

        context.HandleSameOriginHttp(Prefix, HandleAsync, "GET", "POST");
        context.RunInBackground(stopping => _history.RunAsync(stopping));
        context.RunInBackground(async stopping =>
        {
            using var timer = new PeriodicTimer(TimeSpan.FromMinutes(1));
            try
            {
                while (await timer.WaitForNextTickAsync(stopping).ConfigureAwait(false))
                {
                    _sessions.Sweep();
                }
            }
            catch (OperationCanceledException)
            {
            }
        });
    }

    private async Task HandleAsync(IHttpExchange http)
    {
        SecurityHeaders(http);
        var path = http.Path;
        var post = http.Method == "POST";
        if (path == Prefix + "console.css" && !post)
        {
            await SendAsync(http, 200, "text/css; charset=utf-8", Css).ConfigureAwait(false);
            return;
        }

        if (post && CrossSite(http) is { } origin)
        {
            _context.Log.Warn("Console: refusing a POST to {Path} from {Remote} sent from another site ({Origin})", path, http.RemoteAddress, origin);
            await http.SendTextAsync(403, "forbidden: the form must come from this console").ConfigureAwait(false);
            return;
        }

        if (path == LoginPath)
        {
            await (post ? SignInAsync(http) : LoginPageAsync(http, 200, null)).ConfigureAwait(false);
            return;
        }

        var session = _sessions.Find(SessionCookie(http));
        if (session is not null && !_context.Options.IsAdmin(session.Admin))
        {
            // No longer an administrator (a reload removed the entry): the session ends.
            _context.Log.Info("Console: {Admin} is no longer an administrator; signing out", session.Admin);
            _sessions.CloseAll(session.Admin);
            session = null;
        }

        if (session is null)
        {
            if (post)
            {
                await http.SendTextAsync(403, "forbidden: sign in first").ConfigureAwait(false);
            }
            else
            {
                await RedirectAsync(http, LoginPath).ConfigureAwait(false);
            }

            return;
        }

        if (!post)
        {
            await PageAsync(http, path, session).ConfigureAwait(false);
            return;
        }

        var form = await HttpForms.ReadAsync(http).ConfigureAwait(false);
        if (form is null)
        {
            await http.SendTextAsync(413, "the form is too large").ConfigureAwait(false);
            return;
        }

        if (!session.CsrfMatches(form.GetValueOrDefault("csrf")))
        {
            _context.Log.Warn("Console: refusing a POST to {Path} by {Admin} from {Remote} without the session's form token", path, session.Admin, http.RemoteAddress);
            await http.SendTextAsync(403, "forbidden: the form token is missing or wrong; reload the page").ConfigureAwait(false);
            return;
        }

        await ActionAsync(http, path, session, form).ConfigureAwait(false);
    }

    /// <summary>
    /// What a browser says of a request that another site made (a second line behind the form token): its
    /// Sec-Fetch-Site when not same-origin, or its Origin when that names another origin. Null when it came from the
    /// console's own pages, or the client says nothing (not a browser). Under Referrer-Policy no-referrer, Chromium
    /// sends "Origin: null" for the console's own forms, which is why "null" is let through to the token check.
    /// </summary>
    private static string? CrossSite(IHttpExchange http)
    {
        if (http.Header("Sec-Fetch-Site") is { Length: > 0 } site && site is not ("same-origin" or "none"))
        {
            return "Sec-Fetch-Site: " + site;
        }

        return http.Header("Origin") is { Length: > 0 } origin && origin != "null" && !HttpForms.SameOrigin(origin, http.Header("Host")) ? origin : null;
    }

    private Task LoginPageAsync(IHttpExchange http, int status, string? problem, string? jid = null)
    {
        var issued = DateTimeOffset.UtcNow.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture);
        var sb = new StringBuilder();
        if (problem is not null)
        {
            sb.Append(CultureInfo.InvariantCulture, $"<p class=\"error\" role=\"alert\">{H(problem)}</p>");
        }

        sb.Append(CultureInfo.InvariantCulture, $"<form class=\"box\" method=\"post\" action=\"{LoginPath}\">");
        sb.Append(CultureInfo.InvariantCulture, $"<input type=\"hidden\" name=\"issued\" value=\"{issued}\"><input type=\"hidden\" name=\"nonce\" value=\"{LoginNonce(issued)}\">");
        sb.Append(CultureInfo.InvariantCulture, $"<label>Administrator's address<input name=\"jid\" value=\"{H(jid)}\" required autocomplete=\"username\" autocapitalize=\"none\" spellcheck=\"false\" placeholder=\"admin@example.org\"></label>");
        sb.Append("<label>Password<input type=\"password\" name=\"password\" required autocomplete=\"current-password\"></label>");
        sb.Append("<button type=\"submit\">Sign in</button></form>");
        sb.Append("<p class=\"muted\">For the accounts listed as <code>&lt;admin jid=\"…\"/&gt;</code> in the configuration, with their XMPP password.</p>");
        return ConsoleHtml.PageAsync(http, status, "Sign in", sb.ToString(), null);
    }

    private string LoginNonce(string issued) =>
        Convert.ToHexStringLower(HMACSHA256.HashData(_formKey, Encoding.UTF8.GetBytes("console-login|" + issued)));

    /// <summary>
    /// Sign-in: the form's nonce, the address's throttle, then the password through SASL PLAIN against the stored
    /// keys (a missing account against a decoy, so it takes as long), the account's throttle, and the admin list.
    /// Every refusal says the same, so the page tells nobody which accounts exist or are administrators.
    /// </summary>
    private async Task SignInAsync(IHttpExchange http)
    {
        var ctx = _context.Server;
        var log = _context.Log;
        var remote = http.RemoteAddress;
        var form = await HttpForms.ReadAsync(http).ConfigureAwait(false);
        if (form is null)
        {
            await http.SendTextAsync(413, "the form is too large").ConfigureAwait(false);
            return;
        }

        var given = form.GetValueOrDefault("jid")?.Trim() ?? string.Empty;
        var issued = form.GetValueOrDefault("issued");
        if (issued is null || form.GetValueOrDefault("nonce") is not { } nonce
            || !CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(nonce), Encoding.ASCII.GetBytes(LoginNonce(issued)))
            || !long.TryParse(issued, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds)
            || DateTimeOffset.UtcNow - DateTimeOffset.FromUnixTimeSeconds(seconds) > LoginFormLifetime)
        {
            await LoginPageAsync(http, 400, "The form was old or did not come from this page; please sign in again.", given).ConfigureAwait(false);
            return;
        }

        if (ctx.AuthFailures.IsBlocked(remote))
        {
            log.Warn("Console: sign-in from {Remote} refused: too many failed attempts from that address", remote);
            await LoginPageAsync(http, 429, "Too many failed attempts; try again later.", given).ConfigureAwait(false);
            return;
        }

        var password = form.GetValueOrDefault("password") ?? string.Empty;
        string? account = null;
        var verified = false;
        if (Jid.TryParse(given, out var jid) && jid.Local is not null && _context.Options.Hosts.Any(h => h.Name == jid.Domain))
        {
            var host = jid.Domain;
            ValueTask<ScramCredential?> Lookup(string user, ScramHash hash, CancellationToken ct) =>
                new(_context.Storage.Users.GetCredentialAsync(host, user, hash, ct));
            var plain = new PlainServerMechanism(Lookup, ctx.Decoys);
            var step = await plain.StepAsync(Encoding.UTF8.GetBytes("\0" + jid.Local + "\0" + password), http.Aborted).ConfigureAwait(false);
            verified = step.Kind == SaslStepKind.Success;
            account = (plain.Username ?? jid.Local) + "@" + host;
        }
        else
        {
            ctx.Decoys.Plain.Verify(password);
        }

        if (verified && ctx.AuthFailures.IsBlocked(account!))
        {
            verified = false;
        }

        if (!verified)
        {
            log.Warn("Console: sign-in failed for {User} from {Remote}", account ?? "?", remote);
            var delay = ctx.AuthFailures.RecordFailure(remote, account);
            if (delay > TimeSpan.Zero)
            {
                await Task.Delay(delay, http.Aborted).ConfigureAwait(false);
            }

            await LoginPageAsync(http, 403, "Wrong address or password, or not an administrator.", given).ConfigureAwait(false);
            return;
        }

        var admin = Jid.Parse(account!);
        if (!_context.Options.IsAdmin(admin))
        {
            // The right password of an account that may not administer: counted for the address only, so that
            // the account's own logins are not blocked by it.
            log.Warn("Console: {User} from {Remote} is not an administrator", admin, remote);
            var delay = ctx.AuthFailures.RecordFailure(remote);
            if (delay > TimeSpan.Zero)
            {
                await Task.Delay(delay, http.Aborted).ConfigureAwait(false);
            }

            await LoginPageAsync(http, 403, "Wrong address or password, or not an administrator.", given).ConfigureAwait(false);
            return;
        }

        ctx.AuthFailures.RecordSuccess(remote, account!);
        var (id, _) = _sessions.Open(admin);
        log.Info("Console: {Admin} signed in from {Remote}", admin, remote);
        SetSessionCookie(http, id, _sessions.Lifetime);
        await RedirectAsync(http, Prefix).ConfigureAwait(false);
    }

    /// <summary>What a failed account operation says.</summary>
    private static string Explain(string jid, AccountResult result) => result switch
    {
        AccountResult.InvalidJid => $"'{jid}' is not an account's address.",
        AccountResult.UnknownHost => $"This server does not serve the host of {jid}.",
        AccountResult.InvalidPassword => "That password cannot be used.",
        AccountResult.Exists => $"{jid} exists already.",
        AccountResult.NotFound => $"There is no account {jid}.",
        _ => "The operation failed.",
    };
}
