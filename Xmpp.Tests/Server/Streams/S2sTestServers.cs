using Xmpp.Server.Config;
using Xmpp.Server.Hosting;
using Xmpp.Tests.EndToEnd;

namespace Xmpp.Tests.Server.Streams;

/// <summary>
/// What the server-to-server and component table tests drive their machines in: two servers federating on
/// loopback, a.test and b.test, with certificates from a test CA that both trust (so that our own certificate
/// qualifies for SASL EXTERNAL) and dialback allowed; a.test also serves the component echo.a.test. The
/// machines under test run over <see cref="S2sTestTransport"/>; only a dialback verification goes over TCP to
/// the authoritative server.
/// </summary>
internal sealed class S2sTestServers : IAsyncDisposable
{
    public const string ComponentDomain = "echo.a.test";
    public const string ComponentSecret = "the component's secret";

    private readonly string _dir;

    private S2sTestServers(TestServer a, TestServer b, string dir)
    {
        A = a;
        B = b;
        _dir = dir;
    }

    public TestServer A { get; }

    public TestServer B { get; }

    public ServerContext ContextA => A.Server.Context;

    public ServerContext ContextB => B.Server.Context;

    public static async Task<S2sTestServers> StartAsync()
    {
        var ca = new Server.TestCa();
        var dir = Path.Combine(Path.GetTempPath(), "xmpp-s2s-table-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "ca.pem"), ca.CertificatePem);
        foreach (var d in new[] { "a.test", "b.test" })
        {
            var (cert, key) = ca.Issue(d, dnsNames: [d]);
            File.WriteAllText(Path.Combine(dir, d + ".crt"), cert);
            File.WriteAllText(Path.Combine(dir, d + ".key"), key);
        }

        var (a, b) = await FederationTests.StartPairAsync((domain, o) => o with
        {
            Hosts = [new HostOptions(domain, Path.Combine(dir, domain + ".crt"), Path.Combine(dir, domain + ".key"))],
            S2s = o.S2s with { CaFile = Path.Combine(dir, "ca.pem") },
            Listeners = domain == "a.test" ? [.. o.Listeners, new ListenerOptions(ListenerKind.Component, "127.0.0.1", 0)] : o.Listeners,
            Components = domain == "a.test" ? [new ComponentOptions(ComponentDomain, ComponentSecret)] : o.Components,
        });
        return new S2sTestServers(a, b, dir);
    }

    public async ValueTask DisposeAsync()
    {
        await A.DisposeAsync();
        await B.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }
}
