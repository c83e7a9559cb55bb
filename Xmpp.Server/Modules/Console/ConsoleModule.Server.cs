using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using Xmpp.Core.Stanzas;
using Xmpp.Server.Hosting;
using Xmpp.Server.Logging;
using Xmpp.Server.Modules.AdHoc;
using Xmpp.Server.Modules.Admin;
using static Xmpp.Server.Modules.Console.ConsoleHtml;

namespace Xmpp.Server.Modules.Console;

/// <summary>
/// The Server page: announcements and the message of the day, through XEP-0133's own commands (the admin module's
/// handlers, found in the shared ad-hoc registry and run without a stanza), the configuration check and the reload
/// SIGHUP does, and the last log lines at Warn and above.
/// </summary>
public sealed partial class ConsoleModule
{
    /// <summary>This generation's ad-hoc commands, where the admin module registers XEP-0133's.</summary>
    private AdHocCommands _commands = null!;

    /// <summary>
    /// The outcome of each console session's last action on this page, shown by the page the action redirects to
    /// (a reload's outcome is read by the next generation's module: the table is handed over with the sessions).
    /// An entry lives as long as its session.
    /// </summary>
    private ConditionalWeakTable<ConsoleSession, Outcome> _outcomes = new();

    private sealed record Outcome(bool Ok, string Title, IReadOnlyList<string> Lines);

    private async Task ServerAsync(IHttpExchange http, ConsoleSession session)
    {
        var ct = http.Aborted;
        var hosts = _context.Options.Hosts;
        var host = http.Query("host") is { } asked && hosts.Any(h => h.Name == asked) ? asked : hosts[0].Name;
        var sb = new StringBuilder();
        if (http.Query("done") == "outcome" && _outcomes.TryGetValue(session, out var outcome))
        {
            AppendOutcome(sb, outcome);
        }

        sb.Append("<h2>Announcements and the message of the day</h2>");
        if (AdminCommand("announce", session) is null)
        {
            sb.Append("<p class=\"muted\">The admin module (XEP-0133) is not loaded: add <code>&lt;adhoc/&gt;</code> and <code>&lt;admin/&gt;</code> to <code>&lt;modules&gt;</code> to send announcements and set a message of the day.</p>");
        }
        else
        {
            if (hosts.Count > 1)
            {
                sb.Append(CultureInfo.InvariantCulture, $"<form class=\"search\" method=\"get\" action=\"{Prefix}server\">{HostField(host, "Host")}<button type=\"submit\">Show</button></form>");
            }

            var hostField = $"<input type=\"hidden\" name=\"host\" value=\"{H(host)}\">";
            sb.Append(CultureInfo.InvariantCulture, $"<form class=\"box\" method=\"post\" action=\"{Prefix}server/announce\">{Csrf(session)}{hostField}");
            sb.Append(CultureInfo.InvariantCulture, $"<p>A headline message from {H(host)} to every available session of its accounts, now (neither stored for those offline nor archived).</p>");
            sb.Append("<label>Subject<input name=\"subject\"></label>");
            sb.Append("<label>Announcement<textarea name=\"announcement\" rows=\"4\" required></textarea></label>");
            sb.Append("<button type=\"submit\">Send to everyone online</button></form>");

            // What XEP-0133's edit-motd shows as the current text (its form's default value).
            var edit = await RunAdminCommandAsync("edit-motd", session, host, null, ct).ConfigureAwait(false);
            var current = DataForm.Values(edit?.Form)?.GetValueOrDefault("motd") is { Count: > 0 } lines ? string.Join("\n", lines) : null;
            sb.Append(CultureInfo.InvariantCulture, $"<h3>Message of the day of {H(host)}</h3>");
            sb.Append(current is null
                ? "<p class=\"muted\">None.</p>"
                : $"<blockquote>{H(current).ReplaceLineEndings("<br>")}</blockquote>");
            sb.Append(CultureInfo.InvariantCulture, $"<form class=\"box\" method=\"post\" action=\"{Prefix}server/motd\">{Csrf(session)}{hostField}");
            sb.Append("<p>Sent once to each account: at its next login, and now to those online.</p>");
            sb.Append(CultureInfo.InvariantCulture, $"<label>Message of the day<textarea name=\"motd\" rows=\"4\" required>{H(current)}</textarea></label>");
            sb.Append(CultureInfo.InvariantCulture, $"<button type=\"submit\">{(current is null ? "Set" : "Change")} the message of the day</button></form>");
            if (current is not null)
            {
                sb.Append(CultureInfo.InvariantCulture, $"<form class=\"inline\" method=\"post\" action=\"{Prefix}server/motd/delete\">{Csrf(session)}{hostField}<button type=\"submit\" class=\"danger\">Delete the message of the day</button></form>");
            }
        }

        sb.Append("<h2>Configuration</h2>");
        sb.Append(CultureInfo.InvariantCulture, $"<p>File: <code>{H(_context.Server.Options.SourceFile ?? "(none: the built-in defaults)")}</code>. A reload reads it again and applies it without a restart, as <code>systemctl reload</code> (SIGHUP) does; a file that does not load is refused and the running configuration stays. The check loads it the same way and changes nothing.</p>");
        sb.Append(CultureInfo.InvariantCulture, $"<form class=\"inline\" method=\"post\" action=\"{Prefix}server/check\">{Csrf(session)}<button type=\"submit\">Check the configuration</button></form> ");
        sb.Append(CultureInfo.InvariantCulture, $"<form class=\"inline\" method=\"post\" action=\"{Prefix}server/reload\">{Csrf(session)}<button type=\"submit\">Reload</button></form>");

        var recent = RecentLog.Of(_context.Server.Logs)?.Entries() ?? [];
        sb.Append("<h2>Recent warnings</h2>");
        sb.Append(CultureInfo.InvariantCulture, $"<p class=\"muted\">The last {N(RecentLog.Capacity)} log lines at Warn and above since the server started, newest first.</p>");
        if (recent.Count == 0)
        {
            sb.Append("<p class=\"muted\">None.</p>");
        }
        else
        {
            sb.Append("<table class=\"log\"><thead><tr><th>time</th><th>level</th><th>logger</th><th>message</th></tr></thead><tbody>");
            foreach (var line in recent)
            {
                sb.Append(CultureInfo.InvariantCulture, $"<tr><td>{H(When(line.Time))}</td><td>{H(line.Level)}</td><td>{H(line.Logger)}</td><td>{H(line.Message)}</td></tr>");
            }

            sb.Append("</tbody></table>");
        }

        await ConsoleHtml.PageAsync(http, 200, "Server", sb.ToString(), session, "server").ConfigureAwait(false);
    }

