using System.Text;
using Xmpp.Core;
using Xmpp.Core.Sasl;
using Xmpp.Server.Accounts;
using Xmpp.Server.Config;
using Xmpp.Server.Storage;

namespace Xmpp.Tests.EndToEnd;

/// <summary>XEP-0227 export and import: a lossless round trip, and the forms Prosody and ejabberd write.</summary>
public sealed class MigrationTests
{
    private static readonly CancellationToken None = CancellationToken.None;

    [Test]
    public async Task Everything_exported_comes_back_in_another_server()
    {
        var folder = Path.Combine(Path.GetTempPath(), "xmpp-export-" + Guid.NewGuid().ToString("N"));
        try
        {
            await using (var source = await TestServer.StartAsync(null, "alice@localhost:alice-pass", "bob@localhost:bob-pass"))
            {
                await using var alice = await RawXmppClient.ConnectAsync(source.C2sPort);
                await alice.LoginAsync("alice", "alice-pass");
                await alice.IqAsync("<iq type='set' id='r'><query xmlns='jabber:iq:roster'><item jid='bob@localhost' name='Bob'><group>Friends</group></item></query></iq>");
                await alice.SendAsync("<presence to='bob@localhost' type='subscribe'/>");
                await alice.IqAsync("<iq type='set' id='v'><vCard xmlns='vcard-temp'><FN>Alice L</FN></vCard></iq>");
                await alice.IqAsync("<iq type='set' id='p'><query xmlns='jabber:iq:private'><prefs xmlns='urn:example:prefs'><theme>dark</theme></prefs></query></iq>");
                await alice.IqAsync("<iq type='set' id='pep'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='urn:xmpp:microblog:0'><item id='post1'><entry xmlns='http://www.w3.org/2005/Atom'><title>hello</title></entry></item></publish></pubsub></iq>");
                await alice.SendAsync("<presence/>");
                await alice.SendAsync("<message to='bob@localhost' type='chat' id='m1'><body>archived and offline</body></message>");
                await alice.DrainAsync();

                var storage = source.Server.Context.Storage;
                var summary = await new Xep0227Exporter(source.Server.Options, storage).ExportAsync(Path.Combine(folder, "all.xml"), null, perUser: false, None);
                Assert.That((summary.Users, summary.RosterItems, summary.OfflineMessages), Is.EqualTo((2, 1, 1)));
                Assert.That(summary.ArchivedMessages, Is.GreaterThanOrEqualTo(1));
                var ejabberd = await new Xep0227Exporter(source.Server.Options, storage) { ForEjabberd = true }.ExportAsync(Path.Combine(folder, "ejabberd.xml"), null, perUser: false, None);
                Assert.That(ejabberd.Users, Is.EqualTo(2));
                var perUser = await new Xep0227Exporter(source.Server.Options, storage).ExportAsync(Path.Combine(folder, "users"), "localhost", perUser: true, None);
                Assert.That(perUser.Files, Is.EqualTo(2));
                Assert.That(File.Exists(Path.Combine(folder, "users", "alice@localhost.xml")), Is.True, "Prosody's layout");
                if (!OperatingSystem.IsWindows())
                {
                    Assert.That(File.GetUnixFileMode(Path.Combine(folder, "all.xml")), Is.EqualTo(UnixFileMode.UserRead | UnixFileMode.UserWrite), "the export holds credentials");
                }
            }

            foreach (var input in new[] { Path.Combine(folder, "all.xml"), Path.Combine(folder, "users") })
            {
                await using var target = await TestServer.StartAsync(null);
                var imported = await new Xep0227Importer(target.Server.Options, target.Server.Context.Storage).ImportAsync(input, None);
                Assert.That(imported.Problems, Is.Empty);
                Assert.That((imported.Users, imported.RosterItems, imported.VCards, imported.PrivateDocuments, imported.OfflineMessages, imported.PepItems), Is.EqualTo((2, 1, 1, 1, 1, 1)), input);
                Assert.That(imported.Sha1Only, Is.Zero, "every hash travelled");

                // The old passwords work with every mechanism: the keys themselves were moved.
                await using var alice = await RawXmppClient.ConnectAsync(target.C2sPort);
                await alice.LoginAsync("alice", "alice-pass", mechanism: "SCRAM-SHA-512");
                var roster = await alice.IqAsync("<iq type='get' id='r'><query xmlns='jabber:iq:roster'/></iq>");
                Assert.That(roster.ToString(), Does.Contain("jid='bob@localhost'").And.Contain("name='Bob'").And.Contain("ask='subscribe'").And.Contain("<group>Friends</group>"));
                var vcard = await alice.IqAsync("<iq type='get' id='v'><vCard xmlns='vcard-temp'/></iq>");
                Assert.That(vcard.ToString(), Does.Contain("<FN>Alice L</FN>"));
                var prefs = await alice.IqAsync("<iq type='get' id='p'><query xmlns='jabber:iq:private'><prefs xmlns='urn:example:prefs'/></query></iq>");
                Assert.That(prefs.ToString(), Does.Contain("<theme>dark</theme>"));
                var items = await alice.IqAsync("<iq type='get' id='i'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:xmpp:microblog:0'/></pubsub></iq>");
                Assert.That(items.ToString(), Does.Contain("id='post1'").And.Contain("<title>hello</title>"));
                await alice.SendAsync("<iq type='set' id='q'><query xmlns='urn:xmpp:mam:2' queryid='q'/></iq>");
                var archived = await alice.ReadUntilAsync(e => e.Name == "message");
                Assert.That(archived.ToString(), Does.Contain("archived and offline"));

                await using var bob = await RawXmppClient.ConnectAsync(target.C2sPort);
                await bob.LoginAsync("bob", "bob-pass");
                var bobRoster = target.Server.Context.Storage.Roster;
                var pending = await bobRoster.GetItemAsync("localhost", "bob", "alice@localhost", None);
                Assert.That(pending!.PendingIn, Is.True, "alice's subscription request still waits for bob's answer");
                await bob.SendAsync("<presence/>");
                var offline = await bob.ReadUntilAsync(e => e.Name == "message");
                Assert.That(offline.ChildText("body", Ns.Client), Is.EqualTo("archived and offline"));

                // Importing again changes nothing (no second copy of the archive).
                var again = await new Xep0227Importer(target.Server.Options, target.Server.Context.Storage).ImportAsync(input, None);
                Assert.That((again.Users, again.Updated), Is.EqualTo((0, 2)));
                var page = await target.Server.Context.Storage.Archive.QueryAsync("localhost", "alice", new ArchiveQuery(), None);
                Assert.That(page!.Messages, Has.Count.EqualTo(1));
            }
        }
        finally
        {
            if (Directory.Exists(folder))
            {
                Directory.Delete(folder, recursive: true);
            }
        }
    }

