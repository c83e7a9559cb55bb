using System.Collections.Concurrent;
using System.Globalization;
using Xmpp.Core.Addressing;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;
using Xmpp.Server.Accounts;
using Xmpp.Server.Config;
using Xmpp.Server.Modules.AdHoc;
using Xmpp.Server.Routing;
using Xmpp.Server.Sessions;

namespace Xmpp.Server.Modules.Admin;

/// <summary>
/// XEP-0133 Service Administration: ad-hoc commands (XEP-0050) for the accounts listed as
/// &lt;admin jid="..."/&gt; in the configuration, on every host of the server. The message of the day
/// is stored per host and sent once to each account, at its next login (and at once to those online).
/// </summary>
[Specification("XEP-0133", "1.3.1", Note = "add-user, delete-user, change-user-password, end-user-session, get-registered-users-num/-list, get-online-users-num/-list, announce, set-motd, edit-motd, delete-motd; for the admins in the configuration.")]
public sealed class AdminModule : IXmppModule, IKeepsStateAcrossReload
{
    public const string Namespace = "http://jabber.org/protocol/admin";
    private const string MotdKind = "motd";
    private const string MotdSeenKind = "motd-seen";
    private const string MotdNs = "urn:xmppserver:motd";

    private ConcurrentDictionary<string, Motd?> _motd = new(StringComparer.Ordinal);
    private IModuleContext _context = null!;
    private AccountService _accounts = null!;

    public string Name => "admin";

    public void TakeOver(IXmppModule previous)
    {
        if (previous is AdminModule old)
        {
            _motd = old._motd;
        }
    }

    public void Register(IModuleContext context)
    {
        _context = context;
        _accounts = new AccountService(context.Options, context.Storage);
        var commands = context.Shared<AdHocCommands>();
        context.AfterLoad(() =>
        {
            if (!commands.Served)
            {
                throw new ConfigException("module admin: its commands need the adhoc module (XEP-0050); add <adhoc/> to <modules>");
            }
        });

        if (context.Options.Admins.Count == 0)
        {
            context.Log.Info("No <admin jid=\"...\"/> in the configuration: nobody can use the administration commands");
        }

        Add(commands, "add-user", "Add User", AddUserAsync);
        Add(commands, "delete-user", "Delete User", DeleteUserAsync);
        Add(commands, "change-user-password", "Change User Password", ChangePasswordAsync);
        Add(commands, "end-user-session", "End User Session", EndSessionAsync);
        Add(commands, "get-registered-users-num", "Get Number of Registered Users", RegisteredCountAsync);
        Add(commands, "get-registered-users-list", "Get List of Registered Users", RegisteredListAsync);
        Add(commands, "get-online-users-num", "Get Number of Online Users", OnlineCountAsync);
        Add(commands, "get-online-users-list", "Get List of Online Users", OnlineListAsync);
        Add(commands, "announce", "Send Announcement to Online Users", AnnounceAsync);
        Add(commands, "set-motd", "Set Message of the Day", SetMotdAsync);
        Add(commands, "edit-motd", "Edit Message of the Day", SetMotdAsync);
        Add(commands, "delete-motd", "Delete Message of the Day", DeleteMotdAsync);

        context.Hook(HookNames.PresenceInitial, SendMotdAtLoginAsync);
    }

    private void Add(AdHocCommands commands, string name, string label, AdHocHandler handler) =>
        commands.Add(new AdHocCommand(Namespace + "#" + name, label, _context.Options.IsAdmin, handler));

