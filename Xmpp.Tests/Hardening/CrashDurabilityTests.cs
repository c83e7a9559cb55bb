using System.Collections.Concurrent;
using System.Net.Sockets;
using Xmpp.Core;
using Xmpp.Server.Accounts;
using Xmpp.Server.Config;
using Xmpp.Server.Hosting;
using Xmpp.Tests.EndToEnd;

namespace Xmpp.Tests.Hardening;

/// <summary>
/// kill -9 during a message flood: the real server runs as its own process; two senders flood an offline
/// recipient while the process is killed at some moment; after a restart (with no repair step) the
/// recipient must receive every message the server acknowledged exactly once, and nothing twice. (What the
/// server bounced back to the sender instead, it did not accept; none is expected with this offline limit.)
/// <para>
/// Acknowledged means: the server answered an iq ping the sender sent after the message on the same
/// stream. The server handles a stream's stanzas strictly in order and finishes each (the offline store
/// commits with synchronous=FULL in WAL mode) before it reads the next (RFC 6120 §10.1), so a ping's answer
/// acknowledges everything before it, as an XEP-0198 &lt;a h='...'/&gt; would.
/// </para>
/// </summary>
[TestFixture]
[CancelAfter(300_000)]
public sealed class CrashDurabilityTests
{
    [TestCase(0)]
    [TestCase(100)]
    [TestCase(400)]
    [TestCase(1200)]
    public async Task Every_acknowledged_message_survives_kill_9_exactly_once(int killAfterMs)
    {
        var dir = Path.Combine(Path.GetTempPath(), "xmpp-crash-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        var port = Ports.Free();
        var config = Path.Combine(dir, "server.config.xml");
        await File.WriteAllTextAsync(config, $"""
            <xmppserver>
              <host name="localhost"/>
              <listen type="c2s" address="127.0.0.1" port="{port}"/>
              <data-dir path="data"/>
              <limits stanza-rate="0"/>
              <modules><offline max-per-user="100000"/></modules>
              <logging level="Info" format="text"/>
            </xmppserver>
            """);
        var options = new ServerOptions { DataDirectory = Path.Combine(dir, "data"), Storage = new StorageOptions { File = Path.Combine(dir, "data", "xmpp.db") } };
        await using (var storage = XmppServer.CreateStorage(options))
        {
            await storage.MigrateAsync(CancellationToken.None);
            var accounts = new AccountService(options, storage);
            foreach (var u in new[] { "alice", "carol", "bob" })
            {
                Assert.That(await accounts.AddAsync(u + "@localhost", "pw-" + u, CancellationToken.None), Is.EqualTo(AccountResult.Ok));
            }
        }

        var sent = new ConcurrentDictionary<string, bool>();
        var acked = new ConcurrentDictionary<string, bool>();
        var bounced = new ConcurrentDictionary<string, bool>();
        try
        {
            using (var first = await ServerProcess.StartAsync(config, port, Path.Combine(dir, "first.log")))
            {
                using var stop = new CancellationTokenSource();
                var flooding = new[] { new TaskCompletionSource(), new TaskCompletionSource() };
                var senders = new[] { "alice", "carol" }.Select((u, i) => FloodAsync(port, u, sent, acked, bounced, flooding[i], stop.Token)).ToArray();
                await Task.WhenAll(flooding.Select(f => f.Task)).WaitAsync(TimeSpan.FromSeconds(60));
                await Task.Delay(killAfterMs);
                first.Kill9();
                await stop.CancelAsync();
                await Task.WhenAll(senders);
            }

            TestContext.Out.WriteLine($"killed after {killAfterMs} ms: {sent.Count} sent, {acked.Count} acknowledged, {bounced.Count} bounced");

            using var second = await ServerProcess.StartAsync(config, port, Path.Combine(dir, "second.log"));
            var bob = await RawXmppClient.ConnectAsync(port);
            await using (bob)
            {
                await bob.LoginAsync("bob", "pw-bob");
                await bob.SendAsync("<presence/>");
                var delivered = (await bob.DrainAsync())
                    .Where(e => e.Name == "message")
                    .Select(e => e.ChildText("body", Ns.Client) ?? string.Empty)
                    .ToList();
                TestContext.Out.WriteLine($"after restart: {delivered.Count} delivered");
                Assert.That(delivered, Is.Unique, "no message delivered twice");
                Assert.That(delivered, Is.SubsetOf(sent.Keys), "only messages that were sent");
                Assert.That(delivered.Intersect(bounced.Keys), Is.Empty, "nothing both bounced and delivered");
                var missing = acked.Keys.Except(bounced.Keys).Except(delivered).ToList();
                Assert.That(missing, Is.Empty, $"acknowledged but lost ({missing.Count} of {acked.Count})");

                // Delivered messages were removed from storage: a second login gets nothing again.
                await bob.CloseAsync();
            }

            var again = await RawXmppClient.ConnectAsync(port);
            await using (again)
            {
                await again.LoginAsync("bob", "pw-bob", resource: "second");
                await again.SendAsync("<presence/>");
                Assert.That((await again.DrainAsync()).Where(e => e.Name == "message"), Is.Empty);
            }

            Assert.That(await File.ReadAllTextAsync(Path.Combine(dir, "second.log")), Does.Not.Contain("|ERROR|").And.Not.Contain(" ERROR "));
        }
        finally
        {
            try
            {
                Directory.Delete(dir, recursive: true);
            }
            catch (IOException)
            {
                // Best effort.
            }
        }
    }

    /// <summary>Batches of 50 messages to the offline bob, each batch followed by a ping; a ping's answer acknowledges its batch.</summary>
    private static async Task FloodAsync(
        int port, string user, ConcurrentDictionary<string, bool> sent, ConcurrentDictionary<string, bool> acked, ConcurrentDictionary<string, bool> bounced,
        TaskCompletionSource flooding, CancellationToken stop)
    {
        var client = await RawXmppClient.ConnectAsync(port);
        await using (client)
        {
            await client.LoginAsync(user, "pw-" + user);
            var n = 0;
            for (var batch = 0; !stop.IsCancellationRequested; batch++)
            {
                var bodies = Enumerable.Range(0, 50).Select(_ => $"{user}-{n++}").ToList();
                var xml = string.Concat(bodies.Select(b => $"<message to='bob@localhost' type='chat' id='{b}'><body>{b}</body></message>")) +
                    $"<iq type='get' id='ack{batch}' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>";
                foreach (var b in bodies)
                {
                    sent[b] = true;
                }

                try
                {
                    await client.SendAsync(xml);
                }
                catch (Exception ex) when (ex is IOException or SocketException or TimeoutException or ObjectDisposedException)
                {
                    return;
                }

                while (true)
                {
                    var e = await client.ReadOrEndAsync();
                    if (e is null)
                    {
                        return;
                    }

                    if (e.Name == "message" && e.GetAttribute("type") == "error" && e.GetAttribute("id") is { } id)
                    {
                        bounced[id] = true;
                    }

                    if (e.Name == "iq" && e.GetAttribute("id") == "ack" + batch)
                    {
                        foreach (var b in bodies)
                        {
                            acked[b] = true;
                        }

                        // The kill timer starts once both senders' first batch is in (the process is warm).
                        flooding.TrySetResult();
                        break;
                    }
                }
            }
        }
    }
}
