using System.Net;
using System.Net.Sockets;
using NLog;
using Xmpp.Server.Config;
using Xmpp.Server.Hosting;

namespace Xmpp.Server.Net;

/// <summary>Accepts connections on one address and hands each to its own <see cref="ClientConnection"/> task.</summary>
public sealed class TcpListenerService : IDisposable
{
    private readonly ServerContext _ctx;
    private readonly Socket _socket;
    private readonly Logger _log;
    private readonly bool _directTls;
    private Task? _acceptLoop;

    public TcpListenerService(ServerContext ctx, ListenerKind kind, IPEndPoint endpoint)
    {
        _ctx = ctx;
        _log = ctx.Logs.GetLogger("Listener");
        _directTls = kind.IsDirectTls();
        Kind = kind;
        _socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        if (endpoint.AddressFamily == AddressFamily.InterNetworkV6 && endpoint.Address.Equals(IPAddress.IPv6Any))
        {
            _socket.DualMode = true;
        }

        _socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        _socket.NoDelay = true;
        _socket.Bind(endpoint);
        _socket.Listen(1024);

        // Port 0 binds an ephemeral port: publish the real one (tests depend on it).
        LocalEndPoint = (IPEndPoint)_socket.LocalEndPoint!;
    }

    public ListenerKind Kind { get; }

    public IPEndPoint LocalEndPoint { get; }

    public void Start(CancellationToken shutdown) => _acceptLoop = AcceptLoopAsync(shutdown);

    private async Task AcceptLoopAsync(CancellationToken shutdown)
    {
        while (!shutdown.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _socket.AcceptAsync(shutdown).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }
            catch (ObjectDisposedException)
            {
                break;
            }
            catch (SocketException ex)
            {
                _log.Warn("Accept failed on {Endpoint}: {Reason}", LocalEndPoint, ex.Message);
                continue;
            }

            client.NoDelay = true;
            IConnection connection = Kind.IsServer()
                ? new S2s.IncomingS2s(_ctx, _ctx.S2s, client, _directTls, shutdown)
                : new ClientConnection(_ctx, client, _directTls, shutdown);
            _ctx.Connections.Start(connection);
        }
    }

    public async Task StopAsync()
    {
        _socket.Dispose();
        if (_acceptLoop is not null)
        {
            await _acceptLoop.ConfigureAwait(false);
        }
    }

    public void Dispose() => _socket.Dispose();
}
