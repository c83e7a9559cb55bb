using System.Collections.Concurrent;
using Xmpp.Core;
using Xmpp.Core.Addressing;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;
using Xmpp.Server.Config;
using Xmpp.Server.Hosting;
using Xmpp.Server.Routing;
using Xmpp.Server.Sessions;
using Xmpp.Tests.EndToEnd;

namespace Xmpp.Tests.Server.Modules;

/// <summary>
/// Runs chosen modules against the server's own router, hook bus, session registry and storage (SQLite in a
/// temporary directory), with no listener, stream or socket: a client is a bound <see cref="ClientSession"/>
/// on a <see cref="FakeClient"/> that keeps what would have been written to it. The router delivers
/// synchronously, so what a stanza causes has been recorded when <see cref="SendAsync"/> returns.
/// </summary>
internal sealed class ModuleTestHost : IAsyncDisposable
{
    private readonly TestServer _server;
    private long _connections;

    private ModuleTestHost(TestServer server) => _server = server;

    public ServerContext Context => _server.Server.Context;

    public IEnumerable<string> Logs => _server.Logs;

    /// <param name="modules">Configuration names of the modules to load (the RFC 6120/6121 core is always loaded).</param>
    /// <param name="users">Accounts as "user@host:password".</param>
    public static async Task<ModuleTestHost> StartAsync(IEnumerable<string> modules, params string[] users)
    {
        var selected = modules.ToDictionary(
            m => m,
            m => ServerOptions.DefaultModules.TryGetValue(m, out var settings) ? settings : new Dictionary<string, string>());
        var server = await TestServer.StartAsync(o => o with { Listeners = [], Modules = selected }, users);
        return new ModuleTestHost(server);
    }

    /// <summary>Binds a resource as a client's stream would (the session manager, then "resource-bind").</summary>
    public async Task<FakeClient> BindAsync(string fullJid)
    {
        var client = new FakeClient(Interlocked.Increment(ref _connections));
        var session = new ClientSession(Context, Jid.Parse(fullJid), client, NLog.LogManager.CreateNullLogger());
        client.Session = session;
        Assert.That(Context.Sessions.Bind(session), Is.Null, "a new resource");
        var request = new Element("iq", Ns.Client).SetAttribute("type", "set");
        await Context.Hooks.FireAsync(HookNames.ResourceBound, new StanzaContext(request, session.Jid, null, session, Context.Router), CancellationToken.None);
        return client;
    }

    /// <summary>Binds a resource and sends its initial presence; returns it with nothing recorded yet.</summary>
    public async Task<FakeClient> OnlineAsync(string fullJid)
    {
        var client = await BindAsync(fullJid);
        await SendAsync(client, "<presence/>");
        client.Take();
        return client;
    }

    /// <summary>A stanza from the client, in the jabber:client namespace, stamped and routed as its stream would.</summary>
    public async Task SendAsync(FakeClient client, string xml)
    {
        var stanza = ElementParser.Parse($"<wrapper xmlns='{Ns.Client}'>{xml}</wrapper>").FirstElement()!;
        stanza.SetAttribute("from", client.Jid.ToString());
        await Context.Router.RouteAsync(stanza, client.Jid, client.Session, CancellationToken.None);
    }

    /// <summary>An iq request from the client and the one answer it gets.</summary>
    public async Task<Element> IqAsync(FakeClient client, string xml)
    {
        client.Take();
        await SendAsync(client, xml);
        return client.Take().Single(e => e.Name == "iq");
    }

    /// <summary>The session ends as it does when its stream goes (for whatever reason).</summary>
    public static Task EndAsync(FakeClient client) => client.Session.EndAsync();

    public ValueTask DisposeAsync() => _server.DisposeAsync();
}

/// <summary>The stream side of a session in <see cref="ModuleTestHost"/>: it records what the session writes.</summary>
internal sealed class FakeClient(long connectionId) : ISessionCarrier
{
    private readonly ConcurrentQueue<Element> _written = new();

    public ClientSession Session { get; set; } = null!;

    public Jid Jid => Session.Jid;

    public long ConnectionId { get; } = connectionId;

    public StreamError? ClosedWith { get; private set; }

    public bool Closed { get; private set; }

    public bool TryWrite(Element stanza)
    {
        _written.Enqueue(stanza);
        return true;
    }

    public void WriteNonza(Element element) => _written.Enqueue(element);

    public Task FlushAsync() => Task.CompletedTask;

    public void Close(StreamError? streamError)
    {
        Closed = true;
        ClosedWith = streamError;
    }

    /// <summary>Everything written since the last call.</summary>
    public List<Element> Take()
    {
        var taken = new List<Element>();
        while (_written.TryDequeue(out var e))
        {
            taken.Add(e);
        }

        return taken;
    }
}
