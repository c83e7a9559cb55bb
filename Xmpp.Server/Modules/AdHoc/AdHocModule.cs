using System.Collections.Concurrent;
using System.Security.Cryptography;
using Xmpp.Core;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;

namespace Xmpp.Server.Modules.AdHoc;

/// <summary>
/// XEP-0050 Ad-Hoc Commands on the server: the command list in disco (only the commands the requester
/// may run), disco#info of each command, and execution with sessions, forms, notes and cancel.
/// Commands come from other modules through <see cref="AdHocCommands"/>.
/// </summary>
[Specification("XEP-0050", "1.3.0", Note = "Commands of the server listed per requester; execute, complete and cancel, with sessions that expire after 10 minutes.")]
public sealed class AdHocModule : IXmppModule, IKeepsStateAcrossReload
{
    public const string Namespace = AdHocCommands.Namespace;

    /// <summary>An unfinished command session is forgotten after this long (XEP-0050 §4.4 session-expired).</summary>
    private static readonly TimeSpan SessionLifetime = TimeSpan.FromMinutes(10);

    /// <summary>Unfinished sessions kept at once, over all requesters.</summary>
    private const int MaxSessions = 10_000;

    /// <summary>Unfinished sessions kept for one requester: a new one beyond it drops the oldest.</summary>
    private const int MaxSessionsPerRequester = 16;

    private ConcurrentDictionary<(string Requester, string Id), Session> _sessions = new();

    public string Name => "adhoc";

    public void TakeOver(IXmppModule previous)
    {
        if (previous is AdHocModule old)
        {
            _sessions = old._sessions;
        }
    }

    public void Register(IModuleContext context)
    {
        var registry = context.Shared<AdHocCommands>();
        registry.Served = true;
        registry.ExecuteAtService = (ctx, payload, ct) => ExecuteAsync(context, registry, ctx, payload, host: false, ct);
        context.Disco.AddFeature(Namespace, IqTarget.Host);

        context.Disco.AddHostNodes(
            (ctx, node, _) =>
            {
                if (node == Namespace)
                {
                    // XEP-0050 §2.2: the node that lists the commands.
                    return ValueTask.FromResult<IEnumerable<Element>?>([AdHocCommands.Identity("command-list", "Commands")]);
                }

                return ValueTask.FromResult<IEnumerable<Element>?>(registry.NodeInfo(ctx.From, ctx.To!.Domain, host: true, node));
            },
            (ctx, node, _) =>
            {
                if (node != Namespace)
                {
                    return ValueTask.FromResult<IEnumerable<Element>?>(registry.Find(node, ctx.To!.Domain, host: true) is null ? null : []);
                }

                return ValueTask.FromResult<IEnumerable<Element>?>(registry.Items(ctx.From, ctx.To!.Domain, host: true));
            });

        context.HandleIq("set", Namespace, "command", IqTarget.Host, (ctx, payload, ct) => ExecuteAsync(context, registry, ctx, payload, host: true, ct));
    }

    /// <param name="host">Sent to one of the server's hosts, rather than to a service domain (conference.HOST).</param>
    private async ValueTask<Element?> ExecuteAsync(IModuleContext context, AdHocCommands registry, Routing.StanzaContext ctx, Element payload, bool host, CancellationToken ct)
    {
        var (node, command) = FindCommand(context, registry, ctx, payload, host);
        var action = payload.GetAttribute("action") ?? "execute";
        if (action is not ("execute" or "complete" or "next" or "prev" or "cancel"))
        {
            throw Error(StanzaErrorCondition.BadRequest, "malformed-action", $"unknown action '{action}'");
        }

        var requester = ctx.From.ToString();
        var sessionId = payload.GetAttribute("sessionid");
        if (sessionId is not null)
        {
            CheckSession(requester, sessionId, node);
        }

        var form = payload.Child("x", DataForm.Namespace);
        if (action == "cancel" || form?.GetAttribute("type") == "cancel")
        {
            if (sessionId is not null)
            {
                _sessions.TryRemove((requester, sessionId), out _);
            }

            return Reply(node, sessionId, "canceled");
        }

        if (action is "next" or "prev")
        {
            // Every command here has one form: only "execute" (its default, complete) and "complete" apply.
            throw Error(StanzaErrorCondition.BadRequest, "bad-action", $"'{action}' is not possible at this stage");
        }

        IReadOnlyDictionary<string, List<string>>? values = form?.GetAttribute("type") == "submit" ? DataForm.Values(form) : null;
        if (values is null && sessionId is not null)
        {
            // The second stage without a filled-in form: the command says what is missing.
            values = new Dictionary<string, List<string>>();
        }

        var result = await RunAsync(context, command, ctx, node, values, ct).ConfigureAwait(false);
        if (!result.Completed)
        {
            return Executing(requester, node, sessionId, result);
        }

        if (sessionId is not null)
        {
            _sessions.TryRemove((requester, sessionId), out _);
        }

        var done = Reply(node, sessionId ?? NewId(), "completed");
        AddNote(done, result);
        if (result.Form is not null)
        {
            done.Add(result.Form);
        }

        context.Log.Info("{Requester} ran {Node}: {Outcome}", ctx.From, node, result.NoteType == AdHocNoteType.Error ? "refused: " + result.Note : "done");
        return done;
    }

