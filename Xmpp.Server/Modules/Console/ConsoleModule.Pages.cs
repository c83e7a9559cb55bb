using System.Diagnostics;
using System.Globalization;
using System.Text;
using Xmpp.Core.Addressing;
using Xmpp.Server.Accounts;
using Xmpp.Server.Config;
using Xmpp.Server.Hosting;
using Xmpp.Server.Sessions;
using Xmpp.Server.Storage;
using Xmpp.Server.Streams;
using static Xmpp.Server.Modules.Console.ConsoleHtml;

namespace Xmpp.Server.Modules.Console;

/// <summary>The console's pages (GET) and actions (POST, after the session and its form token were checked).</summary>
public sealed partial class ConsoleModule
{
    /// <summary>Accounts per page of the user list.</summary>
    public const int PageSize = 50;

    /// <summary>Sessions per page of the session list.</summary>
    public const int SessionPageSize = 100;

    /// <summary>Fixed notes shown after an action (a code in the redirect, never text from the request).</summary>
    private static readonly Dictionary<string, string> Notes = new(StringComparer.Ordinal)
    {
        ["added"] = "The account was created.",
        ["password"] = "The password was changed; the account's FAST tokens no longer work.",
        ["deleted"] = "The account and its data were deleted; its sessions ended.",
        ["ended"] = "The session was ended.",
        ["ended-all"] = "The account's sessions were ended.",
        ["none"] = "There was no such session (it had ended already).",
        ["room-destroyed"] = "The room was destroyed; its occupants were told.",
        ["s2s-ended"] = "The stream is closing; a new one opens when there is something to send.",
        ["s2s-none"] = "There was no such stream (it had ended already).",
    };

    private Task PageAsync(IHttpExchange http, string path, ConsoleSession session) => path switch
    {
        Prefix => DashboardAsync(http, session),
        Prefix + "users" => UsersAsync(http, session),
        Prefix + "user" => UserAsync(http, session),
        Prefix + "sessions" => SessionsAsync(http, session),
        Prefix + "server" => ServerAsync(http, session),
        Prefix + "rooms" => RoomsAsync(http, session),
        Prefix + "room" => RoomAsync(http, session),
        Prefix + "federation" => FederationAsync(http, session),
        Prefix + "charts" => SendAsync(http, 200, "text/html; charset=utf-8", ChartsHtml()),
        Prefix + "console.js" => SendAsync(http, 200, "text/javascript; charset=utf-8", ConsoleCharts.Script),
        _ => ConsoleHtml.PageAsync(http, 404, "Not found", "<p>There is no such page.</p>", session),
    };

    private Task ActionAsync(IHttpExchange http, string path, ConsoleSession session, Dictionary<string, string> form) => path switch
    {
        Prefix + "logout" => SignOutAsync(http),
        Prefix + "users/add" => AddUserAsync(http, session, form),
        Prefix + "users/password" => ChangePasswordAsync(http, session, form),
        Prefix + "users/delete" => DeleteUserAsync(http, session, form),
        Prefix + "sessions/end" => EndSessionAsync(http, session, form),
        Prefix + "server/announce" => AnnounceAsync(http, session, form),
        Prefix + "server/motd" => SetMotdAsync(http, session, form),
        Prefix + "server/motd/delete" => DeleteMotdAsync(http, session, form),
        Prefix + "server/check" => CheckConfigurationAsync(http, session),
        Prefix + "server/reload" => ReloadAsync(http, session),
        Prefix + "rooms/destroy" => DestroyRoomAsync(http, session, form),
        Prefix + "federation/end" => EndS2sAsync(http, session, form),
        _ => ConsoleHtml.PageAsync(http, 404, "Not found", "<p>There is no such action.</p>", session),
    };

    private static string Note(IHttpExchange http) =>
        http.Query("done") is { } code && Notes.TryGetValue(code, out var text) ? $"<p class=\"note\" role=\"status\">{H(text)}</p>" : string.Empty;