    private static void AppendOutcome(StringBuilder sb, Outcome outcome)
    {
        sb.Append(CultureInfo.InvariantCulture, $"<div class=\"{(outcome.Ok ? "note" : "error")}\" role=\"{(outcome.Ok ? "status" : "alert")}\"><strong>{H(outcome.Title)}</strong>");
        if (outcome.Lines.Count > 0)
        {
            sb.Append("<ul>");
            foreach (var line in outcome.Lines)
            {
                sb.Append(CultureInfo.InvariantCulture, $"<li>{H(line)}</li>");
            }

            sb.Append("</ul>");
        }

        sb.Append("</div>");
    }

    /// <summary>One of XEP-0133's commands as the admin module registered it, or null without that module.</summary>
    private AdHocCommand? AdminCommand(string name, ConsoleSession session) =>
        _commands.Find(AdminModule.Namespace + "#" + name) is { } command && command.MayExecute(session.Admin) ? command : null;

    /// <summary>
    /// Runs one of XEP-0133's commands for the admin: the very handler an ad-hoc request runs (with no stanza), so
    /// that the console, XEP-0133 and the message-of-the-day cache never disagree. Null without the admin module.
    /// </summary>
    private async Task<AdHocResult?> RunAdminCommandAsync(string name, ConsoleSession session, string host, Dictionary<string, List<string>>? values, CancellationToken ct) =>
        AdminCommand(name, session) is { } command
            ? await command.Handler(new AdHocRequest(session.Admin, host, values, null), ct).ConfigureAwait(false)
            : null;

    private Task AnnounceAsync(IHttpExchange http, ConsoleSession session, Dictionary<string, string> form) =>
        AdminActionAsync(http, session, form, "announce", "The announcement", new(StringComparer.Ordinal)
        {
            ["subject"] = [form.GetValueOrDefault("subject") ?? string.Empty],
            ["announcement"] = Lines(form.GetValueOrDefault("announcement")),
        });

