using System.Net;
using System.Net.Sockets;
using Xmpp.Server.Net;

namespace Xmpp.Tests.Server;

/// <summary>The connection's socket stream: writes straight to the socket, waiting only when it is full, and cheap failures.</summary>
[TestFixture]
[CancelAfter(20_000)]
public sealed class ActivityStreamTests
{
    private static async Task<(Socket Client, Socket Accepted)> PairAsync()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(listener.LocalEndPoint!).ConfigureAwait(false);
        var accepted = await listener.AcceptAsync().ConfigureAwait(false);
        return (client, accepted);
    }

    [Test]
    public async Task A_write_larger_than_the_socket_takes_completes_as_the_peer_reads()
    {
        var (client, accepted) = await PairAsync();
        using var _ = client;
        await using var stream = new ActivityStream(new NetworkStream(accepted, ownsSocket: true));
        // More than loopback's socket buffers hold (a few MB), so that the socket takes only a part at once.
        var data = new byte[32 * 1024 * 1024];
        Random.Shared.NextBytes(data);

        // The socket takes a part at once and the rest only as the peer reads: the write must wait, not fail.
        var write = stream.WriteAsync(data).AsTask();
        var received = new MemoryStream();
        var buffer = new byte[65536];
        while (received.Length < data.Length)
        {
            var n = await client.ReceiveAsync(buffer, SocketFlags.None);
            Assert.That(n, Is.GreaterThan(0), "the stream ended early");
            received.Write(buffer, 0, n);
        }

        await write;
        Assert.That(received.ToArray(), Is.EqualTo(data));
    }

    [Test]
    public async Task A_write_to_a_peer_that_reset_fails_with_an_io_exception()
    {
        var (client, accepted) = await PairAsync();
        await using var stream = new ActivityStream(new NetworkStream(accepted, ownsSocket: true));
        client.LingerState = new LingerOption(true, 0);
        client.Dispose(); // a reset, as a phone that lost its network shows when it comes back

        // The reset has arrived when the socket turns readable (at most 5 s); the next write must fail.
        Assert.That(accepted.Poll(5_000_000, SelectMode.SelectRead), Is.True, "the reset never arrived");
        var failure = Assert.ThrowsAsync<IOException>(async () => await stream.WriteAsync("<presence/>"u8.ToArray()));
        Assert.That(failure, Is.Not.Null, "the write to the reset peer succeeded");
        Assert.That(failure!.InnerException, Is.InstanceOf<SocketException>());
        Assert.That(failure.Message, Does.StartWith("Unable to write data to the transport connection"));
    }

    [Test]
    public async Task Reads_still_come_through_the_stream()
    {
        var (client, accepted) = await PairAsync();
        using var _ = client;
        await using var stream = new ActivityStream(new NetworkStream(accepted, ownsSocket: true));
        await client.SendAsync("<message/>"u8.ToArray(), SocketFlags.None);
        var buffer = new byte[64];
        var n = await stream.ReadAsync(buffer);
        Assert.That(System.Text.Encoding.UTF8.GetString(buffer, 0, n), Is.EqualTo("<message/>"));
    }
}
