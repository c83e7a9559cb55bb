using System.Net;
using System.Net.Sockets;
using NLog;
using Xmpp.Server.Config;
using Xmpp.Server.Hosting;

namespace Xmpp.Server.Net;

/// <summary>
/// Accepts connections on one address and runs each on the connection core with the state machine of the
/// listener's kind: <see cref="Streams.C2sStateMachine"/>, <see cref="Streams.IncomingS2sStateMachine"/> or
/// <see cref="Streams.ComponentStateMachine"/>.
/// </summary>
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

        ReuseAddressOnly(_socket);
        _socket.NoDelay = true;
        _socket.Bind(endpoint);
        _socket.Listen(1024);

        // Port 0 binds an ephemeral port: publish the real one (tests depend on it).
        LocalEndPoint = (IPEndPoint)_socket.LocalEndPoint!;
    }

    /// <summary>
    /// SO_REUSEADDR, so that a restarted server binds its port while old connections are in TIME_WAIT. On Linux
    /// .NET's ReuseAddress option also sets SO_REUSEPORT, which lets a second listener (another server, or a
    /// test's second server on a port the first was given by the system) bind the same port and take half of
    /// its connections, silently: the option is set by itself there, and a taken port is refused.
    /// </summary>
    public static void ReuseAddressOnly(Socket socket)
    {
        if (OperatingSystem.IsLinux())
        {
            const int SolSocket = 1, SoReuseAddr = 2;
            socket.SetRawSocketOption(SolSocket, SoReuseAddr, BitConverter.GetBytes(1));
        }
        else
        {
            socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        }
    }

    public ListenerKind Kind { get; }

    public IPEndPoint LocalEndPoint { get; }

    private bool _stopping;

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
            catch (SocketException) when (shutdown.IsCancellationRequested || Volatile.Read(ref _stopping))
            {
                // StopAsync closed the socket under a pending accept (ECANCELED, "Operation canceled").
                break;
            }
            catch (SocketException ex)
            {
                _log.Warn("Accept failed on {Endpoint}: {Reason}", LocalEndPoint, ex.Message);
                continue;
            }

            client.NoDelay = true;
            var address = ((IPEndPoint)client.RemoteEndPoint!).Address;
            var limit = _ctx.Options.Limits.ConnectionsPerIp;
            if (!_ctx.Connections.TryAdmit(address, limit))
            {
                _log.Warn("Refusing a connection from {Remote} on {Endpoint}: {Limit} connections from that address are open already", client.RemoteEndPoint, LocalEndPoint, limit);
                _ = RefuseAsync(client);
                continue;
            }

            var connection = Kind switch
            {
                ListenerKind.Component => Streams.ComponentStateMachine.Create(_ctx, Streams.Transports.ByteStreamTransport.ForSocket(client, S2s.S2sTls.ReaderLimits(_ctx, Streams.ComponentStateMachine.Namespace), Streams.ComponentStateMachine.Namespace), shutdown),
                _ when Kind.IsServer() => Streams.IncomingS2sStateMachine.Create(_ctx, S2s.S2sTls.Transport(_ctx, client, _directTls), _directTls, shutdown),
                _ => Streams.C2sStateMachine.Create(_ctx, new NetworkStream(client, ownsSocket: true), (IPEndPoint)client.RemoteEndPoint!, _directTls, shutdown),
            };
            _ = _ctx.Connections.Start(connection, address);
        }
    }

    /// <summary>
    /// Ends a connection over the per-address limit: on a plain-text port with a policy-violation stream
    /// error after our stream header (RFC 6120 §4.9.1.1: an error before the peer's header still opens the
    /// stream first), on a direct-TLS port by closing it. Reads and discards for up to a second before
    /// closing, so that the peer's unread header does not turn the close into a reset that hides the error.
    /// </summary>
    private async Task RefuseAsync(Socket client)
    {
        try
        {
            using (client)
            {
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(1));
                if (!_directTls)
                {
                    var content = Kind == ListenerKind.Component ? Streams.ComponentStateMachine.Namespace : Kind.IsServer() ? Xmpp.Core.Ns.Server : Xmpp.Core.Ns.Client;
                    var xml = "<?xml version='1.0'?><stream:stream xmlns='" + content + "' xmlns:stream='" + Xmpp.Core.Ns.Stream +
                        "' from='" + Xmpp.Core.Xml.ElementWriter.Escape(_ctx.Options.Hosts[0].Name) + "' version='1.0'><stream:error><policy-violation xmlns='" +
                        Xmpp.Core.Ns.Streams + "'/><text xmlns='" + Xmpp.Core.Ns.Streams +
                        "' xml:lang='en'>too many connections from your address</text></stream:error></stream:stream>";
                    await client.SendAsync(System.Text.Encoding.UTF8.GetBytes(xml), SocketFlags.None, timeout.Token).ConfigureAwait(false);
                }

                client.Shutdown(SocketShutdown.Send);
                var buffer = new byte[512];
                while (await client.ReceiveAsync(buffer, SocketFlags.None, timeout.Token).ConfigureAwait(false) > 0)
                {
                }
            }
        }
        catch (Exception ex) when (ex is SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // The peer is gone or silent: nothing more to do.
        }
    }

    public async Task StopAsync()
    {
        Volatile.Write(ref _stopping, true);
        _socket.Dispose();
        if (_acceptLoop is not null)
        {
            await _acceptLoop.ConfigureAwait(false);
        }
    }

    public void Dispose() => _socket.Dispose();
}
