using System.Globalization;
using System.Text;
using Xmpp.Core.Addressing;
using Xmpp.Server.Hosting;
using Xmpp.Server.Modules.Muc;
using static Xmpp.Server.Modules.Console.ConsoleHtml;

namespace Xmpp.Server.Modules.Console;

/// <summary>
/// The console's room pages: the rooms of each multi-user chat service, one room's configuration, occupants and
/// affiliations, and destroying it through <see cref="MucService.DestroyAsync"/>, the code of the administrators'
/// destroy command and of an owner's destroy (XEP-0045 §10.9).
/// </summary>
public sealed partial class ConsoleModule
{
    /// <summary>The muc module's services (empty when it is not loaded), taken at registration.</summary>
    private MucDirectory _muc = new();

    /// <summary>A service's rooms: a prefix search and keyset pages of <see cref="PageSize"/>, as the user list.</summary>
    private async Task RoomsAsync(IHttpExchange http, ConsoleSession session)
    {
        var services = _muc.Services;
        if (services.Count == 0)
        {
            await ConsoleHtml.PageAsync(http, 200, "Rooms", "<p class=\"muted\">The multi-user chat module (<code>&lt;muc/&gt;</code>) is not loaded: there are no rooms.</p>", session, "rooms").ConfigureAwait(false);
            return;
        }

        var service = services.FirstOrDefault(s => s.Domain == http.Query("service")) ?? services[0];
        var q = (http.Query("q") ?? string.Empty).Trim();
        var prefix = q.Length == 0 ? string.Empty : Precis.TryPrepareUsernameCaseMapped(q, out var prepared) ? prepared : q;
        var after = http.Query("after") is { Length: > 0 } a ? a : null;
        var loaded = service.IsLoaded;
        var (page, matching) = await service.RoomPageAsync(prefix, after, PageSize, http.Aborted).ConfigureAwait(false);

        var sb = new StringBuilder();
        sb.Append(Note(http));
        sb.Append(CultureInfo.InvariantCulture, $"<form class=\"search\" method=\"get\" action=\"{Prefix}rooms\">");
        if (services.Count == 1)
        {
            sb.Append(CultureInfo.InvariantCulture, $"<input type=\"hidden\" name=\"service\" value=\"{H(service.Domain)}\">");
        }
        else
        {
            sb.Append("<label>Service<select name=\"service\">");
            foreach (var s in services)
            {
                sb.Append(CultureInfo.InvariantCulture, $"<option{(s == service ? " selected" : string.Empty)}>{H(s.Domain)}</option>");
            }

            sb.Append("</select></label>");
        }

        sb.Append(CultureInfo.InvariantCulture, $"<label>Room name starts with<input name=\"q\" value=\"{H(q)}\" autocapitalize=\"none\" spellcheck=\"false\"></label><button type=\"submit\">Search</button></form>");
        sb.Append(CultureInfo.InvariantCulture, $"<p>{H(service.Domain)}: {N(matching)} {(matching == 1 ? "room" : "rooms")}{(q.Length > 0 ? " whose name starts with “" + H(q) + "”" : string.Empty)}.</p>");
        if (!loaded)
        {
            sb.Append("<p class=\"muted\">Nothing has used the service since the server started, so it has not loaded its rooms: these are the persistent rooms in storage, none with occupants.</p>");
        }

        sb.Append("<table><thead><tr><th>room</th><th>name</th><th>subject</th><th class=\"num\">occupants</th><th>kept</th><th>listed</th><th>entry</th><th>moderated</th><th>real addresses</th></tr></thead><tbody>");
        foreach (var room in page)
        {
            var c = room.Config;
            var locked = room.Locked ? " <span class=\"muted\">(locked: not configured yet)</span>" : string.Empty;
            sb.Append(CultureInfo.InvariantCulture, $"<tr><td><a href=\"{Prefix}room?jid={U(room.Jid.ToString())}\">{H(room.Jid.ToString())}</a>{locked}</td><td>{H(c.Name)}</td><td>{H(room.Subject)}</td><td class=\"num\">{N(room.Occupants)}</td>");
            sb.Append(CultureInfo.InvariantCulture, $"<td>{(c.Persistent ? "persistent" : "temporary")}</td><td>{(c.Public ? "public" : "hidden")}</td><td>{H(Entry(c))}</td><td>{(c.Moderated ? "yes" : "no")}</td><td>{H(Anonymity(c))}</td></tr>");
        }

        if (page.Count == 0)
        {
            sb.Append("<tr><td colspan=\"9\" class=\"muted\">No room.</td></tr>");
        }

        sb.Append("</tbody></table>");
        Pager(sb, $"{Prefix}rooms?service={U(service.Domain)}&amp;q={U(q)}", after is not null, page.Count == PageSize ? page[^1].Jid.Local! : null);
        await ConsoleHtml.PageAsync(http, 200, "Rooms", sb.ToString(), session, "rooms").ConfigureAwait(false);
    }

