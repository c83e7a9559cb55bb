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

    /// <summary>
    /// <paramref name="count"/> different ports, free on 127.0.0.1 at the moment of asking: each is held until all are
    /// chosen (asked one at a time, the system may hand the same port out twice: a node's client port once collided
    /// with its silo port).
    /// </summary>
    public static int[] Free(int count)
    {
        var held = new List<TcpListener>();
        try
        {
            for (var i = 0; i < count; i++)
            {
                var socket = new TcpListener(IPAddress.Loopback, 0);
                held.Add(socket);
                socket.Start();
            }

            return [.. held.Select(s => ((IPEndPoint)s.LocalEndpoint).Port)];
        }
        finally
        {
            foreach (var socket in held)
            {
                socket.Dispose();
            }
        }
    }
}
