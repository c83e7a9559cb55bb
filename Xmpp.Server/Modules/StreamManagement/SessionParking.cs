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

    public ValueTask<Element?> CheckpointAsync(Jid bare) => ValueTask.FromResult<Element?>(null);

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
            if (session.Tracker is not ManagedSession { ResumeId: { } id } managed)
            {
                continue;
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
                continue;
            }

            module.Resumable.Remove(id, managed);
            session.Vacate()?.Close(new StreamError(StreamErrorCondition.SystemShutdown, "this node is restarting: resume the session to go on"));
            parked.Add(snapshot);
            session.Log.Info("Session of {Jid} parked for resumption on another node ({Unacked} unacknowledged stanza(s))", session.Jid, snapshot.Child("unacked", ClientSession.ParkedNamespace)?.Elements().Count() ?? 0);
        }

        return parked;
    }

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
}
