using Xmpp.Core.Addressing;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;
using Xmpp.Server.Sessions;

namespace Xmpp.Server.Modules.StreamManagement;

/// <summary>
/// Cluster mode: resumable sessions (XEP-0198 §5) leave their node without ending and wait on another for their
/// clients to resume them there (README, "Running a cluster": rolling restarts). A parked session carries its
/// counters, what its client has not acknowledged, and its presence, so nobody sees it go offline.
/// </summary>
internal sealed class SessionParking(StreamManagementModule module) : ISessionParking
{
    private static readonly TimeSpan QuiesceTimeout = TimeSpan.FromSeconds(5);

    public IReadOnlyCollection<Jid> ParkableAccounts() => module.Resumable.All.Select(m => m.Session.Jid.Bare).ToHashSet();

    /// <summary>Sessions are not checkpointed: a dead node's sessions end (their contacts are told), and their clients log in again.</summary>
    public bool Checkpoints(Jid bare) => false;

    public ValueTask<Element?> CheckpointAsync(Jid bare, bool listing = false) => ValueTask.FromResult<Element?>(null);

    public bool AllWaiting(Jid bare)
    {
        var sessions = module.Context.Sessions.Resources(bare);
        return sessions.Count > 0 && sessions.All(s => s is ClientSession { Tracker: ManagedSession { IsWaiting: true } });
    }

    public async Task<IReadOnlyList<Element>> ParkAsync(Jid bare)
    {
        var parked = new List<Element>();
        foreach (var session in module.Context.Sessions.Resources(bare).OfType<ClientSession>())
        {
            if (await ParkAsync(session).ConfigureAwait(false) is { } snapshot)
            {
                parked.Add(snapshot);
            }
        }

        return parked;
    }

    public async Task<Element?> ParkAsync(ClientSession session)
    {
        if (session.Tracker is not ManagedSession { ResumeId: { } id } managed)
        {
            return null;
        }

        // The stanza the client's stream is handling now finishes first, so that the count in the snapshot is
        // exact; one that does not within seconds (its stream broke) is left uncounted.
        var quiet = managed.QuiesceAsync();
        if (!quiet.IsCompleted && await Task.WhenAny(quiet, Task.Delay(QuiesceTimeout)).ConfigureAwait(false) != quiet)
        {
            session.Log.Warn("{Jid}: a stanza was still being handled after {Seconds} s; parking without it", session.Jid, QuiesceTimeout.TotalSeconds);
        }

        // What client state indication held goes into the snapshot, to be sent at resumption.
        if (session.SendFilter is { } filter)
        {
            session.SendFilter = null;
            filter.Release(session);
        }

        if (managed.Park() is not { } snapshot)
        {
            return null;
        }

        module.Resumable.Remove(id, managed);
        session.Vacate()?.Close(new StreamError(StreamErrorCondition.SystemShutdown, "this node is restarting: resume the session to go on"));
        session.Log.Info("Session of {Jid} parked for resumption on another node ({Unacked} unacknowledged stanza(s))", session.Jid, snapshot.Child("unacked", ClientSession.ParkedNamespace)?.Elements().Count() ?? 0);
        return snapshot;
    }

    public Element? TakeWaiting(Jid bare, string resumeId)
    {
        if (module.Resumable.Find(resumeId) is not { IsWaiting: true } managed || managed.Session.Jid.Bare != bare || managed.Park() is not { } snapshot)
        {
            return null;
        }

        module.Resumable.Remove(resumeId, managed);
        managed.Session.Vacate();
        managed.Session.Log.Info("Session of {Jid} taken by its client resuming it on another node", managed.Session.Jid);
        return snapshot;
    }

    public Task RedeliverAsync(Jid bare, Element message) => ManagedSession.RedeliverAsync(module.Context, bare, message);

    public void Restore(Jid bare, IReadOnlyList<Element> snapshots)
    {
        foreach (var snapshot in snapshots.Where(s => s.Name == "parked" && s.Namespace == ClientSession.ParkedNamespace))
        {
            if (!Jid.TryParse(snapshot.GetAttribute("jid"), out var full) || full.Bare != bare || full.Resource is null ||
                snapshot.GetAttribute("id") is null || snapshot.Child("session", ClientSession.ParkedNamespace) is not { } state)
            {
                module.Context.Log.Warn("A parked session of {Account} could not be restored: its snapshot is incomplete", bare);
                continue;
            }

            var session = new ClientSession(module.Context.Server, full, state, module.Context.Log);
            var managed = new ManagedSession(module, session, snapshot);
            session.Tracker = managed;
            if (module.Context.Sessions.Bind(session) is { } replaced && !ReferenceEquals(replaced, session))
            {
                replaced.Close(new StreamError(StreamErrorCondition.Conflict, "replaced by a session resumed from another node"));
            }

            module.Resumable.Add(managed.ResumeId!, managed);
            module.Context.Log.Info("Session of {Jid} arrived from another node: waiting {Seconds} s for its client to resume it", full, snapshot.GetAttribute("left"));
        }
    }

    /// <summary>
    /// A snapshot taken for a client resuming here (from the database, or from the account's home on another node):
    /// restored as any other, or, while the account is homed on another node, bound there as a session whose stream
    /// is here.
    /// </summary>
    public async Task RestoreTakenAsync(Jid bare, Element snapshot, CancellationToken ct)
    {
        if (module.Context.Server.Cluster is not { } cluster || cluster.IsHome(bare) ||
            !Jid.TryParse(snapshot.GetAttribute("jid"), out var full) || full.Bare != bare || full.Resource is null ||
            snapshot.GetAttribute("id") is not { } id || snapshot.Child("session", ClientSession.ParkedNamespace) is not { } state)
        {
            Restore(bare, [snapshot]);
            return;
        }

        var session = new ClientSession(module.Context.Server, full, state, module.Context.Log);
        var managed = new ManagedSession(module, session, snapshot);
        session.Tracker = managed;
        try
        {
            session.SetHome(await cluster.AttachAsync(session, ct).ConfigureAwait(false));
        }
        catch (Exception ex) when (ex is Core.Stanzas.XmppStreamException or OperationCanceledException)
        {
            module.Context.Log.Warn("The session of {Jid} could not be bound on its account's home: {Reason}", full, ex.Message);
            managed.Park(); // stops its wait for resumption without ending anything
            return;
        }

        if (session.Home is null && module.Context.Sessions.Bind(session) is { } replaced && !ReferenceEquals(replaced, session))
        {
            replaced.Close(new StreamError(StreamErrorCondition.Conflict, "replaced by a session resumed from another node"));
        }

        module.Resumable.Add(id, managed);
    }
}