    [Test]
    public async Task The_export_for_ejabberd_has_its_encoding_and_reads_back()
    {
        var file = Path.Combine(Path.GetTempPath(), "xmpp-ejabberd-" + Guid.NewGuid().ToString("N") + ".xml");
        try
        {
            await using (var source = await TestServer.StartAsync(null, "carl@localhost:carl-pass"))
            {
                await new Xep0227Exporter(source.Server.Options, source.Server.Context.Storage) { ForEjabberd = true }.ExportAsync(file, null, perUser: false, None);
            }

            var text = await File.ReadAllTextAsync(file);
            Assert.That(text, Does.Contain("mechanism=\"SCRAM-SHA-1\"").And.Not.Contain("SCRAM-SHA-256"));
            var serverKey = System.Text.RegularExpressions.Regex.Match(text, "<server-key>([^<]+)</server-key>").Groups[1].Value;
            Assert.That(Convert.FromBase64String(Encoding.ASCII.GetString(Convert.FromBase64String(serverKey))), Has.Length.EqualTo(20), "base64 of base64, as ejabberd writes it");

            await using var target = await TestServer.StartAsync(null);
            var summary = await new Xep0227Importer(target.Server.Options, target.Server.Context.Storage).ImportAsync(file, None);
            Assert.That((summary.Users, summary.Sha1Only), Is.EqualTo((1, 1)));
            await using var c = await RawXmppClient.ConnectAsync(target.C2sPort);
            await c.LoginAsync("carl", "carl-pass", mechanism: "SCRAM-SHA-1");
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Test]
    public async Task What_Prosody_and_ejabberd_write_is_read()
    {
        var folder = Path.Combine(Path.GetTempPath(), "xmpp-import-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        try
        {
            // Prosody 0.12 (prosody-migrator to xep0227): one file per user, SCRAM-SHA-1 keys, the salt an ASCII UUID,
            // pending requests as presence, PEP items with Prosody's stored <item> inside.
            var sha1 = ScramCredential.Create(ScramHash.Sha1, "anna-pass", 10000, Encoding.ASCII.GetBytes("1a5f1a98-5d67-40b5-b05c-611d359a51b2"));
            await File.WriteAllTextAsync(Path.Combine(folder, "anna@localhost.xml"), $"""
                <server-data xmlns='urn:xmpp:pie:0'><host jid='localhost'><user name='anna'>
                <scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='SCRAM-SHA-1'><server-key>{Convert.ToBase64String(sha1.ServerKey)}</server-key><stored-key>{Convert.ToBase64String(sha1.StoredKey)}</stored-key><iter-count>10000</iter-count><salt>{Convert.ToBase64String(sha1.Salt)}</salt></scram-credentials>
                <query xmlns='jabber:iq:roster' version='2'><item ask='subscribe' name='Ben B' subscription='none' jid='ben@localhost'><group>Friends</group></item></query>
                <presence xmlns='jabber:client' type='subscribe' from='carl@localhost'/>
                <vCard xmlns='vcard-temp'><FN>Anna Export</FN></vCard>
                <pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:xmpp:avatar:metadata'><item id='abc'><item xmlns='http://jabber.org/protocol/pubsub' id='abc'><metadata xmlns='urn:xmpp:avatar:metadata'/></item></item></items></pubsub>
                </user></host></server-data>
                """);

            // ejabberd 23 (export_piefxis): a main file XIncluding one file per host, keys and salt base64-encoded twice.
            var carl = ScramCredential.Create(ScramHash.Sha1, "carl-pass", 4096);
            static string Twice(byte[] b) => Convert.ToBase64String(Encoding.ASCII.GetBytes(Convert.ToBase64String(b)));
            await File.WriteAllTextAsync(Path.Combine(folder, "20261201-170104.xml"), "<?xml version='1.0' encoding='UTF-8'?><server-data xmlns='urn:xmpp:pie:0' xmlns:xi='http://www.w3.org/2001/XInclude'><xi:include href='20261201-170104_localhost.xml'/></server-data>");
            await File.WriteAllTextAsync(Path.Combine(folder, "20261201-170104_localhost.xml"), $"""
                <?xml version='1.0' encoding='UTF-8'?><host xmlns='urn:xmpp:pie:0' xmlns:xi='http://www.w3.org/2001/XInclude' jid='localhost'><user name='carl'>
                <scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='SCRAM-SHA-1'><iter-count>4096</iter-count><salt>{Twice(carl.Salt)}</salt><server-key>{Twice(carl.ServerKey)}</server-key><stored-key>{Twice(carl.StoredKey)}</stored-key></scram-credentials>
                <vCard xmlns='vcard-temp'><FN>Carl Export</FN></vCard><query xmlns='jabber:iq:roster'><item subscription='both' name='Dina D' jid='dina@localhost'><group>Friends</group></item></query>
                </user></host>
                """);

            await using var server = await TestServer.StartAsync(null);
            var summary = await new Xep0227Importer(server.Server.Options, server.Server.Context.Storage).ImportAsync(folder, None);
            Assert.That(summary.Problems, Is.Empty);
            Assert.That((summary.Users, summary.RosterItems, summary.VCards, summary.PepItems, summary.Sha1Only), Is.EqualTo((2, 2, 2, 1, 2)), "the included host file is read once, through the main file");

            foreach (var (user, password, contact) in new[] { ("anna", "anna-pass", "ben@localhost"), ("carl", "carl-pass", "dina@localhost") })
            {
                await using var c = await RawXmppClient.ConnectAsync(server.C2sPort);
                await c.LoginAsync(user, password, mechanism: "SCRAM-SHA-1");
                var roster = await c.IqAsync("<iq type='get' id='r'><query xmlns='jabber:iq:roster'/></iq>");
                Assert.That(roster.ToString(), Does.Contain($"jid='{contact}'"));
            }

            Assert.That((await server.Server.Context.Storage.Roster.GetItemAsync("localhost", "anna", "carl@localhost", None))!.PendingIn, Is.True);
            var avatar = await server.Server.Context.Storage.PubSub.GetItemsAsync("localhost", "anna", "urn:xmpp:avatar:metadata", null, null, None);
            Assert.That(avatar.Single().Xml, Does.StartWith("<metadata xmlns=\"urn:xmpp:avatar:metadata\""));

            // SHA-1 keys only: SCRAM-SHA-256 cannot work until a PLAIN login stores the stronger keys.
            await using (var c = await RawXmppClient.ConnectAsync(server.C2sPort))
            {
                await c.OpenAsync();
                await c.StartTlsAsync();
                await c.OpenAsync();
                Assert.That((await c.AuthenticateAsync("SCRAM-SHA-256", "carl", "carl-pass")).Name, Is.EqualTo("failure"));
            }

            await using (var c = await RawXmppClient.ConnectAsync(server.C2sPort))
            {
                await c.LoginAsync("carl", "carl-pass", mechanism: "PLAIN");
            }

            await using (var c = await RawXmppClient.ConnectAsync(server.C2sPort))
            {
                await c.LoginAsync("carl", "carl-pass", mechanism: "SCRAM-SHA-256");
            }
        }
        finally
        {
            if (Directory.Exists(folder))
            {
                Directory.Delete(folder, recursive: true);
            }
        }
    }

    [Test]
    public async Task Includes_outside_the_folder_are_refused()
    {
        var folder = Path.Combine(Path.GetTempPath(), "xmpp-import-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        try
        {
            var main = Path.Combine(folder, "main.xml");
            await File.WriteAllTextAsync(main, "<server-data xmlns='urn:xmpp:pie:0' xmlns:xi='http://www.w3.org/2001/XInclude'><xi:include href='../../etc/passwd'/></server-data>");
            await using var server = await TestServer.StartAsync(null);
            var ex = Assert.ThrowsAsync<FormatException>(() => new Xep0227Importer(server.Server.Options, server.Server.Context.Storage).ImportAsync(main, None));
            Assert.That(ex!.Message, Does.Contain("only files in the same folder"));
        }
        finally
        {
            if (Directory.Exists(folder))
            {
                Directory.Delete(folder, recursive: true);
            }
        }
    }

    [Test]
    public void Offered_scram_hashes_are_configurable()
    {
        var o = ConfigLoader.Parse("<xmppserver><host name='localhost'/><authentication scram='SHA-1'/></xmppserver>", "/x/server.config.xml");
        Assert.That(o.Auth.Scram, Is.EqualTo(new[] { ScramHash.Sha1 }));
        Assert.That(ConfigLoader.Parse("<xmppserver><host name='localhost'/><authentication scram=''/></xmppserver>", "/x/c.xml").Auth.Scram, Is.Empty);
        Assert.Throws<ConfigException>(() => ConfigLoader.Parse("<xmppserver><host name='localhost'/><authentication scram='MD5'/></xmppserver>", "/x/c.xml"));
        Assert.Throws<ConfigException>(() => ConfigLoader.Parse("<xmppserver><host name='localhost'/><authentication scram='' allow-plain='false'/></xmppserver>", "/x/c.xml"));
    }
}
