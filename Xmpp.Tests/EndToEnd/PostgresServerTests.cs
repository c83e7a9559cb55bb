using Xmpp.Server.Config;

namespace Xmpp.Tests.EndToEnd;

/// <summary>The whole server on PostgreSQL (a throwaway cluster the tests start, see SharedPostgres).</summary>
public sealed class PostgresServerTests
{
    [Test]
    public async Task The_server_runs_on_postgresql_and_keeps_everything_across_a_restart()
    {
        var database = await SharedPostgres.NewDatabaseAsync();
        Func<ServerOptions, ServerOptions> onPostgres = o => o with { Storage = new StorageOptions { Provider = "postgresql", ConnectionString = database } };

        await using (var server = await TestServer.StartAsync(onPostgres, "alice@localhost:alice-pass", "bob@localhost:bob-pass"))
        {
            Assert.That(server.Server.Context.Storage.Describe(), Does.StartWith("postgresql 127.0.0.1:"));
            await using var alice = await RawXmppClient.ConnectAsync(server.C2sPort);
            await alice.LoginAsync("alice", "alice-pass");
            await alice.IqAsync("<iq type='set' id='r1'><query xmlns='jabber:iq:roster'><item jid='bob@localhost' name='Bob'/></query></iq>");
            await alice.SendAsync("<presence/>");
            await alice.SendAsync("<message to='bob@localhost' type='chat' id='m1'><body>while you were away</body></message>");
            await alice.IqAsync("<iq type='set' id='v1'><vCard xmlns='vcard-temp'><FN>Alice</FN></vCard></iq>");
            await alice.DrainAsync();
        }

        // A new server process on the same database: accounts, roster, offline message, vCard and archive are there.
        await using (var server = await TestServer.StartAsync(onPostgres))
        {
            await using var bob = await RawXmppClient.ConnectAsync(server.C2sPort);
            await bob.LoginAsync("bob", "bob-pass");
            await bob.SendAsync("<presence/>");
            var offline = await bob.ReadUntilAsync(e => e.Name == "message");
            Assert.That(offline.ChildText("body", "jabber:client"), Is.EqualTo("while you were away"));

            await using var alice = await RawXmppClient.ConnectAsync(server.C2sPort);
            await alice.LoginAsync("alice", "alice-pass");
            var roster = await alice.IqAsync("<iq type='get' id='r2'><query xmlns='jabber:iq:roster'/></iq>");
            Assert.That(roster.ToString(), Does.Contain("jid='bob@localhost'").And.Contain("name='Bob'"));
            var vcard = await alice.IqAsync("<iq type='get' id='v2'><vCard xmlns='vcard-temp'/></iq>");
            Assert.That(vcard.ToString(), Does.Contain("<FN>Alice</FN>"));
            await alice.SendAsync("<iq type='set' id='q1'><query xmlns='urn:xmpp:mam:2' queryid='q'/></iq>");
            var archived = await alice.ReadUntilAsync(e => e.Name == "message");
            Assert.That(archived.ToString(), Does.Contain("while you were away"));
        }
    }

    [Test]
    public void The_configuration_selects_postgresql()
    {
        var options = ConfigLoader.Parse("<xmppserver><host name='localhost'/><storage type='postgresql' connection='Host=db.internal;Database=xmpp;Username=xmpp;Password=secret'/></xmppserver>", "/x/server.config.xml");
        Assert.That(options.Storage.Provider, Is.EqualTo("postgresql"));
        Assert.That(options.Storage.ConnectionString, Does.Contain("Host=db.internal"));
        Assert.That(new Xmpp.Server.Storage.Postgres.PostgresStorage(options.Storage.ConnectionString!).Describe(), Does.Not.Contain("secret"));
        var noConnection = Assert.Throws<ConfigException>(() => ConfigLoader.Parse("<xmppserver><host name='localhost'/><storage type='postgresql'/></xmppserver>", "/x/server.config.xml"));
        Assert.That(noConnection!.Message, Does.Contain("'connection' is required"));
        var mixed = Assert.Throws<ConfigException>(() => ConfigLoader.Parse("<xmppserver><host name='localhost'/><storage type='postgresql' connection='Host=x' file='x.db'/></xmppserver>", "/x/server.config.xml"));
        Assert.That(mixed!.Message, Does.Contain("'file' is for type=\"sqlite\""));
    }
}
