using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Runtime.ExceptionServices;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Xmpp.Core;
using Xmpp.Core.Xml;
using Xmpp.Server.Net;
using Xmpp.Server.Streams;
using Xmpp.Server.Streams.Transports;

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
    public async Task A_write_to_a_peer_that_reset_is_discarded_and_its_failure_kept()
    {
        var (client, accepted) = await PairAsync();
        await using var stream = new ActivityStream(new NetworkStream(accepted, ownsSocket: true));
        client.LingerState = new LingerOption(true, 0);
        client.Dispose(); // a reset, as a phone that lost its network shows when it comes back

        // The reset has arrived when the socket turns readable (at most 5 s); the next write is discarded and
        // its failure kept for the writer to see, as is every write after it.
        Assert.That(accepted.Poll(5_000_000, SelectMode.SelectRead), Is.True, "the reset never arrived");
        Assert.That(stream.WriteFailure, Is.Null);
        var write = stream.WriteAsync("<presence/>"u8.ToArray());
        Assert.That(write.IsCompletedSuccessfully, Is.True, "the write waited or failed instead of being discarded");
        var failure = stream.WriteFailure;
        Assert.That(failure, Is.Not.Null, "the write to the reset peer did not record its failure");
        Assert.That(failure!.InnerException, Is.InstanceOf<SocketException>());
        Assert.That(failure.Message, Does.StartWith("Unable to write data to the transport connection"));
        await stream.WriteAsync("<message/>"u8.ToArray());
        Assert.That(stream.WriteFailure, Is.SameAs(failure), "the first failure stays");
    }

    /// <summary>
    /// A client that resets right after its closing tag: the writer's last batch goes through TLS to a socket
    /// that fails. The writer reports it and keeps the stanza for bouncing, with no exception thrown on the
    /// way (SslStream and every await above it used to throw it again: four per such logout).
    /// </summary>
    [Test]
    public async Task A_batch_through_tls_to_a_reset_peer_fails_without_an_exception_thrown_and_keeps_its_stanza()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256);
        using var generated = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        using var certificate = X509CertificateLoader.LoadPkcs12(generated.Export(X509ContentType.Pfx), null);
        var (client, accepted) = await PairAsync();
        await using var transport = ByteStreamTransport.ForSocket(accepted, new XmlReaderLimits(), Ns.Client);
#pragma warning disable CA5359 // A test against our own throwaway certificate.
        await using (var clientTls = new SslStream(new NetworkStream(client, ownsSocket: false), leaveInnerStreamOpen: true, (_, _, _, _) => true))
#pragma warning restore CA5359
        {
            await Task.WhenAll(
                transport.StartTlsAsServerAsync((_, _, _, _) => ValueTask.FromResult(new SslServerAuthenticationOptions { ServerCertificate = certificate }), CancellationToken.None).AsTask(),
                clientTls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = "localhost" })).WaitAsync(TimeSpan.FromSeconds(10));
        }

        client.LingerState = new LingerOption(true, 0);
        client.Dispose();
        Assert.That(accepted.Poll(5_000_000, SelectMode.SelectRead), Is.True, "the reset never arrived");

        var output = new StreamOutput();
        Assert.That(output.TryEnqueue(new Element("message", Ns.Client).SetAttribute("id", "m1"), 100), Is.EqualTo(Enqueued.Queued));
        output.Close(null, null);
        var thrown = new System.Collections.Concurrent.ConcurrentQueue<Exception>();
        var ours = new AsyncLocal<bool> { Value = true };
        void Count(object? sender, FirstChanceExceptionEventArgs e)
        {
            if (ours.Value)
            {
                thrown.Enqueue(e.Exception);
            }
        }

        string? error = null;
        AppDomain.CurrentDomain.FirstChanceException += Count;
        try
        {
            await output.RunAsync(transport, e => error = e, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));
        }
        finally
        {
            AppDomain.CurrentDomain.FirstChanceException -= Count;
        }

        Assert.That(error, Does.StartWith("Unable to write data to the transport connection"));
        Assert.That(thrown, Is.Empty, "exceptions thrown: " + string.Join("; ", thrown.Select(e => e.GetType().Name + ": " + e.Message)));
        Assert.That(output.Drain().Select(e => e.GetAttribute("id")), Is.EqualTo(new[] { "m1" }), "the stanza is kept for bouncing");
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
