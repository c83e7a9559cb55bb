using Xmpp.Core;
using Xmpp.Core.Addressing;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;
using Xmpp.Server.Routing;

namespace Xmpp.Server.Modules.AdHoc;

/// <summary>
/// The server's XEP-0050 commands, shared between the module that speaks the protocol (adhoc) and the
/// modules that offer commands (admin, ...): <c>context.Shared&lt;AdHocCommands&gt;()</c>.
/// </summary>
public sealed class AdHocCommands
{
    private readonly List<AdHocCommand> _commands = [];

    /// <summary>Whether a loaded module answers the protocol (without it, commands would be offered to nobody).</summary>
    public bool Served { get; set; }

    public IReadOnlyList<AdHocCommand> All => _commands;

    public void Add(AdHocCommand command)
    {
        if (Find(command.Node) is not null)
        {
            throw new InvalidOperationException($"ad-hoc command node '{command.Node}' is registered twice");
        }

        _commands.Add(command);
    }

    public AdHocCommand? Find(string node) => _commands.Find(c => c.Node == node);

    /// <summary>The command of a node as the address it was sent to offers it (a host, or a service such as conference.HOST).</summary>
    public AdHocCommand? Find(string node, string domain, bool host) => _commands.Find(c => c.Node == node && c.OfferedAt(domain, host));

    /// <summary>
    /// Runs a command sent to a service domain that answers its own stanzas (multi-user chat): the adhoc
    /// module's execution, with its sessions. Null while no module speaks the protocol.
    /// </summary>
    public Func<StanzaContext, Element, CancellationToken, ValueTask<Element?>>? ExecuteAtService { get; set; }

    /// <summary>XEP-0050 §2.2: the commands an address offers to a requester, as disco#items of the commands node.</summary>
    public List<Element> Items(Jid requester, string domain, bool host) =>
        _commands.Where(c => c.OfferedAt(domain, host) && c.MayExecute(requester))
            .Select(c => new Element("item", Ns.DiscoItems).SetAttribute("jid", domain).SetAttribute("node", c.Node).SetAttribute("name", c.Name))
            .ToList();

    /// <summary>XEP-0050 §2.3: disco#info of one command's node (forbidden to those who may not run it); null when the address has no such command.</summary>
    public List<Element>? NodeInfo(Jid requester, string domain, bool host, string node)
    {
        if (Find(node, domain, host) is not { } command)
        {
            return null;
        }

        if (!command.MayExecute(requester))
        {
            throw new StanzaErrorException(StanzaErrorCondition.Forbidden);
        }

        return
        [
            Identity("command-node", command.Name),
            new Element("feature", Ns.DiscoInfo).SetAttribute("var", Namespace),
            new Element("feature", Ns.DiscoInfo).SetAttribute("var", DataForm.Namespace),
        ];
    }

    public static Element Identity(string type, string name) =>
        new Element("identity", Ns.DiscoInfo).SetAttribute("category", "automation").SetAttribute("type", type).SetAttribute("name", name);

    public const string Namespace = "http://jabber.org/protocol/commands";
}

/// <summary>One command: its node, its human-readable name, who may run it and what it does.</summary>
public sealed record AdHocCommand(string Node, string Name, Func<Jid, bool> MayExecute, AdHocHandler Handler)
{
    /// <summary>
    /// The service domains that offer the command instead of the server's hosts (a multi-user chat service's
    /// commands on conference.HOST); null: the hosts.
    /// </summary>
    public Func<string, bool>? Service { get; init; }

    public bool OfferedAt(string domain, bool host) => Service is null ? host : !host && Service(domain);
}

/// <summary>Runs one stage of a command.</summary>
public delegate ValueTask<AdHocResult> AdHocHandler(AdHocRequest request, CancellationToken cancellationToken);

/// <param name="Requester">The full JID that asked.</param>
/// <param name="Host">The virtual host the command was sent to.</param>
/// <param name="Values">
/// The submitted form's values by field, or null on the first request (when the command shows its form,
/// or completes at once if it needs no input).
/// </param>
/// <param name="Context">The command's stanza; null when the administration console runs the command (the same handler, no stanza).</param>
public sealed record AdHocRequest(Jid Requester, string Host, IReadOnlyDictionary<string, List<string>>? Values, StanzaContext? Context)
{
    /// <summary>A single value of the submitted form, trimmed, or null when absent or empty.</summary>
    public string? Value(string field) =>
        Values is not null && Values.TryGetValue(field, out var v) && v.Count > 0 && v[0].Trim() is { Length: > 0 } t ? t : null;

    /// <summary>A single value exactly as submitted (a password: spaces count), or null when absent or empty.</summary>
    public string? Raw(string field) =>
        Values is not null && Values.TryGetValue(field, out var v) && v.Count > 0 && v[0].Length > 0 ? v[0] : null;

    /// <summary>Every non-empty value of a multi-value field (one per line for text-multi).</summary>
    public IReadOnlyList<string> Multi(string field) =>
        Values is not null && Values.TryGetValue(field, out var v)
            ? v.Select(x => x.Trim()).Where(x => x.Length > 0).ToList()
            : [];
}

public enum AdHocNoteType
{
    Info,
    Warn,
    Error,
}

/// <summary>What a stage produced: a form to fill in (status executing) or the end (status completed).</summary>
public sealed record AdHocResult(bool Completed, Element? Form, string? Note, AdHocNoteType NoteType)
{
    /// <summary>Asks the requester to fill in this form (type "form") and submit it.</summary>
    public static AdHocResult Ask(Element form) => new(false, form, null, AdHocNoteType.Info);

    /// <summary>Done, with a note and optionally a result form.</summary>
    public static AdHocResult Done(string? note, Element? result = null) => new(true, result, note, AdHocNoteType.Info);

    /// <summary>Done without doing what was asked, saying why (XEP-0050 §3.4 note type "error").</summary>
    public static AdHocResult Failed(string note) => new(true, null, note, AdHocNoteType.Error);
}
