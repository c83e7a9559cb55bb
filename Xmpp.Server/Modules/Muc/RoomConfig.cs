using System.Globalization;
using Xmpp.Core.Addressing;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;

namespace Xmpp.Server.Modules.Muc;

/// <summary>Who may send private messages in a room (muc#roomconfig_allowpm).</summary>
public enum PrivateMessages
{
    Anyone,
    Participants,
    Moderators,
    None,
}

/// <summary>
/// A room's configuration (XEP-0045 §10.2, the muc#roomconfig form). Immutable: a submitted form
/// produces a new one, so a half-applied submission is never seen.
/// </summary>
public sealed record RoomConfig
{
    public const string FormType = "http://jabber.org/protocol/muc#roomconfig";

    public string Name { get; init; } = string.Empty;

    public string Description { get; init; } = string.Empty;

    public string Language { get; init; } = string.Empty;

    public bool Persistent { get; init; }

    public bool Public { get; init; } = true;

    public bool MembersOnly { get; init; }

    public bool Moderated { get; init; }

    /// <summary>Null: no password.</summary>
    public string? Password { get; init; }

    /// <summary>Real JIDs visible to every occupant (non-anonymous) rather than to moderators only (semi-anonymous).</summary>
    public bool NonAnonymous { get; init; }

    /// <summary>0: no limit.</summary>
    public int MaxUsers { get; init; }

    public bool OccupantsChangeSubject { get; init; }

    public bool MembersInvite { get; init; }

    public PrivateMessages AllowPrivateMessages { get; init; } = PrivateMessages.Anyone;

    /// <summary>Messages are archived (XEP-0313 on the room JID) and history survives a restart.</summary>
    public bool Archived { get; init; } = true;

    /// <summary>How many messages a joining occupant gets at most.</summary>
    public int HistoryLength { get; init; } = 20;

    /// <summary>The configuration form with the current values (§10.2).</summary>
    public Element ToForm(IEnumerable<string> owners, IEnumerable<string> admins, int maxHistory)
    {
        var form = DataForm.Create("form", FormType);
        form.AddChild("title").AddText("Room configuration");
        Field(form, "muc#roomconfig_roomname", "text-single", "Title", Name);
        Field(form, "muc#roomconfig_roomdesc", "text-single", "Description", Description);
        Field(form, "muc#roomconfig_lang", "text-single", "Language of discussion", Language);
        Field(form, "muc#roomconfig_persistentroom", "boolean", "Keep the room when the last occupant leaves", Bool(Persistent));
        Field(form, "muc#roomconfig_publicroom", "boolean", "List the room in the directory", Bool(Public));
        Field(form, "muc#roomconfig_membersonly", "boolean", "Only members may enter", Bool(MembersOnly));
        Field(form, "muc#roomconfig_moderatedroom", "boolean", "Only occupants with voice may speak", Bool(Moderated));
        Field(form, "muc#roomconfig_passwordprotectedroom", "boolean", "A password is needed to enter", Bool(Password is not null));
        Field(form, "muc#roomconfig_roomsecret", "text-private", "Password", Password ?? string.Empty);
        Options(Field(form, "muc#roomconfig_whois", "list-single", "Who may see occupants' real addresses", NonAnonymous ? "anyone" : "moderators"), ("moderators", "Moderators only"), ("anyone", "Anyone"));
        Options(Field(form, "muc#roomconfig_maxusers", "list-single", "Maximum number of occupants", MaxUsers == 0 ? "none" : MaxUsers.ToString(CultureInfo.InvariantCulture)),
            ("10", "10"), ("20", "20"), ("30", "30"), ("50", "50"), ("100", "100"), ("500", "500"), ("none", "No limit"));
        Field(form, "muc#roomconfig_changesubject", "boolean", "Occupants may change the subject", Bool(OccupantsChangeSubject));
        Field(form, "muc#roomconfig_allowinvites", "boolean", "Occupants may invite others (and members-only rooms make them members)", Bool(MembersInvite));
        Options(Field(form, "muc#roomconfig_allowpm", "list-single", "Who may send private messages", AllowPrivateMessages.ToString().ToLowerInvariant()),
            ("anyone", "Anyone"), ("participants", "Participants and moderators"), ("moderators", "Moderators only"), ("none", "Nobody"));
        Field(form, "muc#roomconfig_enablelogging", "boolean", "Archive messages (history and XEP-0313)", Bool(Archived));
        Field(form, "muc#roomconfig_historylength", "text-single", $"Messages of history sent on entry (at most {maxHistory})", HistoryLength.ToString(CultureInfo.InvariantCulture));
        Field(form, "muc#roomconfig_roomowners", "jid-multi", "Owners", [.. owners]);
        Field(form, "muc#roomconfig_roomadmins", "jid-multi", "Administrators", [.. admins]);
        return form;
    }

