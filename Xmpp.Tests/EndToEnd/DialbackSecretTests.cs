using Xmpp.Server.Config;

namespace Xmpp.Tests.EndToEnd;

/// <summary>
/// The dialback secret (XEP-0185) is drawn once and kept in the database: a key the server issued before a restart
/// still verifies after it (a remote server's db:verify may arrive late), and a stored secret that was damaged by
/// hand stops the start with a clear message instead of being replaced silently.
/// </summary>
public sealed class DialbackSecretTests
{
    [Test]
    public async Task A_key_issued_before_a_restart_verifies_after_it()
    {
        var dataDir = Path.Combine(Path.GetTempPath(), "xmpp-dialback-" + Guid.NewGuid().ToString("N"));
        ServerOptions Options(ServerOptions o) => o with { DataDirectory = dataDir, Storage = new StorageOptions { File = Path.Combine(dataDir, "xmpp.db") } };
        try
        {
            string key;
            await using (var server = await TestServer.StartAsync(Options))
            {
                key = server.Server.Context.S2s.Dialback.Key("remote.example", "localhost", "stream-1");
            }

            await using (var again = await TestServer.StartAsync(Options))
            {
                var dialback = again.Server.Context.S2s.Dialback;
                Assert.Multiple(() =>
                {
                    Assert.That(dialback.Verify("remote.example", "localhost", "stream-1", key), Is.True, "the same secret after the restart");
                    Assert.That(dialback.Verify("remote.example", "localhost", "stream-2", key), Is.False);
                });
                await again.Server.Context.Storage.Documents.SetHostAsync(string.Empty, "dialback-secret", string.Empty, "not hex", CancellationToken.None);
            }

            var ex = Assert.ThrowsAsync<ConfigException>(async () => await (await TestServer.StartAsync(Options)).DisposeAsync());
            Assert.That(ex!.Message, Does.Contain("dialback secret"));
        }
        finally
        {
            if (Directory.Exists(dataDir))
            {
                Directory.Delete(dataDir, recursive: true);
            }
        }
    }
}