    private Task SetMotdAsync(IHttpExchange http, ConsoleSession session, Dictionary<string, string> form) =>
        AdminActionAsync(http, session, form, "set-motd", "The message of the day", new(StringComparer.Ordinal) { ["motd"] = Lines(form.GetValueOrDefault("motd")) });

    // XEP-0133's Delete Message of the Day has no form: the first request deletes.
    private Task DeleteMotdAsync(IHttpExchange http, ConsoleSession session, Dictionary<string, string> form) =>
        AdminActionAsync(http, session, form, "delete-motd", "The message of the day", null);

    /// <summary>A text-multi field's values: one per line (XEP-0004 §3.3).</summary>
    private static List<string> Lines(string? text) => [.. (text ?? string.Empty).ReplaceLineEndings("\n").Split('\n')];

    private async Task AdminActionAsync(IHttpExchange http, ConsoleSession session, Dictionary<string, string> form, string command, string title, Dictionary<string, List<string>>? values)
    {
        var host = form.GetValueOrDefault("host") ?? string.Empty;
        if (!_context.Options.Hosts.Any(h => h.Name == host))
        {
            await ProblemAsync(http, session, 400, $"This server does not serve the host '{host}'.", "server").ConfigureAwait(false);
            return;
        }

        if (await RunAdminCommandAsync(command, session, host, values, http.Aborted).ConfigureAwait(false) is not { } result)
        {
            await ProblemAsync(http, session, 409, "The admin module (XEP-0133) is not loaded.", "server").ConfigureAwait(false);
            return;
        }

        var ok = result.NoteType != AdHocNoteType.Error;
        _context.Log.Info("Console: {Admin} ran {Command} on {Host} from {Remote}: {Note}", session.Admin, command, host, http.RemoteAddress, result.Note);
        _outcomes.AddOrUpdate(session, new Outcome(ok, ok ? title + ": done." : title + ": not done.", result.Note is { } note ? [note] : []));
        await RedirectAsync(http, $"{Prefix}server?host={U(host)}&done=outcome").ConfigureAwait(false);
    }

    private async Task CheckConfigurationAsync(IHttpExchange http, ConsoleSession session)
    {
        var result = await _context.Server.CheckConfiguration(http.Aborted).ConfigureAwait(false);
        _context.Log.Info("Console: {Admin} checked the configuration from {Remote}: {Result}", session.Admin, http.RemoteAddress, result.Applied ? "it loads" : "refused: " + string.Join("; ", result.Messages));
        _outcomes.AddOrUpdate(session, new Outcome(result.Applied, result.Applied ? "The configuration loads; a reload would apply it." : "A reload would refuse the configuration; the running one would stay.", result.Messages));
        await RedirectAsync(http, $"{Prefix}server?done=outcome").ConfigureAwait(false);
    }

    /// <summary>
    /// The reload SIGHUP does. It replaces this module with the next generation's, which takes over the console's
    /// sessions and outcomes: this request still answers, and the page it redirects to is served by the new module
    /// (or, when the new configuration has no console, the outcome is shown at once).
    /// </summary>
    private async Task ReloadAsync(IHttpExchange http, ConsoleSession session)
    {
        _context.Log.Info("Console: {Admin} reloads the configuration from {Remote}", session.Admin, http.RemoteAddress);
        var result = await _context.Server.Reload(http.Aborted).ConfigureAwait(false);
        var outcome = new Outcome(result.Applied, result.Applied ? "The configuration was reloaded." : "The reload was refused; the running configuration stays.", result.Messages);
        _outcomes.AddOrUpdate(session, outcome);
        if (!_context.Server.Modules.Loaded.Any(m => m is ConsoleModule))
        {
            var sb = new StringBuilder();
            AppendOutcome(sb, outcome);
            sb.Append("<p>The console is not in the new configuration: it is no longer served.</p>");
            await ConsoleHtml.PageAsync(http, 200, "Server", sb.ToString(), null).ConfigureAwait(false);
            return;
        }

        await RedirectAsync(http, $"{Prefix}server?done=outcome").ConfigureAwait(false);
    }
}
