using System.Text;
using Xmpp.Core;
using Xmpp.Server.Accounts;

namespace Xmpp.Tests.EndToEnd;

public sealed class ImportTests
{
    [Test]
    public async Task Xep0227_accounts_and_rosters_import_and_users_log_in_with_their_passwords()
    {
        await using var server = await TestServer.StartAsync(null, "alice@localhost:old-password");
        const string File = """
            <?xml version='1.0' encoding='UTF-8'?>
            <server-data xmlns='urn:xmpp:pie:0'>
              <host jid='localhost'>
                <user name='alice' password='new-password'>
                  <query xmlns='jabber:iq:roster'>
                    <item jid='bob@localhost' name='Bob' subscription='both'><group>Friends</group></item>
                    <item jid='carol@example.net' subscription='to'/>
                  </query>
                </user>
                <user name='bob' password='bob-pass'>
                  <query xmlns='jabber:iq:roster'><item jid='alice@localhost' subscription='both'/></query>
                  <offline-messages>
                    <message xmlns='jabber:client' from='alice@localhost/x' to='bob@localhost' type='chat'><body>kept</body></message>
                  </offline-messages>
                </user>
                <user name='nopass'/>
              </host>
              <host jid='elsewhere.example'><user name='zed' password='z'/></host>
            </server-data>
            """;
        var summary = await new Xep0227Importer(server.Server.Options, server.Server.Context.Storage)
            .ImportAsync(new MemoryStream(Encoding.UTF8.GetBytes(File)), CancellationToken.None);
        Assert.That((summary.Users, summary.Updated, summary.RosterItems, summary.OfflineMessages), Is.EqualTo((1, 1, 3, 1)));
        Assert.That(summary.Problems, Has.Count.EqualTo(2), "no password; host not served");

        await using var alice = await RawXmppClient.ConnectAsync(server.C2sPort);
        await alice.LoginAsync("alice", "new-password");
        var roster = await alice.IqAsync("<iq type='get' id='r'><query xmlns='jabber:iq:roster'/></iq>");
        var items = roster.Child("query", Ns.Roster)!.Elements().ToList();
        Assert.That(items.Select(i => (i.GetAttribute("jid"), i.GetAttribute("subscription"))), Is.EquivalentTo(new[] { ("bob@localhost", "both"), ("carol@example.net", "to") }));
        Assert.That(items.First(i => i.GetAttribute("jid") == "bob@localhost").ChildText("group", Ns.Roster), Is.EqualTo("Friends"));

        await using var bob = await RawXmppClient.ConnectAsync(server.C2sPort);
        await bob.LoginAsync("bob", "bob-pass");
        await bob.SendAsync("<presence/>");
        var message = await bob.ReadUntilAsync(e => e.Name == "message");
        Assert.That(message.ChildText("body", Ns.Client), Is.EqualTo("kept"));
    }
}