    private async ValueTask<AdHocResult> AddUserAsync(AdHocRequest request, CancellationToken ct)
    {
        if (request.Values is null)
        {
            var form = Form("Adding a User", "Fill out this form to add a user.");
            Field(form, "accountjid", "jid-single", "The Jabber ID for the account to be added", required: true);
            Field(form, "password", "text-private", "The password for this account", required: true);
            Field(form, "password-verify", "text-private", "Retype password", required: true);
            return AdHocResult.Ask(form);
        }

        var jid = request.Value("accountjid");
        var password = request.Raw("password");
        var verify = request.Raw("password-verify");
        if (jid is null || password is null)
        {
            return AdHocResult.Failed("The account's address and a password are required.");
        }

        if (verify is not null && verify != password)
        {
            return AdHocResult.Failed("The passwords do not match.");
        }

        var result = await _accounts.AddAsync(jid, password, ct).ConfigureAwait(false);
        return result == AccountResult.Ok ? AdHocResult.Done($"Account {jid} created.") : AdHocResult.Failed(Explain(jid, result));
    }

    private async ValueTask<AdHocResult> DeleteUserAsync(AdHocRequest request, CancellationToken ct)
    {
        if (request.Values is null)
        {
            var form = Form("Deleting a User", "Fill out this form to delete a user.");
            Field(form, "accountjids", "jid-multi", "The Jabber ID(s) to delete", required: true);
            return AdHocResult.Ask(form);
        }

        var jids = request.Multi("accountjids");
        if (jids.Count == 0)
        {
            return AdHocResult.Failed("No account given.");
        }

        var problems = new List<string>();
        var deleted = new List<string>();
        foreach (var given in jids)
        {
            // The account of a full JID is meant (Smack's test framework deletes its accounts by their full JIDs).
            var text = Jid.TryParse(given, out var parsed) ? parsed.Bare.ToString() : given;
            var result = await _accounts.DeleteAsync(text, ct).ConfigureAwait(false);
            if (result != AccountResult.Ok)
            {
                problems.Add(Explain(text, result));
                continue;
            }

            deleted.Add(text);
            await _context.Sessions.EndAsync(_context.Sessions.Resources(Jid.Parse(text)), SessionEnding.AccountDeleted, ct).ConfigureAwait(false);
        }

        return Summary("Deleted", deleted, problems);
    }

    private async ValueTask<AdHocResult> ChangePasswordAsync(AdHocRequest request, CancellationToken ct)
    {
        if (request.Values is null)
        {
            var form = Form("Changing a User Password", "Fill out this form to change a user's password.");
            Field(form, "accountjid", "jid-single", "The Jabber ID for this account", required: true);
            Field(form, "password", "text-private", "The password for this account", required: true);
            return AdHocResult.Ask(form);
        }

        var jid = request.Value("accountjid");
        var password = request.Raw("password");
        if (jid is null || password is null)
        {
            return AdHocResult.Failed("The account's address and the new password are required.");
        }

        var result = await _accounts.SetPasswordAsync(jid, password, ct).ConfigureAwait(false);
        return result == AccountResult.Ok ? AdHocResult.Done($"Password of {jid} changed.") : AdHocResult.Failed(Explain(jid, result));
    }

    private async ValueTask<AdHocResult> EndSessionAsync(AdHocRequest request, CancellationToken ct)
    {
        if (request.Values is null)
        {
            var form = Form("Ending a User Session", "Fill out this form to end a user's session: a bare address ends all of its sessions.");
            Field(form, "accountjids", "jid-multi", "The Jabber ID(s) for which to end sessions", required: true);
            return AdHocResult.Ask(form);
        }

        var jids = request.Multi("accountjids");
        if (jids.Count == 0)
        {
            return AdHocResult.Failed("No address given.");
        }

        var ended = 0;
        var problems = new List<string>();
        foreach (var text in jids)
        {
            if (!Jid.TryParse(text, out var jid) || jid.Local is null)
            {
                problems.Add($"'{text}' is not an account's address.");
                continue;
            }

            var sessions = _context.Sessions.Named(jid);
            if (sessions.Count == 0 && _context.Server.Cluster is { } cluster)
            {
                // Cluster mode: the sessions are on the account's home node.
                var there = await cluster.EndSessionsAsync(jid, ct).ConfigureAwait(false);
                if (there > 0)
                {
                    ended += there;
                    continue;
                }
            }

            if (sessions.Count == 0)
            {
                problems.Add($"{text} has no session.");
                continue;
            }

            ended += sessions.Count;
            await _context.Sessions.EndAsync(sessions, SessionEnding.EndedByAdministrator, ct).ConfigureAwait(false);
        }

        _context.Log.Info("{Admin} ended {Count} sessions", request.Requester, ended);
        var note = ended == 1 ? "1 session ended." : $"{ended} sessions ended.";
        return problems.Count == 0 ? AdHocResult.Done(note) : new AdHocResult(true, null, note + " " + string.Join(" ", problems), ended == 0 ? AdHocNoteType.Error : AdHocNoteType.Warn);
    }

