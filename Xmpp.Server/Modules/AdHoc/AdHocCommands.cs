using Xmpp.Core.Addressing;
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
}

/// <summary>One command: its node, its human-readable name, who may run it and what it does.</summary>
public sealed record AdHocCommand(string Node, string Name, Func<Jid, bool> MayExecute, AdHocHandler Handler);

/// <summary>Runs one stage of a command.</summary>
public delegate ValueTask<AdHocResult> AdHocHandler(AdHocRequest request, CancellationToken cancellationToken);

/// <param name="Requester">The full JID that asked.</param>
/// <param name="Host">The virtual host the command was sent to.</param>
/// <param name="Values">
/// The submitted form's values by field, or null on the first request (when the command shows its form,
/// or completes at once if it needs no input).
/// </param>
public sealed record AdHocRequest(Jid Requester, string Host, IReadOnlyDictionary<string, List<string>>? Values, StanzaContext Context)
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
