using System.Net;
using System.Net.Sockets;
using Xmpp.Server.Hosting;
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

        IOException? failure = null;
        for (var i = 0; i < 100 && failure is null; i++)
        {
            try
            {
                await stream.WriteAsync("<presence/>"u8.ToArray());
                await Task.Delay(10);
            }
            catch (IOException ex)
            {
                failure = ex;
            }
        }

        Assert.That(failure, Is.Not.Null, "every write to the reset peer succeeded");
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

    [Test]
    public void Thread_pool_spinning_is_off_on_one_processor_only_and_never_against_an_explicit_setting()
    {
        static string? None(string _) => null;
        Assert.That(RuntimeTuning.SpinsNotNeeded(1, null, None), Is.True);
        Assert.That(RuntimeTuning.SpinsNotNeeded(2, null, None), Is.False);
        Assert.That(RuntimeTuning.SpinsNotNeeded(1, 30, None), Is.False, "runtimeconfig.json says");
        Assert.That(RuntimeTuning.SpinsNotNeeded(1, null, n => n == "DOTNET_ThreadPool_UnfairSemaphoreSpinLimit" ? "50" : null), Is.False, "the environment says");
    }
}