    private async ValueTask<AdHocResult> RegisteredCountAsync(AdHocRequest request, CancellationToken ct)
    {
        var users = await _context.Storage.Users.ListAsync(request.Host, ct).ConfigureAwait(false);
        var result = Result();
        Field(result, "registeredusersnum", null, "The number of registered users", values: users.Count.ToString(CultureInfo.InvariantCulture));
        return AdHocResult.Done(null, result);
    }

    private async ValueTask<AdHocResult> RegisteredListAsync(AdHocRequest request, CancellationToken ct)
    {
        if (request.Values is null)
        {
            return AdHocResult.Ask(MaxItemsForm("Requesting List of Registered Users"));
        }

        var users = await _context.Storage.Users.ListAsync(request.Host, ct).ConfigureAwait(false);
        var jids = users.Select(u => u.Username + "@" + u.Host).Take(MaxItems(request)).ToArray();
        var result = Result();
        Field(result, "registereduserjids", "jid-multi", "The list of all users", values: jids);
        return AdHocResult.Done(null, result);
    }

    private async ValueTask<AdHocResult> OnlineCountAsync(AdHocRequest request, CancellationToken ct)
    {
        var result = Result();
        Field(result, "onlineusersnum", null, "The number of online users", values: (await OnlineUsersAsync(request.Host, ct).ConfigureAwait(false)).Count.ToString(CultureInfo.InvariantCulture));
        return AdHocResult.Done(null, result);
    }

    private async ValueTask<AdHocResult> OnlineListAsync(AdHocRequest request, CancellationToken ct)
    {
        if (request.Values is null)
        {
            return AdHocResult.Ask(MaxItemsForm("Requesting List of Online Users"));
        }

        var result = Result();
        Field(result, "onlineuserjids", "jid-multi", "The list of all online users", values: (await OnlineUsersAsync(request.Host, ct).ConfigureAwait(false)).Take(MaxItems(request)).ToArray());
        return AdHocResult.Done(null, result);
    }

    /// <summary>Accounts of the host with at least one bound session (on any node of a cluster), ordered.</summary>
    private async ValueTask<List<string>> OnlineUsersAsync(string host, CancellationToken ct) =>
        (await SessionsAsync(ct).ConfigureAwait(false)).Where(j => j.Domain == host).Select(j => j.Bare.ToString()).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();

    /// <summary>The bound sessions: this server's, or in cluster mode every node's.</summary>
    private async ValueTask<IReadOnlyList<Jid>> SessionsAsync(CancellationToken ct) =>
        _context.Server.Cluster is { } cluster ? [.. (await cluster.SessionsAsync(ct).ConfigureAwait(false)).Select(s => s.Session)] : [.. _context.Sessions.All.Select(s => s.Jid)];