    private async Task DashboardAsync(IHttpExchange http, ConsoleSession session)
    {
        var ctx = _context.Server;
        var ct = http.Aborted;
        var options = _context.Options;
        DateTimeOffset started;
        using (var process = Process.GetCurrentProcess())
        {
            started = new DateTimeOffset(process.StartTime.ToUniversalTime());
        }

        var accounts = await _context.Storage.Users.CountAsync(null, ct).ConfigureAwait(false);
        var connections = ctx.Connections.CountByKind().ToDictionary(c => c.Labels, c => c.Value, StringComparer.Ordinal);
        double Kind(string kind) => connections.GetValueOrDefault($"{{kind=\"{kind}\"}}");
        var sb = new StringBuilder();
        sb.Append("<div class=\"cards\">");
        Card(sb, "Version", H(Version.VersionModule.ProductVersion));
        Card(sb, "Uptime", H(Span(DateTimeOffset.UtcNow - started)));
        Card(sb, "Accounts", N(accounts));
        Card(sb, "Online sessions", N(ctx.Sessions.Count));
        Card(sb, "Client connections", N((long)Kind("c2s")));
        Card(sb, "Server connections", N((long)(Kind("s2s_in") + Kind("s2s_out"))));
        Card(sb, "Components", N((long)Kind("component")));
        Card(sb, "Console sessions", N(_sessions.Count));
        sb.Append("</div>");
        sb.Append(CultureInfo.InvariantCulture, $"<p class=\"muted\">Started {H(When(started))}. Storage: {H(_context.Storage.Describe())}.</p>");

        // The charts as of now; console.js (the only script, and only on this page) fetches them again every sample.
        sb.Append(CultureInfo.InvariantCulture, $"<h2>The last {H(ConsoleCharts.SpanText(_history.Span))}</h2>");
        sb.Append(CultureInfo.InvariantCulture, $"<section id=\"charts\" class=\"charts\" data-src=\"{Prefix}charts\" data-refresh=\"{(long)_history.Interval.TotalMilliseconds}\">{ChartsHtml()}</section>");

        if (ctx.Cluster is { } cluster)
        {
            // Cluster mode: every member, with the sessions bound on it (this node's own, the others' from the crash ledger).
            var perNode = (await cluster.SessionsAsync(ct).ConfigureAwait(false)).GroupBy(s => s.Node).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);
            sb.Append(CultureInfo.InvariantCulture, $"<h2>Cluster</h2><p>This console runs on node <strong>{H(cluster.Node)}</strong>; the sessions of every node are listed under Sessions.</p>");
            sb.Append("<table><thead><tr><th>node</th><th>address</th><th>status</th><th class=\"num\">sessions</th></tr></thead><tbody>");
            foreach (var m in cluster.Members())
            {
                sb.Append(CultureInfo.InvariantCulture, $"<tr><td>{H(m.Node)}{(m.IsSelf ? " <span class=\"muted\">(this node)</span>" : string.Empty)}</td><td>{H(m.Address)}</td><td>{H(m.Status)}</td><td class=\"num\">{N(perNode.GetValueOrDefault(m.Node))}</td></tr>");
            }

            sb.Append("</tbody></table>");
        }

        sb.Append("<h2>Hosts</h2><table><thead><tr><th>host</th><th class=\"num\">accounts</th><th class=\"num\">sessions</th><th>certificate</th><th>valid until</th></tr></thead><tbody>");
        foreach (var host in options.Hosts)
        {
            var count = await _context.Storage.Users.CountAsync(host.Name, ct).ConfigureAwait(false);
            var online = ctx.Sessions.All.Count(s => s.Jid.Domain == host.Name);
            var cert = ctx.Certificates.Find(host.Name);
            var kind = cert is null ? "none"
                : cert.Generated || cert.Certificate.Issuer == cert.Certificate.Subject ? "self-signed"
                : "issued by " + cert.Certificate.Issuer;
            var until = cert is null ? string.Empty : When(new DateTimeOffset(cert.Certificate.NotAfter.ToUniversalTime()));
            var left = cert is null ? string.Empty : $" <span class=\"muted\">({(int)(cert.Certificate.NotAfter.ToUniversalTime() - DateTime.UtcNow).TotalDays} days)</span>";
            sb.Append(CultureInfo.InvariantCulture, $"<tr><td>{H(host.Name)}</td><td class=\"num\">{N(count)}</td><td class=\"num\">{N(online)}</td><td>{H(kind)}</td><td>{H(until)}{left}</td></tr>");
        }

        sb.Append("</tbody></table>");

        sb.Append("<h2>Listeners</h2><table><thead><tr><th>kind</th><th>address</th><th class=\"num\">port</th></tr></thead><tbody>");
        foreach (var l in options.Listeners)
        {
            var port = l.Kind == ListenerKind.Https && ctx.HttpsPort() is { } p ? p : l.Port;
            sb.Append(CultureInfo.InvariantCulture, $"<tr><td>{H(l.Kind.Name())}</td><td>{H(l.Address)}</td><td class=\"num\">{port.ToString(CultureInfo.InvariantCulture)}</td></tr>");
        }

        sb.Append("</tbody></table>");

        // The counters of the metrics endpoint, read from the same rendering (so the two never disagree); the
        // histograms by their count and sum.
        sb.Append("<h2>Counters</h2><table><thead><tr><th>metric</th><th class=\"num\">value</th></tr></thead><tbody>");
        foreach (var line in ctx.Metrics.Render().Split('\n'))
        {
            if (line.Length == 0 || line[0] == '#' || line.Contains("_bucket{", StringComparison.Ordinal))
            {
                continue;
            }

            var space = line.LastIndexOf(' ');
            if (space <= 0 || !double.TryParse(line.AsSpan(space + 1), NumberStyles.Float, CultureInfo.InvariantCulture, out var value))
            {
                continue;
            }

            var shown = value == Math.Floor(value) && Math.Abs(value) < 1e15 ? N((long)value) : value.ToString("G6", CultureInfo.InvariantCulture);
            sb.Append(CultureInfo.InvariantCulture, $"<tr><td><code>{H(line[..space])}</code></td><td class=\"num\">{shown}</td></tr>");
        }

        sb.Append("</tbody></table>");
        sb.Append(CultureInfo.InvariantCulture, $"<script src=\"{Prefix}console.js\" defer></script>");
        await ConsoleHtml.PageAsync(http, 200, "Dashboard", sb.ToString(), session, string.Empty).ConfigureAwait(false);
    }

    private string ChartsHtml() => ConsoleCharts.Section(_history.Snapshot(), _history.Now, _history.Span);

    private static void Card(StringBuilder sb, string label, string value) =>
        sb.Append(CultureInfo.InvariantCulture, $"<div class=\"card\"><div class=\"label\">{H(label)}</div><div class=\"value\">{value}</div></div>");

    /// <summary>The user list of one host: a prefix search and keyset pages of <see cref="PageSize"/>, straight from the store's index.</summary>
    private async Task UsersAsync(IHttpExchange http, ConsoleSession session)
    {
        var hosts = _context.Options.Hosts;
        var host = hosts.FirstOrDefault(h => h.Name == http.Query("host"))?.Name ?? hosts[0].Name;
        var q = (http.Query("q") ?? string.Empty).Trim();
        var prefix = q.Length == 0 ? string.Empty : Precis.TryPrepareUsernameCaseMapped(q, out var prepared) ? prepared : q;
        var after = http.Query("after") is { Length: > 0 } a ? a : null;
        var page = await _context.Storage.Users.PageAsync(host, prefix, after, PageSize, http.Aborted).ConfigureAwait(false);

        var sb = new StringBuilder();
        sb.Append(Note(http));
        sb.Append(CultureInfo.InvariantCulture, $"<form class=\"search\" method=\"get\" action=\"{Prefix}users\">");
        sb.Append(HostField(host, "Host"));
        sb.Append(CultureInfo.InvariantCulture, $"<label>Username starts with<input name=\"q\" value=\"{H(q)}\" autocapitalize=\"none\" spellcheck=\"false\"></label><button type=\"submit\">Search</button></form>");
        sb.Append("<table><thead><tr><th>account</th><th class=\"num\">sessions</th></tr></thead><tbody>");
        foreach (var user in page)
        {
            var jid = user + "@" + host;
            var online = Jid.TryParse(jid, out var parsed) ? _context.Sessions.Resources(parsed).Count : 0;
            sb.Append(CultureInfo.InvariantCulture, $"<tr><td><a href=\"{Prefix}user?jid={U(jid)}\">{H(jid)}</a></td><td class=\"num\">{N(online)}</td></tr>");
        }

        if (page.Count == 0)
        {
            sb.Append("<tr><td colspan=\"2\" class=\"muted\">No account.</td></tr>");
        }

        sb.Append("</tbody></table>");
        Pager(sb, $"{Prefix}users?host={U(host)}&amp;q={U(q)}", after is not null, page.Count == PageSize ? page[^1] : null);

        sb.Append("<h2>Add an account</h2>");
        sb.Append(CultureInfo.InvariantCulture, $"<form class=\"box\" method=\"post\" action=\"{Prefix}users/add\" autocomplete=\"off\">{Csrf(session)}");
        sb.Append("<label>Username<input name=\"username\" required autocapitalize=\"none\" spellcheck=\"false\"></label>");
        sb.Append(HostField(host, "Host"));
        sb.Append("<label>Password<input type=\"password\" name=\"password\" required autocomplete=\"new-password\"></label>");
        sb.Append("<label>Password again<input type=\"password\" name=\"password2\" required autocomplete=\"new-password\"></label>");
        sb.Append("<button type=\"submit\">Add account</button></form>");
        await ConsoleHtml.PageAsync(http, 200, "Users", sb.ToString(), session, "users").ConfigureAwait(false);
    }

    private string HostField(string selected, string label)
    {
        var hosts = _context.Options.Hosts;
        if (hosts.Count == 1)
        {
            return $"<input type=\"hidden\" name=\"host\" value=\"{H(hosts[0].Name)}\">";
        }

        var sb = new StringBuilder().Append(CultureInfo.InvariantCulture, $"<label>{H(label)}<select name=\"host\">");
        foreach (var h in hosts)
        {
            sb.Append(CultureInfo.InvariantCulture, $"<option{(h.Name == selected ? " selected" : string.Empty)}>{H(h.Name)}</option>");
        }

        return sb.Append("</select></label>").ToString();
    }

    /// <summary>One account: its online resources, its last activity, and the forms that act on it.</summary>
    private async Task UserAsync(IHttpExchange http, ConsoleSession session)
    {
        var ct = http.Aborted;
        if (!Jid.TryParse(http.Query("jid") ?? string.Empty, out var jid) || jid.Local is null || jid.Resource is not null
            || !_context.Options.Hosts.Any(h => h.Name == jid.Domain))
        {
            await ConsoleHtml.PageAsync(http, 404, "Not found", "<p>That is not an account of this server.</p>", session, "users").ConfigureAwait(false);
            return;
        }

        var exists = await _context.Storage.Users.ExistsAsync(jid.Domain, jid.Local, ct).ConfigureAwait(false);
        var resources = _context.Sessions.Resources(jid);
        if (!exists && resources.Count == 0)
        {
            await ConsoleHtml.PageAsync(http, 404, "Not found", $"<p>There is no account {H(jid.ToString())}.</p>", session, "users").ConfigureAwait(false);
            return;
        }

        var sb = new StringBuilder();
        sb.Append(Note(http));
        var last = await _context.Storage.LastActivity.GetAsync(jid.Domain, jid.Local, ct).ConfigureAwait(false);
        sb.Append("<h2>Last activity</h2>");
        sb.Append(resources.Count > 0
            ? "<p>Online now.</p>"
            : last is null ? "<p class=\"muted\">Never logged out (or not recorded).</p>"
            : $"<p>Last logged out {H(When(last.When))}{(string.IsNullOrEmpty(last.Status) ? string.Empty : " with the status “" + H(last.Status) + "”")}.</p>");

        sb.Append("<h2>Resources online</h2>");
        SessionTable(sb, resources, session, back: "user");
        if (resources.Count > 0)
        {
            sb.Append(CultureInfo.InvariantCulture, $"<form class=\"inline\" method=\"post\" action=\"{Prefix}sessions/end\">{Csrf(session)}<input type=\"hidden\" name=\"jid\" value=\"{H(jid.ToString())}\"><input type=\"hidden\" name=\"back\" value=\"user\"><button type=\"submit\" class=\"danger\">End all its sessions</button></form>");
        }

        await RosterTableAsync(sb, jid, ct).ConfigureAwait(false);

        sb.Append("<h2>Change the password</h2>");
        sb.Append(CultureInfo.InvariantCulture, $"<form class=\"box\" method=\"post\" action=\"{Prefix}users/password\" autocomplete=\"off\">{Csrf(session)}<input type=\"hidden\" name=\"jid\" value=\"{H(jid.ToString())}\">");
        sb.Append("<label>New password<input type=\"password\" name=\"password\" required autocomplete=\"new-password\"></label>");
        sb.Append("<label>New password again<input type=\"password\" name=\"password2\" required autocomplete=\"new-password\"></label>");
        sb.Append("<button type=\"submit\">Change password</button></form>");

        sb.Append("<h2>Delete the account</h2>");
        sb.Append(CultureInfo.InvariantCulture, $"<form class=\"box\" method=\"post\" action=\"{Prefix}users/delete\">{Csrf(session)}<input type=\"hidden\" name=\"jid\" value=\"{H(jid.ToString())}\">");
        sb.Append("<p>The account, its contacts, messages and files are removed, and its sessions end. This cannot be undone.</p>");
        sb.Append("<label class=\"check\"><input type=\"checkbox\" name=\"confirm\" value=\"yes\" required> I am sure</label>");
        sb.Append("<button type=\"submit\" class=\"danger\">Delete account</button></form>");
        await ConsoleHtml.PageAsync(http, 200, jid.ToString(), sb.ToString(), session, "users").ConfigureAwait(false);
    }

    /// <summary>Roster items shown on the account page at most.</summary>
    public const int RosterShown = 500;

    /// <summary>
    /// The account's roster as its clients get it (RFC 6121 §2.1.2: the items in the roster, not the remembered
    /// inbound requests), ordered by address, the first <see cref="RosterShown"/>. Read through the roster manager:
    /// from its cache for an account online, else from storage without caching it.
    /// </summary>
    private async Task RosterTableAsync(StringBuilder sb, Jid account, CancellationToken ct)
    {
        var roster = await _context.Rosters.GetAsync(account, ct).ConfigureAwait(false);
        var items = roster.Items.Values.Where(i => i.InRoster).OrderBy(i => i.Jid, StringComparer.Ordinal).ToList();
        var waiting = roster.Items.Values.Count(i => i.PendingIn);
        sb.Append(CultureInfo.InvariantCulture, $"<h2>Roster</h2><p>{N(items.Count)} {(items.Count == 1 ? "contact" : "contacts")}{(items.Count > RosterShown ? string.Create(CultureInfo.InvariantCulture, $", the first {RosterShown} shown") : string.Empty)}{(waiting > 0 ? string.Create(CultureInfo.InvariantCulture, $"; {N(waiting)} subscription {(waiting == 1 ? "request" : "requests")} not yet answered") : string.Empty)}.</p>");
        if (items.Count == 0)
        {
            return;
        }

        sb.Append("<table><thead><tr><th>address</th><th>name</th><th>subscription</th><th>ask</th><th>groups</th></tr></thead><tbody>");
        foreach (var item in items.Take(RosterShown))
        {
            sb.Append(CultureInfo.InvariantCulture, $"<tr><td>{H(item.Jid)}</td><td>{H(item.Name)}</td><td>{H(item.Subscription.Name())}</td><td>{(item.PendingOut ? "subscribe" : string.Empty)}</td><td>{H(string.Join(", ", item.Groups))}</td></tr>");
        }

        sb.Append("</tbody></table>");
    }

    /// <summary>
    /// The bound sessions in pages of <see cref="SessionPageSize"/>, ordered by address, with a search by address prefix:
    /// keyset paging over the registry (filter, then a partial sort of what is left), so that a server with tens of
    /// thousands of sessions answers as fast as one with ten.
    /// </summary>
    private async Task SessionsAsync(IHttpExchange http, ConsoleSession session)
    {
        var q = (http.Query("q") ?? string.Empty).Trim();
        var after = http.Query("after") is { Length: > 0 } a ? a : null;
        var all = _context.Sessions.All.ToList();
        var matching = q.Length == 0 ? all : all.Where(s => s.Jid.ToString().StartsWith(q, StringComparison.OrdinalIgnoreCase)).ToList();
        var page = matching
            .Where(s => after is null || string.CompareOrdinal(s.Jid.ToString(), after) > 0)
            .OrderBy(s => s.Jid.ToString(), StringComparer.Ordinal)
            .Take(SessionPageSize)
            .ToList();

        var sb = new StringBuilder();
        sb.Append(Note(http));
        sb.Append(CultureInfo.InvariantCulture, $"<form class=\"search\" method=\"get\" action=\"{Prefix}sessions\"><label>Address starts with<input name=\"q\" value=\"{H(q)}\" autocapitalize=\"none\" spellcheck=\"false\"></label><button type=\"submit\">Search</button></form>");
        sb.Append(CultureInfo.InvariantCulture, $"<p>{N(all.Count)} {(all.Count == 1 ? "session" : "sessions")} bound");
        if (q.Length > 0)
        {
            sb.Append(CultureInfo.InvariantCulture, $", {N(matching.Count)} matching");
        }

        sb.Append(".</p>");
        SessionTable(sb, page, session, back: "sessions");
        Pager(sb, $"{Prefix}sessions?q={U(q)}", after is not null, page.Count == SessionPageSize ? page[^1].Jid.ToString() : null);
        if (_context.Server.Cluster is { } cluster)
        {
            await OtherNodesSessionsAsync(sb, cluster, q, session, http.Aborted).ConfigureAwait(false);
        }

        await ConsoleHtml.PageAsync(http, 200, "Sessions", sb.ToString(), session, "sessions").ConfigureAwait(false);
    }

    /// <summary>
    /// Cluster mode: the sessions bound on the other nodes (from the crash ledger), by address, with their node and a
    /// button to end each there; their details are on their own node's console.
    /// </summary>
    private static async Task OtherNodesSessionsAsync(StringBuilder sb, Cluster.ICluster cluster, string q, ConsoleSession session, CancellationToken ct)
    {
        var others = (await cluster.SessionsAsync(ct).ConfigureAwait(false))
            .Where(s => s.Node != cluster.Node && s.Session.ToString().StartsWith(q, StringComparison.OrdinalIgnoreCase))
            .OrderBy(s => s.Session.ToString(), StringComparer.Ordinal)
            .ToList();
        sb.Append(CultureInfo.InvariantCulture, $"<h2>On the other nodes</h2><p>{N(others.Count)} {(others.Count == 1 ? "session" : "sessions")}{(q.Length > 0 ? " matching" : string.Empty)}{(others.Count > SessionPageSize ? $", the first {SessionPageSize} shown" : string.Empty)}.</p>");
        if (others.Count == 0)
        {
            return;
        }

        sb.Append("<table><thead><tr><th>address</th><th>node</th><th></th></tr></thead><tbody>");
        foreach (var (jid, node) in others.Take(SessionPageSize))
        {
            sb.Append(CultureInfo.InvariantCulture, $"<tr><td><a href=\"{Prefix}user?jid={U(jid.Bare.ToString())}\">{H(jid.ToString())}</a></td><td>{H(node)}</td>");
            sb.Append(CultureInfo.InvariantCulture, $"<td><form class=\"inline\" method=\"post\" action=\"{Prefix}sessions/end\">{Csrf(session)}<input type=\"hidden\" name=\"jid\" value=\"{H(jid.ToString())}\"><input type=\"hidden\" name=\"back\" value=\"sessions\"><button type=\"submit\" class=\"danger\">End</button></form></td></tr>");
        }

        sb.Append("</tbody></table>");
    }

    /// <summary>Sessions with their client (from its caps), stream's transport, address and TLS version, SM and CSI state, and a button to end each.</summary>
    private void SessionTable(StringBuilder sb, IReadOnlyList<IClientSession> sessions, ConsoleSession session, string back)
    {
        if (sessions.Count == 0)
        {
            sb.Append("<p class=\"muted\">None.</p>");
            return;
        }

        var connections = _context.Server.Connections.All.OfType<StreamConnection>().ToDictionary(c => c.ConnectionId);
        sb.Append("<table><thead><tr><th>address</th><th>client</th><th>transport</th><th>from</th><th>TLS</th><th>presence</th><th>stream management</th><th>client state</th><th></th></tr></thead><tbody>");
        foreach (var s in sessions)
        {
            var stream = s.IsHibernating ? null : connections.GetValueOrDefault(s.ConnectionId);
            var transport = stream is null ? "—" : stream.Transport.Description.Trim().Trim('(', ')') is { Length: > 0 } d ? d : "TCP";
            var remote = stream?.Transport.Remote.ToString() ?? "—";
            var tls = stream?.Transport.Tls?.SslProtocol.ToString() ?? (stream?.Transport.IsSecure == true ? "HTTPS" : "—");
            var presence = s.IsAvailable ? string.Create(CultureInfo.InvariantCulture, $"available ({s.Priority})") : "unavailable";
            var sm = (s as ClientSession)?.Tracker is StreamManagement.ManagedSession managed
                ? s.IsHibernating ? "waiting for resumption" : managed.ResumeId is null ? "on" : "on, resumable"
                : "off";
            var csi = ClientState.ClientStateModule.IsInactive(s) ? "inactive" : "active";
            var client = ClientNames.FromPresence(s.LastPresence) ?? "—";
            sb.Append(CultureInfo.InvariantCulture, $"<tr><td><a href=\"{Prefix}user?jid={U(s.Jid.Bare.ToString())}\">{H(s.Jid.ToString())}</a></td><td>{H(client)}</td><td>{H(transport)}</td><td>{H(remote)}</td><td>{H(tls)}</td><td>{H(presence)}</td><td>{H(sm)}</td><td>{H(csi)}</td>");
            sb.Append(CultureInfo.InvariantCulture, $"<td><form class=\"inline\" method=\"post\" action=\"{Prefix}sessions/end\">{Csrf(session)}<input type=\"hidden\" name=\"jid\" value=\"{H(s.Jid.ToString())}\"><input type=\"hidden\" name=\"back\" value=\"{back}\"><button type=\"submit\" class=\"danger\">End</button></form></td></tr>");
        }

        sb.Append("</tbody></table>");
    }

    private async Task SignOutAsync(IHttpExchange http)
    {
        _sessions.Close(SessionCookie(http));
        ClearSessionCookie(http);
        await RedirectAsync(http, LoginPath).ConfigureAwait(false);
    }

    private async Task AddUserAsync(IHttpExchange http, ConsoleSession session, Dictionary<string, string> form)
    {
        var host = form.GetValueOrDefault("host") ?? string.Empty;
        var jid = (form.GetValueOrDefault("username") ?? string.Empty).Trim() + "@" + host;
        var password = form.GetValueOrDefault("password") ?? string.Empty;
        if (password.Length == 0 || password != form.GetValueOrDefault("password2"))
        {
            await ProblemAsync(http, session, 400, "The passwords are empty or do not match.", "users").ConfigureAwait(false);
            return;
        }

        var result = await _accounts.AddAsync(jid, password, http.Aborted).ConfigureAwait(false);
        if (result != AccountResult.Ok)
        {
            await ProblemAsync(http, session, result == AccountResult.Exists ? 409 : 400, Explain(jid, result), "users").ConfigureAwait(false);
            return;
        }

        var created = Jid.Parse(jid);
        _context.Log.Info("Console: {Admin} created the account {Account} from {Remote}", session.Admin, created, http.RemoteAddress);
        await RedirectAsync(http, $"{Prefix}user?jid={U(created.ToString())}&done=added").ConfigureAwait(false);
    }

    private async Task ChangePasswordAsync(IHttpExchange http, ConsoleSession session, Dictionary<string, string> form)
    {
        var jid = form.GetValueOrDefault("jid") ?? string.Empty;
        var password = form.GetValueOrDefault("password") ?? string.Empty;
        if (password.Length == 0 || password != form.GetValueOrDefault("password2"))
        {
            await ProblemAsync(http, session, 400, "The passwords are empty or do not match.", "users").ConfigureAwait(false);
            return;
        }

        var result = await _accounts.SetPasswordAsync(jid, password, http.Aborted).ConfigureAwait(false);
        if (result != AccountResult.Ok)
        {
            await ProblemAsync(http, session, result == AccountResult.NotFound ? 404 : 400, Explain(jid, result), "users").ConfigureAwait(false);
            return;
        }

        _context.Log.Info("Console: {Admin} changed the password of {Account} from {Remote}", session.Admin, jid, http.RemoteAddress);
        await RedirectAsync(http, $"{Prefix}user?jid={U(jid)}&done=password").ConfigureAwait(false);
    }

    private async Task DeleteUserAsync(IHttpExchange http, ConsoleSession session, Dictionary<string, string> form)
    {
        var jid = form.GetValueOrDefault("jid") ?? string.Empty;
        if (form.GetValueOrDefault("confirm") != "yes")
        {
            await ProblemAsync(http, session, 400, "Tick “I am sure” to delete the account.", "users").ConfigureAwait(false);
            return;
        }

        // The same steps as XEP-0133's delete-user: the account and its data, then its sessions end.
        var result = await _accounts.DeleteAsync(jid, http.Aborted).ConfigureAwait(false);
        if (result != AccountResult.Ok)
        {
            await ProblemAsync(http, session, result == AccountResult.NotFound ? 404 : 400, Explain(jid, result), "users").ConfigureAwait(false);
            return;
        }

        var account = Jid.Parse(jid);
        await _context.Sessions.EndAsync(_context.Sessions.Resources(account), SessionEnding.AccountDeleted, http.Aborted).ConfigureAwait(false);
        _context.Log.Info("Console: {Admin} deleted the account {Account} from {Remote}", session.Admin, account, http.RemoteAddress);
        await RedirectAsync(http, $"{Prefix}users?host={U(account.Domain)}&done=deleted").ConfigureAwait(false);
    }

    private async Task EndSessionAsync(IHttpExchange http, ConsoleSession session, Dictionary<string, string> form)
    {
        var text = form.GetValueOrDefault("jid") ?? string.Empty;
        if (!Jid.TryParse(text, out var jid) || jid.Local is null)
        {
            await ProblemAsync(http, session, 400, $"'{text}' is not an account's address.", "sessions").ConfigureAwait(false);
            return;
        }

        // The same steps as XEP-0133's end-user-session: a full address ends one session, a bare one all of them;
        // in cluster mode on the node they are on.
        var sessions = _context.Sessions.Named(jid);
        var ended = sessions.Count;
        if (ended == 0 && _context.Server.Cluster is { } cluster)
        {
            ended = await cluster.EndSessionsAsync(jid, http.Aborted).ConfigureAwait(false);
        }
        else
        {
            await _context.Sessions.EndAsync(sessions, SessionEnding.EndedByAdministrator, http.Aborted).ConfigureAwait(false);
        }

        _context.Log.Info("Console: {Admin} ended {Count} sessions of {Jid} from {Remote}", session.Admin, ended, jid, http.RemoteAddress);
        var done = ended == 0 ? "none" : jid.Resource is null ? "ended-all" : "ended";
        var location = form.GetValueOrDefault("back") == "user"
            ? $"{Prefix}user?jid={U(jid.Bare.ToString())}&done={done}"
            : $"{Prefix}sessions?done={done}";
        await RedirectAsync(http, location).ConfigureAwait(false);
    }

    private static Task ProblemAsync(IHttpExchange http, ConsoleSession session, int status, string problem, string current) =>
        ConsoleHtml.PageAsync(http, status, "Not done", $"<p class=\"error\" role=\"alert\">{H(problem)}</p><p><a href=\"{Prefix}{current}\">Back</a></p>", session, current);
}
