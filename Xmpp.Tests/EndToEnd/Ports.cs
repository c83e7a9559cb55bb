using System.Net;
using System.Net.Sockets;

namespace Xmpp.Tests.EndToEnd;

/// <summary>Loopback ports for servers that must be told theirs before they start (child processes, the metrics endpoint).</summary>
internal static class Ports
{
    /// <summary>A port free on 127.0.0.1 at the moment of asking.</summary>
    public static int Free()
    {
        using var socket = new TcpListener(IPAddress.Loopback, 0);
        socket.Start();
        return ((IPEndPoint)socket.LocalEndpoint).Port;
    }
}