    private async ValueTask<AdHocResult> AnnounceAsync(AdHocRequest request, CancellationToken ct)
    {
        if (request.Values is null)
        {
            var form = Form("Making an Announcement", "Fill out this form to make an announcement to all active users of this service.");
            Field(form, "subject", "text-single", "Subject");
            Field(form, "announcement", "text-multi", "Announcement", required: true);
            return AdHocResult.Ask(form);
        }

        var text = string.Join("\n", request.Values.TryGetValue("announcement", out var lines) ? lines : []).Trim();
        if (text.Length == 0)
        {
            return AdHocResult.Failed("The announcement is empty.");
        }

        var subject = request.Value("subject");
        var sent = 0;
        // Available sessions; in cluster mode, those of other nodes too (their availability is not known here: each gets it).
        var targets = _context.Sessions.All.Where(s => s.Jid.Domain == request.Host && s.IsAvailable).Select(s => s.Jid).ToHashSet();
        if (_context.Server.Cluster is not null)
        {
            var local = _context.Sessions.All.Select(s => s.Jid).ToHashSet();
            targets.UnionWith((await SessionsAsync(ct).ConfigureAwait(false)).Where(j => j.Domain == request.Host && !local.Contains(j)));
        }

        foreach (var jid in targets.OrderBy(j => j.ToString(), StringComparer.Ordinal))
        {
            // Prosody and ejabberd send announcements as headlines: shown, but neither stored offline nor archived.
            var message = new Element("message", Xmpp.Core.Ns.Client)
                .SetAttribute("type", "headline").SetAttribute("from", request.Host).SetAttribute("to", jid.ToString());
            if (subject is not null)
            {
                message.AddChild("subject").AddText(subject);
            }

            message.AddChild("body").AddText(text);
            await _context.Router.RouteAsync(message, null, ct).ConfigureAwait(false);
            sent++;
        }

        _context.Log.Info("{Admin} sent an announcement to {Count} sessions of {Host}", request.Requester, sent, request.Host);
        return AdHocResult.Done(sent == 1 ? "Announcement sent to 1 session." : $"Announcement sent to {sent} sessions.");
    }

    private async ValueTask<AdHocResult> SetMotdAsync(AdHocRequest request, CancellationToken ct)
    {
        if (request.Values is null)
        {
            var current = await MotdAsync(request.Host, ct).ConfigureAwait(false);
            var form = Form("Setting the Message of the Day", "Fill out this form to set the message of the day, sent to each user once at their next login.");
            Field(form, "motd", "text-multi", "Message of the Day", required: true, values: current is null ? [] : current.Text.Split('\n'));
            return AdHocResult.Ask(form);
        }

        var text = string.Join("\n", request.Values.TryGetValue("motd", out var lines) ? lines : []).Trim();
        if (text.Length == 0)
        {
            return AdHocResult.Failed("The message of the day is empty (use Delete Message of the Day to remove it).");
        }

        var motd = new Motd(text, DateTime.UtcNow.Ticks.ToString(CultureInfo.InvariantCulture));
        var doc = new Element("motd", MotdNs).SetAttribute("stamp", motd.Stamp).AddText(text);
        await _context.Storage.Documents.SetHostAsync(request.Host, MotdKind, string.Empty, doc.ToString(), ct).ConfigureAwait(false);
        _motd[request.Host] = motd;

        // Those online get it now (once per account, like everyone else).
        foreach (var account in _context.Sessions.All.Where(s => s.Jid.Domain == request.Host && s.IsAvailable).GroupBy(s => s.Jid.Bare).ToList())
        {
            await SendMotdAsync(account.First(), motd, ct).ConfigureAwait(false);
        }

        _context.Log.Info("{Admin} set the message of the day of {Host}", request.Requester, request.Host);
        return AdHocResult.Done("Message of the day set.");
    }

    private async ValueTask<AdHocResult> DeleteMotdAsync(AdHocRequest request, CancellationToken ct)
    {
        await _context.Storage.Documents.SetHostAsync(request.Host, MotdKind, string.Empty, null, ct).ConfigureAwait(false);
        _motd[request.Host] = null;
        _context.Log.Info("{Admin} deleted the message of the day of {Host}", request.Requester, request.Host);
        return AdHocResult.Done("Message of the day deleted.");
    }

    private async ValueTask<bool> SendMotdAtLoginAsync(StanzaContext ctx, CancellationToken ct)
    {
        if (ctx.Origin is { } session && await MotdAsync(session.Jid.Domain, ct).ConfigureAwait(false) is { } motd)
        {
            await SendMotdAsync(session, motd, ct).ConfigureAwait(false);
        }

        return false;
    }