    /// <summary>Who may enter: muc#roomconfig_membersonly and _passwordprotectedroom.</summary>
    private static string Entry(RoomConfig c) => (c.MembersOnly, c.Password is not null) switch
    {
        (true, true) => "members only, password",
        (true, false) => "members only",
        (false, true) => "password",
        _ => "open",
    };

    /// <summary>muc#roomconfig_whois: who sees the occupants' real addresses (XEP-0045 §4.1).</summary>
    private static string Anonymity(RoomConfig c) => c.NonAnonymous ? "anyone (non-anonymous)" : "moderators (semi-anonymous)";

    private static string YesNo(bool b) => b ? "yes" : "no";

    /// <summary>The room a query or form names, with its service; null when it is not an address of a room service here.</summary>
    private (MucService Service, Jid Room)? RoomOf(string? text) =>
        Jid.TryParse(text ?? string.Empty, out var jid) && jid.Local is not null && jid.Resource is null && _muc.Find(jid.Domain) is { } service
            ? (service, jid)
            : null;

    /// <summary>One room: its configuration, occupants and affiliations, and the form that destroys it.</summary>
    private async Task RoomAsync(IHttpExchange http, ConsoleSession session)
    {
        if (RoomOf(http.Query("jid")) is not { } found)
        {
            await ConsoleHtml.PageAsync(http, 404, "Not found", "<p>That is not a room of this server.</p>", session, "rooms").ConfigureAwait(false);
            return;
        }

        var (service, jid) = found;

        if (await service.RoomDetailsAsync(jid.Local!, http.Aborted).ConfigureAwait(false) is not { } room)
        {
            await ConsoleHtml.PageAsync(http, 404, "Not found", $"<p>There is no room {H(jid.ToString())}.</p>", session, "rooms").ConfigureAwait(false);
            return;
        }

        var c = room.Summary.Config;
        var sb = new StringBuilder();
        sb.Append(Note(http));
        sb.Append("<h2>Configuration</h2><table><tbody>");
        void Row(string label, string value) => sb.Append(CultureInfo.InvariantCulture, $"<tr><th>{H(label)}</th><td>{H(value)}</td></tr>");
        Row("State", room.Summary.Locked ? "locked: its owner has not configured it yet (XEP-0045 §10.1.1)"
            : room.Summary.InMemory ? "in memory" : "in storage (the service has not loaded its rooms)");
        Row("Name", c.Name);
        Row("Description", c.Description);
        Row("Language", c.Language);
        Row("Subject", room.Summary.Subject is null ? string.Empty : room.SubjectBy is { Length: > 0 } by ? $"{room.Summary.Subject} (set by {by})" : room.Summary.Subject);
        Row("Kept", c.Persistent ? "persistent: kept when empty, stored" : "temporary: ends with its last occupant");
        Row("Listed", c.Public ? "public: in the service's directory" : "hidden");
        Row("Members only", YesNo(c.MembersOnly));
        Row("Password", c.Password is null ? "none" : "required (not shown)");
        Row("Moderated", c.Moderated ? "yes: only occupants with voice may speak" : "no");
        Row("Real addresses seen by", Anonymity(c));
        Row("Maximum occupants", c.MaxUsers == 0 ? "no limit" : c.MaxUsers.ToString(CultureInfo.InvariantCulture));
        Row("Occupants may change the subject", YesNo(c.OccupantsChangeSubject));
        Row("Occupants may invite", YesNo(c.MembersInvite));
        Row("Private messages from", c.AllowPrivateMessages.ToString().ToLowerInvariant());
        Row("Archive (XEP-0313)", c.Archived ? "on" : "off");
        Row("History sent on entry", string.Create(CultureInfo.InvariantCulture, $"{c.HistoryLength} messages"));
        sb.Append("</tbody></table>");

        sb.Append(CultureInfo.InvariantCulture, $"<h2>Occupants ({N(room.Occupants.Count)})</h2>");
        if (room.Occupants.Count == 0)
        {
            sb.Append("<p class=\"muted\">None.</p>");
        }
        else
        {
            sb.Append("<table><thead><tr><th>nick</th><th>real address</th><th>role</th><th>affiliation</th></tr></thead><tbody>");
            foreach (var o in room.Occupants)
            {
                var real = string.Join("<br>", o.RealJids.Select(j => H(j.ToString())));
                sb.Append(CultureInfo.InvariantCulture, $"<tr><td>{H(o.Nick)}</td><td>{real}</td><td>{H(MucRoom.Name(o.Role))}</td><td>{H(MucRoom.Name(o.Affiliation))}</td></tr>");
            }

            sb.Append("</tbody></table>");
        }

        sb.Append("<h2>Affiliations</h2>");
        if (room.Affiliations.Count == 0)
        {
            sb.Append("<p class=\"muted\">None.</p>");
        }
        else
        {
            sb.Append("<table><thead><tr><th>list</th><th>address</th><th>reserved nick</th><th>reason</th></tr></thead><tbody>");
            foreach (var a in room.Affiliations)
            {
                sb.Append(CultureInfo.InvariantCulture, $"<tr><td>{H(MucRoom.Name(a.Affiliation))}</td><td>{H(a.Jid.ToString())}</td><td>{H(a.Nick)}</td><td>{H(a.Reason)}</td></tr>");
            }

            sb.Append("</tbody></table>");
        }

        sb.Append("<h2>Destroy the room</h2>");
        sb.Append(CultureInfo.InvariantCulture, $"<form class=\"box\" method=\"post\" action=\"{Prefix}rooms/destroy\">{Csrf(session)}<input type=\"hidden\" name=\"jid\" value=\"{H(jid.ToString())}\">");
        sb.Append("<p>Every occupant leaves and is told the reason and the alternate room (XEP-0045 §10.9); a persistent room is deleted from storage with its archive. This cannot be undone.</p>");
        sb.Append("<label>Reason<input name=\"reason\" maxlength=\"1000\"></label>");
        sb.Append("<label>Alternate room (optional)<input name=\"alternate\" autocapitalize=\"none\" spellcheck=\"false\" placeholder=\"room@conference.example.org\"></label>");
        sb.Append("<label class=\"check\"><input type=\"checkbox\" name=\"confirm\" value=\"yes\" required> I am sure</label>");
        sb.Append("<button type=\"submit\" class=\"danger\">Destroy room</button></form>");
        await ConsoleHtml.PageAsync(http, 200, jid.ToString(), sb.ToString(), session, "rooms").ConfigureAwait(false);
    }

