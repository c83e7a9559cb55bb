using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Xmpp.Server.Tls;

namespace Xmpp.Tests.Server;

/// <summary>
/// The OpenSSL handle behind SslStream is found by reflection on runtime internals: these tests fail when a
/// new .NET moves them, instead of idle sessions silently keeping their record buffers again.
/// </summary>
public sealed class OpenSslTests
{
    private static async Task<(SslStream Server, SslStream Client, IDisposable Owner)> ConnectedPairAsync()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256);
        using var generated = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        var certificate = X509CertificateLoader.LoadPkcs12(generated.Export(X509ContentType.Pfx), null);
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, ((IPEndPoint)listener.LocalEndpoint).Port);
        var accepted = await listener.AcceptSocketAsync();
        listener.Stop();
        var server = new SslStream(new NetworkStream(accepted, ownsSocket: true));
#pragma warning disable CA5359 // A test against our own throwaway certificate.
        var clientSsl = new SslStream(client.GetStream(), leaveInnerStreamOpen: false, (_, _, _, _) => true);
#pragma warning restore CA5359
        await Task.WhenAll(
            server.AuthenticateAsServerAsync(new SslServerAuthenticationOptions { ServerCertificate = certificate }),
            clientSsl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = "localhost" })).WaitAsync(TimeSpan.FromSeconds(10));
        return (server, clientSsl, certificate);
    }

    [Test]
    public async Task Idle_record_buffers_are_released_on_linux()
    {
        Assume.That(OperatingSystem.IsLinux(), "OpenSSL is the TLS provider on Linux only");
        var (server, client, owner) = await ConnectedPairAsync();
        using (owner)
        await using (server)
        await using (client)
        {
            Assert.That(OpenSsl.ReleaseBuffersWhenIdle(server), Is.True);

            // The stream still works with the mode set.
            await client.WriteAsync("ping"u8.ToArray());
            var buffer = new byte[16];
            var n = await server.ReadAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(5));
            Assert.That(buffer[..n], Is.EqualTo("ping"u8.ToArray()));
        }
    }

    [Test]
    public async Task Tls_exporter_channel_binding_is_available_on_tls13()
    {
        Assume.That(OperatingSystem.IsLinux(), "OpenSSL is the TLS provider on Linux only");
        var (server, client, owner) = await ConnectedPairAsync();
        using (owner)
        await using (server)
        await using (client)
        {
            Assume.That(server.SslProtocol, Is.EqualTo(System.Security.Authentication.SslProtocols.Tls13));
            Assert.That(TlsExporter.ChannelBinding(server), Has.Length.EqualTo(32));
        }
    }
}
