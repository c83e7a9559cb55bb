using System.Globalization;
using Xmpp.Core.Addressing;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;
using Xmpp.Server.Modules.AdHoc;

namespace Xmpp.Server.Modules.Muc;

/// <summary>
/// The server administrators' commands (XEP-0050) on each multi-user chat service's JID, as Prosody offers
/// "Destroy Rooms" on its MUC component and ejabberd lists and destroys rooms through mod_muc_admin: list
/// every room (hidden ones too) and destroy rooms, which XEP-0045 §10.9 leaves to owners. XEP-0133 defines
/// no room commands, so the nodes are this server's. Administrators do not otherwise become owners of every
/// room: their affiliation would show in presence and count in the rooms' owner rules.
/// </summary>
internal static class MucAdminCommands
{
    public const string ListNode = "urn:xmppserver:muc#list-rooms";
    public const string DestroyNode = "urn:xmppserver:muc#destroy-rooms";
    private const string FormType = "urn:xmppserver:muc#admin";

    /// <summary>Rooms listed in one answer at most.</summary>
    private const int MaxListed = 1000;

    public static void Register(IModuleContext context, AdHocCommands commands, Func<string, MucService?> service)
    {
        bool At(string domain) => service(domain) is not null;
        commands.Add(new AdHocCommand(ListNode, "List Rooms", context.Options.IsAdmin, (request, ct) => ListAsync(service(request.Host)!, ct)) { Service = At });
        commands.Add(new AdHocCommand(DestroyNode, "Destroy Rooms", context.Options.IsAdmin, (request, ct) => DestroyAsync(service(request.Host)!, request, ct)) { Service = At });
    }

    /// <summary>Every room of the service, with its name, occupants and kind, in one result table (XEP-0004 §3.4).</summary>
    private static async ValueTask<AdHocResult> ListAsync(MucService service, CancellationToken ct)
    {
        var rooms = await service.RoomsAsync(ct).ConfigureAwait(false);
        var result = DataForm.Create("result", FormType);
        result.AddChild("title", DataForm.Namespace).AddText($"Rooms of {service.Domain}");
        var reported = result.AddChild("reported", DataForm.Namespace);
        foreach (var (var, label) in new[] { ("jid", "Room"), ("name", "Name"), ("occupants", "Occupants"), ("persistent", "Persistent"), ("public", "Public") })
        {
            reported.AddChild("field", DataForm.Namespace).SetAttribute("var", var).SetAttribute("label", label);
        }

        foreach (var room in rooms.OrderBy(r => r.Jid.Local, StringComparer.Ordinal).Take(MaxListed))
        {
            var item = result.AddChild("item", DataForm.Namespace);
            Value(item, "jid", room.Jid.ToString());
            Value(item, "name", room.Config.Name);
            Value(item, "occupants", room.OccupantCount.ToString(CultureInfo.InvariantCulture));
            Value(item, "persistent", room.Config.Persistent ? "1" : "0");
            Value(item, "public", room.Config.Public ? "1" : "0");
        }

        var note = rooms.Count > MaxListed ? $"{rooms.Count} rooms; the first {MaxListed} are listed." : $"{rooms.Count} rooms.";
        return AdHocResult.Done(note, result);
    }

    /// <summary>
    /// Destroys the chosen rooms as their owners could (§10.9): every occupant is told, with the reason and
    /// the alternate venue given, and persistent rooms leave storage.
    /// </summary>
    private static async ValueTask<AdHocResult> DestroyAsync(MucService service, AdHocRequest request, CancellationToken ct)
    {
        if (request.Values is null)
        {
            var form = DataForm.Create("form", FormType);
            form.AddChild("title", DataForm.Namespace).AddText("Destroy rooms");
            form.AddChild("instructions", DataForm.Namespace).AddText("Choose the rooms to destroy; their occupants are told the reason and where to go.");
            var list = DataForm.AddField(form, "rooms", "list-multi").SetAttribute("label", "Rooms to destroy");
            list.AddChild("required", DataForm.Namespace);
            foreach (var room in (await service.RoomsAsync(ct).ConfigureAwait(false)).OrderBy(r => r.Jid.Local, StringComparer.Ordinal).Take(MaxListed))
            {
                list.AddChild("option", DataForm.Namespace).SetAttribute("label", room.Config.Name.Length > 0 ? room.Config.Name : null)
                    .AddChild("value", DataForm.Namespace).AddText(room.Jid.ToString());
            }

            DataForm.AddField(form, "reason", "text-single").SetAttribute("label", "Reason");
            DataForm.AddField(form, "alternate", "jid-single").SetAttribute("label", "Alternate room");
            return AdHocResult.Ask(form);
        }

        var names = request.Multi("rooms");
        if (names.Count == 0)
        {
            return AdHocResult.Failed("No room given.");
        }

        Jid? venue = null;
        if (request.Value("alternate") is { } alternate && !Jid.TryParse(alternate, out venue))
        {
            return AdHocResult.Failed($"The alternate room '{alternate}' is not a JID.");
        }

        var destroyed = new List<string>();
        var missing = new List<string>();
        foreach (var name in names)
        {
            var ok = Jid.TryParse(name, out var jid) && jid.Domain == service.Domain && jid.Local is { } local &&
                await service.DestroyAsync(local, request.Value("reason"), venue, ct).ConfigureAwait(false);
            (ok ? destroyed : missing).Add(name);
        }

        service.Log.Info("{Admin} destroyed rooms {Rooms} of {Service}", request.Requester.Bare, destroyed, service.Domain);
        var note = destroyed.Count > 0 ? "Destroyed: " + string.Join(", ", destroyed) + "." : "No room was destroyed.";
        return missing.Count == 0 ? AdHocResult.Done(note) : AdHocResult.Failed(note + " No such room: " + string.Join(", ", missing) + ".");
    }

    private static void Value(Element item, string var, string value) =>
        item.AddChild("field", DataForm.Namespace).SetAttribute("var", var).AddChild("value", DataForm.Namespace).AddText(value);
}
