using NLog;
using Xmpp.Core.Addressing;
using Xmpp.Core.Xml;
using Xmpp.Server.Config;
using Xmpp.Server.Modules.Roster;
using Xmpp.Server.Routing;
using Xmpp.Server.Sessions;
using Xmpp.Server.Storage;

namespace Xmpp.Server.Modules;

/// <summary>A request iq handler: returns the result payload (or null for an empty result), or throws <see cref="StanzaErrorException"/>.</summary>
public delegate ValueTask<Element?> IqHandler(StanzaContext context, Element payload, CancellationToken cancellationToken);

/// <summary>Special results of an <see cref="IqHandler"/>.</summary>
public static class IqReply
{
    /// <summary>The handler sent the reply itself (it had to come before something else it did).</summary>
    public static readonly Element Answered = new("answered", "urn:xmppserver:internal");
}

/// <summary>What a module can see of the server and register with it.</summary>
public interface IModuleContext
{
    ServerOptions Options { get; }

    /// <summary>The module's configuration name (for messages).</summary>
    string ModuleName { get; }

    /// <summary>
    /// One of this module's attributes from &lt;modules&gt; in the configuration, or null when not given.
    /// Asking for a name is what makes it a valid attribute: after registration the host refuses, as a
    /// configuration error, every attribute the module never asked for.
    /// </summary>
    string? Option(string name);

    Logger Log { get; }

    /// <summary>The server's counters and gauges (for the metrics endpoint, or a module's own gauges).</summary>
    Hosting.ServerMetrics Metrics { get; }

    ISessionRegistry Sessions { get; }

    IStanzaRouter Router { get; }

    IStorage Storage { get; }

    DiscoRegistry Disco { get; }

    /// <summary>Rosters of local accounts (RFC 6121 §2).</summary>
    RosterManager Rosters { get; }

    /// <summary>
    /// Claims a service domain (a subdomain such as conference.HOST): the server answers for it on the network
    /// (federation accepts and opens streams for it, with its parent host's certificate), and stanzas to it
    /// reach "route/remote", where the module claims them ahead of federation. Refused when a host or a
    /// component has the name.
    /// </summary>
    void ServeDomain(string domain);

    /// <summary>
    /// Cluster mode: the module keeps a served domain's whole state live in memory (a publish-subscribe service's
    /// nodes and subscriptions), so every stanza to the domain is handled on one node, the domain's home, which
    /// keeps it while it runs. The node that takes it over after that one leaves is told (<see cref="OnAccountArrived"/>,
    /// with the domain's JID) and reads it again from storage.
    /// </summary>
    void HomeWhole(string domain);

    /// <summary>
    /// Serves HTTP requests under a path prefix ("/upload/") on the HTTPS listener, for the given methods;
    /// the listener answers CORS preflights for them by the server's CORS settings.
    /// </summary>
    void HandleHttp(string pathPrefix, Hosting.HttpHandler handler, params string[] methods);

    /// <summary>
    /// Serves HTTP requests under a path prefix on the HTTPS listener for pages of the server's own origin only:
    /// no CORS answers, whatever the CORS settings (the admin console).
    /// </summary>
    void HandleSameOriginHttp(string pathPrefix, Hosting.HttpHandler handler, params string[] methods);

    /// <summary>
    /// The whole server: its certificates, connections, authentication throttle, listeners. For the administration
    /// console, which shows and acts on all of it; other modules use the narrower members above.
    /// </summary>
    Hosting.ServerContext Server { get; }

    /// <summary>The HTTPS listener's base URL for a domain (https://DOMAIN:PORT/), or null when there is none or it has not started.</summary>
    Uri? HttpsBase(string domain);

    /// <summary>Adds a stream feature offered after authentication.</summary>
    void AddStreamFeature(Element feature);

    /// <summary>Adds a stream feature offered after authentication when the function gives one for the stream.</summary>
    void AddStreamFeature(Func<Streams.IC2sContext, Element?> feature);

    /// <summary>Registers a stanza hook (see <see cref="HookNames"/>).</summary>
    void Hook(string name, StanzaHandler handler, int priority = 0);

    /// <summary>Fires a hook (see <see cref="HookNames"/>); true when a handler took the event.</summary>
    ValueTask<bool> FireAsync(string name, StanzaContext context, CancellationToken cancellationToken);

    /// <summary>
    /// The one object of type <typeparamref name="T"/> shared by every module that asks for it: how a
    /// module offers a registry to others (XEP-0050's commands to XEP-0133's administration) without the
    /// core knowing either.
    /// </summary>
    T Shared<T>()
        where T : class, new();