    /// <summary>XEP-0050: the command the node names, offered at the domain addressed, that the requester may run.</summary>
    private static (string Node, AdHocCommand Command) FindCommand(IModuleContext context, AdHocCommands registry, Routing.StanzaContext ctx, Element payload, bool host)
    {
        var node = payload.GetAttribute("node");
        if (node is null)
        {
            throw Error(StanzaErrorCondition.BadRequest, "bad-payload", "the command has no node");
        }

        if (registry.Find(node, ctx.To!.Domain, host) is not { } command)
        {
            throw new StanzaErrorException(StanzaErrorCondition.ItemNotFound);
        }

        if (!command.MayExecute(ctx.From))
        {
            context.Log.Warn("{Requester} may not run {Node}", ctx.From, node);
            throw new StanzaErrorException(StanzaErrorCondition.Forbidden);
        }

        return (node, command);
    }

    /// <summary>XEP-0050: a session id names an unexpired session of the same requester and command (bad-sessionid, session-expired).</summary>
    private void CheckSession(string requester, string sessionId, string node)
    {
        if (!_sessions.TryGetValue((requester, sessionId), out var session) || session.Node != node)
        {
            throw Error(StanzaErrorCondition.BadRequest, "bad-sessionid", "no such command session");
        }

        if (session.Expires < DateTime.UtcNow)
        {
            _sessions.TryRemove((requester, sessionId), out _);
            throw Error(StanzaErrorCondition.NotAllowed, "session-expired", "the command session has expired");
        }
    }

    /// <summary>The command's handler; a failure other than a stanza error is the command's failed result, not the iq's.</summary>
    private static async ValueTask<AdHocResult> RunAsync(IModuleContext context, AdHocCommand command, Routing.StanzaContext ctx, string node, IReadOnlyDictionary<string, List<string>>? values, CancellationToken ct)
    {
        try
        {
            return await command.Handler(new AdHocRequest(ctx.From, ctx.To!.Domain, values, ctx), ct).ConfigureAwait(false);
        }
        catch (StanzaErrorException)
        {
            throw;
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            context.Log.Error(ex, "Command {Node} run by {Requester} failed", node, ctx.From);
            return AdHocResult.Failed("The command failed on the server: " + ex.Message);
        }
    }

    /// <summary>XEP-0050: a command that needs more gets a session, and its form with the complete action (status executing).</summary>
    private Element Executing(string requester, string node, string? sessionId, AdHocResult result)
    {
        sessionId ??= Begin(requester, node);
        var reply = Reply(node, sessionId, "executing");
        reply.AddChild("actions", Namespace).SetAttribute("execute", "complete").AddChild("complete", Namespace);
        AddNote(reply, result);
        if (result.Form is not null)
        {
            reply.Add(result.Form);
        }

        return reply;
    }

    private string Begin(string requester, string node)
    {
        var now = DateTime.UtcNow;
        if (_sessions.Count >= MaxSessions)
        {
            foreach (var (key, session) in _sessions)
            {
                if (session.Expires < now)
                {
                    _sessions.TryRemove(key, out _);
                }
            }
        }

        var mine = _sessions.Where(s => s.Key.Requester == requester).OrderBy(s => s.Value.Expires).ToList();
        for (var i = 0; i <= mine.Count - MaxSessionsPerRequester; i++)
        {
            _sessions.TryRemove(mine[i].Key, out _);
        }

        if (_sessions.Count >= MaxSessions)
        {
            throw new StanzaErrorException(StanzaErrorCondition.ResourceConstraint, "too many unfinished command sessions");
        }

        var id = NewId();
        _sessions[(requester, id)] = new Session(node, now + SessionLifetime);
        return id;
    }

    private static string NewId() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12));

    private static Element Reply(string node, string? sessionId, string status) =>
        new Element("command", Namespace).SetAttribute("node", node).SetAttribute("sessionid", sessionId).SetAttribute("status", status);

    private static void AddNote(Element command, AdHocResult result)
    {
        if (result.Note is not null)
        {
            command.AddChild("note", Namespace).SetAttribute("type", result.NoteType.ToString().ToLowerInvariant()).AddText(result.Note);
        }
    }

    /// <summary>A stanza error with XEP-0050 §4.6's application-specific condition.</summary>
    private static StanzaErrorException Error(StanzaErrorCondition condition, string specific, string text) =>
        new(new StanzaError(condition, text) { Application = new Element(specific, Namespace) });

    private sealed record Session(string Node, DateTime Expires);
}
