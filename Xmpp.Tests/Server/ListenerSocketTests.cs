using System.Net;
using System.Net.Sockets;
using Xmpp.Server.Net;

namespace Xmpp.Tests.Server;

/// <summary>The listeners' socket options: a port another listener holds is refused, not shared.</summary>
[TestFixture]
public sealed class ListenerSocketTests
{
    [Test]
    public void A_port_another_listener_holds_is_refused_not_shared()
    {
        // With .NET's ReuseAddress on Linux (SO_REUSEPORT as well), the second bind succeeded and the kernel
        // spread the connections over both listeners: a flaky federation test was a client reaching the
        // other server's s2s listener on a port the system had given its own c2s listener.
        using var first = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        TcpListenerService.ReuseAddressOnly(first);
        first.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        first.Listen(16);
        using var second = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        TcpListenerService.ReuseAddressOnly(second);
        var error = Assert.Throws<SocketException>(() => second.Bind(first.LocalEndPoint!));
        Assert.That(error!.SocketErrorCode, Is.EqualTo(SocketError.AddressAlreadyInUse));
    }

    [Test]
    public void A_port_in_time_wait_can_be_bound_again()
    {
        // SO_REUSEADDR is what lets a restarted server bind its port while its old connections wait out TIME_WAIT.
        int port;
        using (var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
        {
            TcpListenerService.ReuseAddressOnly(listener);
            listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            listener.Listen(16);
            port = ((IPEndPoint)listener.LocalEndPoint!).Port;
            using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            client.Connect(IPAddress.Loopback, port);
            using var accepted = listener.Accept();

            // The server side closes first: its end of the connection goes to TIME_WAIT.
            accepted.Shutdown(SocketShutdown.Both);
            accepted.Close();
            client.Close();
        }

        using var again = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        TcpListenerService.ReuseAddressOnly(again);
        Assert.DoesNotThrow(() => again.Bind(new IPEndPoint(IPAddress.Loopback, port)));
    }
}