    /// <summary>
    /// Applies a submitted form (fields it leaves out keep their value, §10.2: an empty submission is the
    /// instant room). Returns the new configuration and the owner and admin lists when the form names them.
    /// </summary>
    public (RoomConfig Config, List<Jid>? Owners, List<Jid>? Admins) Apply(Dictionary<string, List<string>> values, int maxHistory)
    {
        var c = this;
        List<Jid>? owners = null, admins = null;
        var passwordProtected = Password is not null;
        string? secret = Password;
        foreach (var (var, list) in values)
        {
            var value = list.Count > 0 ? list[0] : string.Empty;
            switch (var)
            {
                case "FORM_TYPE":
                    if (value != FormType)
                    {
                        throw new StanzaErrorException(StanzaErrorCondition.BadRequest, $"FORM_TYPE must be {FormType}");
                    }

                    break;
                case "muc#roomconfig_roomname":
                    c = c with { Name = Limit(value, 200) };
                    break;
                case "muc#roomconfig_roomdesc":
                    c = c with { Description = Limit(value, 2000) };
                    break;
                case "muc#roomconfig_lang":
                    c = c with { Language = Limit(value, 40) };
                    break;
                case "muc#roomconfig_persistentroom":
                    c = c with { Persistent = Boolean(var, value) };
                    break;
                case "muc#roomconfig_publicroom":
                    c = c with { Public = Boolean(var, value) };
                    break;
                case "muc#roomconfig_membersonly":
                    c = c with { MembersOnly = Boolean(var, value) };
                    break;
                case "muc#roomconfig_moderatedroom":
                    c = c with { Moderated = Boolean(var, value) };
                    break;
                case "muc#roomconfig_passwordprotectedroom":
                    passwordProtected = Boolean(var, value);
                    break;
                case "muc#roomconfig_roomsecret":
                    secret = value.Length == 0 ? null : Limit(value, 200);
                    break;
                case "muc#roomconfig_whois":
                    c = c with { NonAnonymous = Whois(value) };
                    break;
                case "muc#roomconfig_maxusers":
                    c = c with { MaxUsers = MaxUsersValue(value) };
                    break;
                case "muc#roomconfig_changesubject":
                    c = c with { OccupantsChangeSubject = Boolean(var, value) };
                    break;
                case "muc#roomconfig_allowinvites":
                    c = c with { MembersInvite = Boolean(var, value) };
                    break;
                case "muc#roomconfig_allowpm":
                    c = c with { AllowPrivateMessages = AllowPm(value) };
                    break;
                case "muc#roomconfig_enablelogging":
                    c = c with { Archived = Boolean(var, value) };
                    break;
                case "muc#roomconfig_historylength":
                    c = c with { HistoryLength = HistoryLengthValue(value, maxHistory) };
                    break;
                case "muc#roomconfig_roomowners":
                    owners = Jids(var, list);
                    break;
                case "muc#roomconfig_roomadmins":
                    admins = Jids(var, list);
                    break;
                default:
                    // Fields of other servers' forms (Prosody's, ejabberd's) that clients echo back: ignored.
                    break;
            }
        }

        if (passwordProtected && secret is null)
        {
            throw new StanzaErrorException(StanzaErrorCondition.NotAcceptable, "a password-protected room needs a password");
        }

        return (c with { Password = passwordProtected ? secret : null }, owners, admins);
    }

    /// <summary>muc#roomconfig_whois: who may discover occupants' real JIDs (anyone: a non-anonymous room).</summary>
    private static bool Whois(string value) => value switch
    {
        "anyone" => true,
        "moderators" => false,
        _ => throw new StanzaErrorException(StanzaErrorCondition.NotAcceptable, "whois must be moderators or anyone"),
    };

    /// <summary>muc#roomconfig_maxusers: a number, or none (0) for no limit.</summary>
    private static int MaxUsersValue(string value) =>
        value is "none" or "" or "0" ? 0
            : int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n
            : throw new StanzaErrorException(StanzaErrorCondition.NotAcceptable, "maxusers must be a number or none");

