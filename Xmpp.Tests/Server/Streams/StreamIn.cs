using System.Net;
using System.Text;
using Xmpp.Core;
using Xmpp.Core.Xml;
using Xmpp.Server.Streams;
using Xmpp.Tests.EndToEnd;

namespace Xmpp.Tests.Server.Streams;

/// <summary>A client stream over the in-memory transport, run by the real server's connection core.</summary>
internal sealed class StreamIn : IAsyncDisposable
{
    private readonly string _user;
    private readonly string _password;

    private StreamIn(C2sTestTransport transport, StreamConnection connection, Task completion, string user, string password)
    {
        Transport = transport;
        Connection = connection;
        Completion = completion;
        _user = user;
        _password = password;
    }

    public C2sTestTransport Transport { get; }

    public StreamConnection Connection { get; }

    public Task Completion { get; }

    public C2sStateMachine Machine => (C2sStateMachine)Connection.Protocol;

    public C2sState State => Machine.State;

    /// <summary>
    /// A new stream of <paramref name="user"/> brought to <paramref name="state"/> by the elements a client sends to
    /// get there (PLAIN, then a bind with a resource of its own).
    /// </summary>
    public static async Task<StreamIn> StateAsync(TestServer server, C2sState state, string user = "alice", string password = "wonderland")
    {
        var transport = new C2sTestTransport(secure: state != C2sState.AwaitingStartTls);
        var connection = C2sStateMachine.Create(server.Server.Context, transport, directTls: false, CancellationToken.None);
        var stream = new StreamIn(transport, connection, server.Server.Context.Connections.Start(connection, IPAddress.Loopback), user, password);
        if (state != C2sState.AwaitingHeader)
        {
            await stream.OpenAsync();
        }

        switch (state)
        {
            case C2sState.Authenticating:
                // SCRAM's first message: the server answers with its challenge and waits for the response.
                transport.Send($"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'>{Convert.ToBase64String(Encoding.UTF8.GetBytes($"n,,n={user},r=abcdefghijklmnop"))}</auth>");
                Assert.That((await transport.NextElementAsync()).Element?.Name, Is.EqualTo("challenge"));
                break;
            case >= C2sState.AwaitingBind:
                await stream.AuthenticateAsync();
                if (state >= C2sState.Established)
                {
                    transport.Send($"<iq xmlns='jabber:client' type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>r{Guid.NewGuid():N}</resource></bind></iq>");
                    Assert.That((await transport.NextElementAsync()).Element?.GetAttribute("type"), Is.EqualTo("result"));
                }

                if (state == C2sState.Closing)
                {
                    stream.Machine.Close(null);
                    Assert.That((await transport.NextAsync()).Kind, Is.EqualTo(OutputKind.Close));
                }

                break;
        }

        Assert.That(stream.State, Is.EqualTo(state));
        return stream;
    }

    /// <summary>The next element the stream writes that is not a header.</summary>
    public async Task<Element> NextAsync() => (await Transport.NextElementAsync()).Element ?? throw new InvalidOperationException("the stream wrote no element");

    private async Task OpenAsync()
    {
        Transport.Header();
        Assert.That((await Transport.NextAsync()).Kind, Is.EqualTo(OutputKind.Header));
        Assert.That((await Transport.NextAsync()).Element?.Name, Is.EqualTo("features"));
    }

    private async Task AuthenticateAsync()
    {
        Transport.Send($"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{Convert.ToBase64String(Encoding.UTF8.GetBytes($"\0{_user}\0{_password}"))}</auth>");
        Assert.That((await Transport.NextElementAsync()).Element?.Name, Is.EqualTo("success"));
        await OpenAsync();
    }

    public async ValueTask DisposeAsync()
    {
        Connection.Close(null);
        Transport.End();
        await Completion.WaitAsync(TimeSpan.FromSeconds(10));
    }
}