    /// <summary>Sends the message of the day to this session unless its account has seen this one already.</summary>
    private async Task SendMotdAsync(Sessions.IClientSession session, Motd motd, CancellationToken ct)
    {
        var bare = session.Jid.Bare;
        var docs = _context.Storage.Documents;
        if (await docs.GetAsync(bare.Domain, bare.Local!, MotdSeenKind, string.Empty, ct).ConfigureAwait(false) is { } seen
            && ElementParser.Parse(seen).GetAttribute("stamp") == motd.Stamp)
        {
            return;
        }

        await docs.SetAsync(bare.Domain, bare.Local!, MotdSeenKind, string.Empty, new Element("seen", MotdNs).SetAttribute("stamp", motd.Stamp).ToString(), ct).ConfigureAwait(false);
        var message = new Element("message", Xmpp.Core.Ns.Client).SetAttribute("from", bare.Domain).SetAttribute("to", session.Jid.ToString());
        message.AddChild("subject").AddText("Message of the day");
        message.AddChild("body").AddText(motd.Text);
        session.TrySend(message);
    }

    private async ValueTask<Motd?> MotdAsync(string host, CancellationToken ct)
    {
        if (_motd.TryGetValue(host, out var cached))
        {
            return cached;
        }

        Motd? motd = null;
        if (await _context.Storage.Documents.GetHostAsync(host, MotdKind, string.Empty, ct).ConfigureAwait(false) is { } xml)
        {
            var doc = ElementParser.Parse(xml);
            motd = new Motd(doc.Text, doc.GetAttribute("stamp") ?? string.Empty);
        }

        _motd.TryAdd(host, motd);
        return motd;
    }

    private static Element MaxItemsForm(string title)
    {
        var form = Form(title, "How many users to list at most.");
        var field = Field(form, "max_items", "list-single", "Maximum number of items to show", values: ["100"]);
        foreach (var n in new[] { "25", "50", "75", "100", "150", "200", "none" })
        {
            field.AddChild("option", DataForm.Namespace).SetAttribute("label", n).AddChild("value", DataForm.Namespace).AddText(n);
        }

        return form;
    }

    private static int MaxItems(AdHocRequest request) =>
        int.TryParse(request.Value("max_items"), NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0 ? n : int.MaxValue;

    private static Element Form(string title, string instructions)
    {
        var form = DataForm.Create("form", Namespace);
        form.AddChild("title", DataForm.Namespace).AddText(title);
        form.AddChild("instructions", DataForm.Namespace).AddText(instructions);
        return form;
    }

    private static Element Result() => DataForm.Create("result", Namespace);

    private static Element Field(Element form, string var, string? type, string label, bool required = false, params string[] values)
    {
        var field = DataForm.AddField(form, var, type, values).SetAttribute("label", label);
        if (required)
        {
            field.AddChild("required", DataForm.Namespace);
        }

        return field;
    }

    private static AdHocResult Summary(string verb, List<string> done, List<string> problems)
    {
        var note = done.Count == 0 ? string.Empty : $"{verb}: {string.Join(", ", done)}.";
        if (problems.Count == 0)
        {
            return AdHocResult.Done(note);
        }

        return new AdHocResult(true, null, (note + " " + string.Join(" ", problems)).Trim(), done.Count == 0 ? AdHocNoteType.Error : AdHocNoteType.Warn);
    }

    private static string Explain(string jid, AccountResult result) => result switch
    {
        AccountResult.InvalidJid => $"'{jid}' is not an account's address (user@host).",
        AccountResult.UnknownHost => $"{jid}: this server does not serve that host.",
        AccountResult.InvalidPassword => "The password is not valid (RFC 8265 OpaqueString).",
        AccountResult.Exists => $"{jid} already exists.",
        AccountResult.NotFound => $"{jid} does not exist.",
        _ => $"{jid}: {result}",
    };

    private sealed record Motd(string Text, string Stamp);
}