    /// <summary>
    /// Registers what to forget of an account when this node becomes its home (cluster mode, README "Running a
    /// cluster"): a per-account cache kept while another node was the home may be stale.
    /// </summary>
    void OnAccountArrived(Action<Jid> forget);

    /// <summary>
    /// Cluster mode: registers whether this module holds live state of an entity homed on this node (a room with
    /// occupants), which must then stay here: its home is not given up while the entity is idle.
    /// </summary>
    void KeepsHome(Func<Jid, bool> holds);

    /// <summary>
    /// Cluster mode: registers what to do when another node died with these sessions bound (full JIDs): what this
    /// node holds of them (room occupants) is removed, as for a session whose server stopped answering.
    /// </summary>
    void OnSessionsLost(Func<IReadOnlySet<Jid>, CancellationToken, Task> lost);

    /// <summary>
    /// Cluster mode: this module can take what it holds of an entity off this node without ending it and restore it
    /// on another (XEP-0198 sessions, resumed there; rooms with their occupants), which a drain and a login on
    /// another node use.
    /// </summary>
    void ParksSessions(ISessionParking parking);

    /// <summary>
    /// Cluster mode: live state of an entity that this module checkpoints (<see cref="ISessionParking.CheckpointAsync"/>)
    /// changed; its checkpoint is written for the other nodes soon after. Does nothing on a single node.
    /// </summary>
    /// <param name="urgent">Written at once instead of with the changes of the next moments (who is in a room).</param>
    void Changed(Jid entity, bool urgent = false);

    /// <summary>
    /// A session sent available presence to <paramref name="target"/> outside its roster, or withdrew it (RFC 6121
    /// §4.6). Cluster mode keeps it in the crash ledger, so that the target hears the session went should its node
    /// die. Does nothing on a single node.
    /// </summary>
    void DirectedPresence(Jid session, Jid target, bool available);

    /// <summary>
    /// Cluster mode: the checkpoints (<see cref="ISessionParking.CheckpointAsync"/>) of <paramref name="domain"/>'s
    /// entities homed on the other nodes, such as their occupied rooms, for a service's lists. Empty on a single node.
    /// </summary>
    ValueTask<IReadOnlyList<(Jid Entity, Element Snapshot)>> CheckpointsElsewhereAsync(string domain, CancellationToken cancellationToken);

    /// <summary>Runs once every module has registered (to describe what all of them added, e.g. the server's caps).</summary>
    void AfterLoad(Action action);

    /// <summary>Offers a stream feature before authentication (next to the SASL mechanisms).</summary>
    void AddPreAuthStreamFeature(Element feature);

    /// <summary>Offers a stream feature before authentication when the function gives one for the stream.</summary>
    void AddPreAuthStreamFeature(Func<Streams.IC2sContext, Element?> feature);

    /// <summary>Answers iq requests with a payload of this namespace from clients that have not authenticated.</summary>
    void HandlePreAuthIq(string ns, Streams.PreAuthIqHandler handler);

    /// <summary>
    /// Handles first-level elements of a namespace that are not stanzas ("nonzas") on client streams, in every
    /// state: the handler looks at <see cref="Streams.IC2sContext.State"/> and answers what its specification
    /// says for elements out of place.
    /// </summary>
    void HandleStreamElement(string ns, Streams.C2sElementHandler handler);

    /// <summary>Runs when the server stops, after every connection has closed and before storage closes.</summary>
    void AtShutdown(Func<Task> action);

    /// <summary>
    /// Work the module runs while the server runs (expiry sweeps and the like): started with the listeners,
    /// cancelled at shutdown and awaited before storage closes. It must end when the token is cancelled.
    /// </summary>
    void RunInBackground(Func<CancellationToken, Task> work);

    /// <summary>
    /// Registers a request handler for iq type get or set with payload NS:NAME addressed to the given targets.
    /// A request from another entity to the bare JID of a local account that does not exist is answered
    /// service-unavailable before the handler runs (RFC 6121 §8.5.1), unless the targets include
    /// <see cref="IqTarget.AnyAccount"/>.
    /// </summary>
    void HandleIq(string type, string ns, string name, IqTarget targets, IqHandler handler);

    /// <summary>
    /// Whether a local account exists (it has a session, or storage knows it). Not for answering strangers
    /// differently about missing accounts than about accounts that deny them (RFC 6121 §8.5.1, XEP-0030 §8).
    /// </summary>
    ValueTask<bool> AccountExistsAsync(Jid account, CancellationToken cancellationToken);
}

[Flags]
public enum IqTarget
{
    Host = 1,
    Bare = 2,

    /// <summary>With <see cref="Bare"/>: the handler answers for the bare JIDs of accounts that do not exist too.</summary>
    AnyAccount = 4,
}