    /// <summary>Destroys a room through the code of the administrators' destroy command (an owner's §10.9 destroy).</summary>
    private async Task DestroyRoomAsync(IHttpExchange http, ConsoleSession session, Dictionary<string, string> form)
    {
        var text = form.GetValueOrDefault("jid") ?? string.Empty;
        if (form.GetValueOrDefault("confirm") != "yes")
        {
            await ProblemAsync(http, session, 400, "Tick “I am sure” to destroy the room.", "rooms").ConfigureAwait(false);
            return;
        }

        if (RoomOf(text) is not { } found)
        {
            await ProblemAsync(http, session, 400, $"'{text}' is not a room of this server.", "rooms").ConfigureAwait(false);
            return;
        }

        var (service, jid) = found;

        Jid? venue = null;
        if (form.GetValueOrDefault("alternate")?.Trim() is { Length: > 0 } alternate && !Jid.TryParse(alternate, out venue))
        {
            await ProblemAsync(http, session, 400, $"The alternate room '{alternate}' is not an address.", "rooms").ConfigureAwait(false);
            return;
        }

        var reason = form.GetValueOrDefault("reason")?.Trim() is { Length: > 0 } r ? r : null;
        if (!await service.DestroyAsync(jid.Local!, reason, venue, http.Aborted).ConfigureAwait(false))
        {
            await ProblemAsync(http, session, 404, $"There is no room {jid} (it may have been destroyed already).", "rooms").ConfigureAwait(false);
            return;
        }

        _context.Log.Info("Console: {Admin} destroyed the room {Room} from {Remote}", session.Admin, jid, http.RemoteAddress);
        await RedirectAsync(http, $"{Prefix}rooms?service={U(service.Domain)}&done=room-destroyed").ConfigureAwait(false);
    }
}
