using System.Globalization;
using System.Net;
using System.Text;
using Xmpp.Server.Hosting;

namespace Xmpp.Server.Modules.Console;

/// <summary>The console's HTTP plumbing: forms, cookies, the page frame, the security headers and the stylesheet.</summary>
internal static class ConsoleHtml
{
    public const string CookieName = "__Secure-xmppconsole";

    public static string H(string? s) => WebUtility.HtmlEncode(s ?? string.Empty);

    /// <summary>A value for a query string.</summary>
    public static string U(string s) => Uri.EscapeDataString(s);

    public static string N(long n) => n.ToString("N0", CultureInfo.InvariantCulture);

    public static string When(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss 'UTC'", CultureInfo.InvariantCulture);

    public static string Span(TimeSpan t) =>
        t.TotalDays >= 1 ? string.Create(CultureInfo.InvariantCulture, $"{(int)t.TotalDays} d {t.Hours} h {t.Minutes} min")
        : t.TotalHours >= 1 ? string.Create(CultureInfo.InvariantCulture, $"{t.Hours} h {t.Minutes} min")
        : string.Create(CultureInfo.InvariantCulture, $"{t.Minutes} min {t.Seconds} s");

    /// <summary>The headers of every answer: nothing cached, nothing framed, no referrer, scripts only the console's own file.</summary>
    public static void SecurityHeaders(IHttpExchange http)
    {
        http.SetHeader("Cache-Control", "no-store");
        http.SetHeader("Referrer-Policy", "no-referrer");
        http.SetHeader("X-Content-Type-Options", "nosniff");
        http.SetHeader("X-Frame-Options", "DENY");
        http.SetHeader("Content-Security-Policy", "default-src 'self'; script-src 'self'; object-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'");
    }

    /// <summary>The session id from the Cookie header, or null.</summary>
    public static string? SessionCookie(IHttpExchange http)
    {
        if (http.Header("Cookie") is not { Length: > 0 } header)
        {
            return null;
        }

        foreach (var part in header.Split(';'))
        {
            var eq = part.IndexOf('=', StringComparison.Ordinal);
            if (eq > 0 && part.AsSpan(0, eq).Trim().SequenceEqual(CookieName))
            {
                return part[(eq + 1)..].Trim();
            }
        }

        return null;
    }

    /// <summary>The session cookie: only over HTTPS, invisible to scripts, never sent by another site's request, only under /admin/.</summary>
    public static void SetSessionCookie(IHttpExchange http, string id, TimeSpan maxAge) =>
        http.SetHeader("Set-Cookie", string.Create(CultureInfo.InvariantCulture, $"{CookieName}={id}; Path={ConsoleModule.Prefix}; Max-Age={(long)maxAge.TotalSeconds}; Secure; HttpOnly; SameSite=Strict"));

    public static void ClearSessionCookie(IHttpExchange http) =>
        http.SetHeader("Set-Cookie", $"{CookieName}=; Path={ConsoleModule.Prefix}; Max-Age=0; Secure; HttpOnly; SameSite=Strict");

    public static Task RedirectAsync(IHttpExchange http, string location)
    {
        http.StatusCode = 303;
        http.SetHeader("Location", location);
        http.SetHeader("Content-Length", "0");
        return Task.CompletedTask;
    }

    public static async Task SendAsync(IHttpExchange http, int status, string contentType, string body)
    {
        var bytes = Encoding.UTF8.GetBytes(body);
        http.StatusCode = status;
        http.SetHeader("Content-Type", contentType);
        http.SetHeader("Content-Length", bytes.Length.ToString(CultureInfo.InvariantCulture));
        await http.ResponseBody.WriteAsync(bytes, http.Aborted).ConfigureAwait(false);
    }

    /// <summary>A whole page: the navigation and sign-out form when signed in, the stylesheet, no script.</summary>
    public static Task PageAsync(IHttpExchange http, int status, string title, string body, ConsoleSession? session, string? current = null)
    {
        var sb = new StringBuilder(4096);
        sb.Append("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<meta name=\"referrer\" content=\"no-referrer\">\n");
        sb.Append(CultureInfo.InvariantCulture, $"<title>{H(title)} · XmppServer</title>\n<link rel=\"stylesheet\" href=\"{ConsoleModule.Prefix}console.css\">\n</head>\n<body>\n<header><span class=\"brand\">XmppServer</span>");
        if (session is not null)
        {
            sb.Append("<nav>");
            foreach (var (path, label) in new[] { (string.Empty, "Dashboard"), ("users", "Users"), ("sessions", "Sessions"), ("rooms", "Rooms"), ("federation", "Federation"), ("server", "Server") })
            {
                var cls = current == path ? " class=\"current\"" : string.Empty;
                sb.Append(CultureInfo.InvariantCulture, $"<a href=\"{ConsoleModule.Prefix}{path}\"{cls}>{label}</a>");
            }

            sb.Append("</nav>");
            sb.Append(CultureInfo.InvariantCulture, $"<form class=\"signout\" method=\"post\" action=\"{ConsoleModule.Prefix}logout\">{Csrf(session)}<span>{H(session.Admin.ToString())}</span><button type=\"submit\">Sign out</button></form>");
        }

        sb.Append("</header>\n<main>\n");
        sb.Append(CultureInfo.InvariantCulture, $"<h1>{H(title)}</h1>\n");
        sb.Append(body);
        sb.Append("\n</main>\n</body>\n</html>\n");
        return SendAsync(http, status, "text/html; charset=utf-8", sb.ToString());
    }

    /// <summary>
    /// The links of a keyset-paged list: "First page" when this is not the first, "Next page" (after <paramref name="last"/>)
    /// when this page was full. <paramref name="list"/> is the list's path and query without 'after' (already encoded).
    /// </summary>
    public static void Pager(StringBuilder sb, string list, bool notFirst, string? last)
    {
        sb.Append("<p class=\"pager\">");
        if (notFirst)
        {
            sb.Append(CultureInfo.InvariantCulture, $"<a href=\"{list}\">First page</a>");
        }

        if (last is not null)
        {
            sb.Append(CultureInfo.InvariantCulture, $"<a href=\"{list}&amp;after={U(last)}\" rel=\"next\">Next page</a>");
        }

        sb.Append("</p>");
    }

    /// <summary>The hidden field with the session's form token.</summary>
    public static string Csrf(ConsoleSession session) => $"<input type=\"hidden\" name=\"csrf\" value=\"{H(session.Csrf)}\">";

    /// <summary>The stylesheet, served as a file of its own so that the policy needs no inline styles.</summary>
    public const string Css = """
        :root{--fg:#1d2330;--muted:#5b6475;--line:#d9dee7;--bg:#f5f7fa;--accent:#1565c0;--danger:#b3261e}
        *{box-sizing:border-box}
        body{margin:0;font-family:system-ui,sans-serif;color:var(--fg);background:var(--bg);line-height:1.45}
        header{display:flex;flex-wrap:wrap;align-items:center;gap:1rem;background:#1d2330;color:#fff;padding:.6rem 1.2rem}
        header .brand{font-weight:700}
        header nav{display:flex;gap:.3rem;flex:1}
        header nav a{color:#cfd6e4;text-decoration:none;padding:.3rem .7rem;border-radius:.3rem}
        header nav a.current,header nav a:hover{background:#33405a;color:#fff}
        header form.signout{display:flex;align-items:center;gap:.6rem;margin:0}
        header form.signout span{color:#cfd6e4;font-size:.9rem}
        main{max-width:72rem;margin:0 auto;padding:1rem 1.2rem 3rem}
        h1{font-size:1.5rem;margin:.6rem 0 1rem}h2{font-size:1.1rem;margin:1.6rem 0 .6rem}
        table{border-collapse:collapse;width:100%;background:#fff;border:1px solid var(--line);margin-bottom:1rem}
        th,td{text-align:left;padding:.4rem .6rem;border-bottom:1px solid var(--line);vertical-align:top}
        th{background:#eef1f6;font-weight:600}
        td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
        .cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(11rem,1fr));gap:.8rem;margin-bottom:1rem}
        .card{background:#fff;border:1px solid var(--line);border-radius:.4rem;padding:.7rem .9rem}
        .card .label{color:var(--muted);font-size:.85rem}.card .value{font-size:1.5rem;font-weight:600}
        form.inline{display:inline;margin:0}
        form.box{background:#fff;border:1px solid var(--line);border-radius:.4rem;padding:.8rem 1rem;margin-bottom:1rem;max-width:34rem}
        form.search{display:flex;flex-wrap:wrap;gap:.5rem;align-items:end;margin-bottom:1rem}
        label{display:block;margin:.4rem 0;font-size:.9rem;color:var(--muted)}
        input,select{display:block;width:100%;padding:.4rem;font-size:1rem;margin-top:.15rem;border:1px solid #b8c0cc;border-radius:.3rem}
        textarea{display:block;width:100%;padding:.4rem;font:inherit;margin-top:.15rem;border:1px solid #b8c0cc;border-radius:.3rem}
        table.log td{font-size:.85rem}blockquote{background:#fff;border-left:3px solid var(--line);margin:0 0 1rem;padding:.5rem .9rem}
        form.search label{margin:0}form.search input,form.search select{width:auto}
        label.check{display:flex;gap:.4rem;align-items:center}label.check input{width:auto;display:inline}
        button{background:var(--accent);color:#fff;border:0;border-radius:.3rem;padding:.45rem .9rem;font-size:.95rem;cursor:pointer}
        button.danger{background:var(--danger)}
        header button{background:#33405a}
        .note{padding:.6rem .9rem;border-radius:.3rem;margin-bottom:1rem;background:#e3f1e5;border:1px solid #9bc9a2}
        .error{padding:.6rem .9rem;border-radius:.3rem;margin-bottom:1rem;background:#fbe9e7;border:1px solid #e6a59d;color:var(--danger)}
        .muted{color:var(--muted)}.pager{display:flex;gap:1rem}
        code{font-size:.9rem}
        .charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(18rem,1fr));gap:.8rem;margin-bottom:1rem}
        .charts svg{display:block;width:100%;height:auto;background:#fff;border:1px solid var(--line);border-radius:.4rem}
        .charts text{font-size:10px;fill:var(--muted)}.charts text.title,.charts text.now{font-size:12px;font-weight:600;fill:var(--fg)}
        .charts line{stroke:var(--line)}.charts line.axis{stroke:#b8c0cc}.charts polyline{fill:none;stroke-width:1.5;stroke-linejoin:round}
        .charts polygon.area{stroke:none;fill-opacity:.12}
        .charts .c0{stroke:var(--accent)}.charts .c1{stroke:#33405a}.charts .c2{stroke:var(--muted)}.charts .c3{stroke:var(--danger)}
        .charts rect.c0,.charts polygon.c0{fill:var(--accent)}.charts rect.c1{fill:#33405a}.charts rect.c2{fill:var(--muted)}.charts rect.c3{fill:var(--danger)}
        """;
}