    /// <summary>muc#roomconfig_allowpm: who may send private messages.</summary>
    private static PrivateMessages AllowPm(string value) => value switch
    {
        "anyone" => PrivateMessages.Anyone,
        "participants" => PrivateMessages.Participants,
        "moderators" => PrivateMessages.Moderators,
        "none" => PrivateMessages.None,
        _ => throw new StanzaErrorException(StanzaErrorCondition.NotAcceptable, "allowpm must be anyone, participants, moderators or none"),
    };

    /// <summary>muc#roomconfig_historylength: how many messages of history, at most the service's limit.</summary>
    private static int HistoryLengthValue(string value, int maxHistory) =>
        int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var h)
            ? Math.Min(h, maxHistory)
            : throw new StanzaErrorException(StanzaErrorCondition.NotAcceptable, "historylength must be a number");

    /// <summary>The stored form of the configuration (attributes of the room document's &lt;config/&gt;).</summary>
    public Element ToElement(string ns)
    {
        var e = new Element("config", ns)
            .SetAttribute("name", Name)
            .SetAttribute("description", Description)
            .SetAttribute("lang", Language)
            .SetAttribute("persistent", Bool(Persistent))
            .SetAttribute("public", Bool(Public))
            .SetAttribute("members-only", Bool(MembersOnly))
            .SetAttribute("moderated", Bool(Moderated))
            .SetAttribute("password", Password)
            .SetAttribute("non-anonymous", Bool(NonAnonymous))
            .SetAttribute("max-users", MaxUsers.ToString(CultureInfo.InvariantCulture))
            .SetAttribute("change-subject", Bool(OccupantsChangeSubject))
            .SetAttribute("invites", Bool(MembersInvite))
            .SetAttribute("pm", AllowPrivateMessages.ToString().ToLowerInvariant())
            .SetAttribute("archived", Bool(Archived))
            .SetAttribute("history", HistoryLength.ToString(CultureInfo.InvariantCulture));
        return e;
    }

    public static RoomConfig FromElement(Element e)
    {
        bool B(string name, bool fallback) => e.GetAttribute(name) is { } v ? v == "true" : fallback;
        int I(string name, int fallback) => int.TryParse(e.GetAttribute(name), NumberStyles.None, CultureInfo.InvariantCulture, out var v) ? v : fallback;
        var defaults = new RoomConfig();
        return new RoomConfig
        {
            Name = e.GetAttribute("name") ?? string.Empty,
            Description = e.GetAttribute("description") ?? string.Empty,
            Language = e.GetAttribute("lang") ?? string.Empty,
            Persistent = B("persistent", defaults.Persistent),
            Public = B("public", defaults.Public),
            MembersOnly = B("members-only", defaults.MembersOnly),
            Moderated = B("moderated", defaults.Moderated),
            Password = e.GetAttribute("password"),
            NonAnonymous = B("non-anonymous", defaults.NonAnonymous),
            MaxUsers = I("max-users", defaults.MaxUsers),
            OccupantsChangeSubject = B("change-subject", defaults.OccupantsChangeSubject),
            MembersInvite = B("invites", defaults.MembersInvite),
            AllowPrivateMessages = Enum.TryParse<PrivateMessages>(e.GetAttribute("pm"), ignoreCase: true, out var pm) ? pm : defaults.AllowPrivateMessages,
            Archived = B("archived", defaults.Archived),
            HistoryLength = I("history", defaults.HistoryLength),
        };
    }

    private static string Bool(bool b) => b ? "true" : "false";

    private static string Limit(string value, int max) =>
        value.Length <= max ? value : throw new StanzaErrorException(StanzaErrorCondition.NotAcceptable, $"at most {max} characters");

    private static bool Boolean(string var, string value) =>
        DataForm.ParseBoolean(value) ?? throw new StanzaErrorException(StanzaErrorCondition.NotAcceptable, $"{var} must be a boolean");

    private static List<Jid> Jids(string var, List<string> values)
    {
        var jids = new List<Jid>();
        foreach (var v in values.Where(v => v.Length > 0))
        {
            jids.Add(Jid.TryParse(v, out var j) ? j.Bare : throw new StanzaErrorException(StanzaErrorCondition.JidMalformed, $"{var}: '{v}' is not a JID"));
        }

        return jids;
    }

    private static Element Field(Element form, string var, string type, string label, params string[] values) =>
        DataForm.AddField(form, var, type, values).SetAttribute("label", label);

    private static void Options(Element field, params (string Value, string Label)[] options)
    {
        foreach (var (value, label) in options)
        {
            field.AddChild("option").SetAttribute("label", label).AddChild("value").AddText(value);
        }
    }
}
