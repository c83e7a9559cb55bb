using Xmpp.Core.Addressing;
using Xmpp.Core.Xml;
using Xmpp.Server.Config;

namespace Xmpp.Tests.EndToEnd;

/// <summary>XEP-0050 ad-hoc commands and XEP-0133 service administration.</summary>
public sealed class AdminCommandsTests
{
    private const string Commands = "http://jabber.org/protocol/commands";
    private const string Admin = "http://jabber.org/protocol/admin";
    private const string Stanzas = "urn:ietf:params:xml:ns:xmpp-stanzas";

    private static Task<TestServer> StartAsync(params string[] users) =>
        TestServer.StartAsync(o => o with { Admins = [Jid.Parse("boss@localhost")] }, ["boss@localhost:boss-pass", .. users]);

    internal static string Form(params (string Var, string[] Values)[] fields) =>
        $"<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>{Admin}</value></field>"
        + string.Concat(fields.Select(f => $"<field var='{f.Var}'>" + string.Concat(f.Values.Select(v => $"<value>{v}</value>")) + "</field>"))
        + "</x>";

    /// <summary>Runs a command the way Gajim does: execute, then complete with the filled-in form.</summary>
    internal static async Task<Element> RunAsync(RawXmppClient c, string command, string? form)
    {
        var first = await c.IqAsync($"<iq type='set' id='x1' to='localhost'><command xmlns='{Commands}' node='{Admin}#{command}' action='execute'/></iq>");
        var cmd = first.Child("command", Commands);
        Assert.That(cmd, Is.Not.Null, first.ToString());
        if (cmd!.GetAttribute("status") == "completed")
        {
            return cmd;
        }

        Assert.That(cmd.GetAttribute("status"), Is.EqualTo("executing"));
        Assert.That(cmd.Child("actions", Commands)!.GetAttribute("execute"), Is.EqualTo("complete"));
        var session = cmd.GetAttribute("sessionid");
        var done = await c.IqAsync($"<iq type='set' id='x2' to='localhost'><command xmlns='{Commands}' node='{Admin}#{command}' sessionid='{session}' action='complete'>{form}</command></iq>");
        var result = done.Child("command", Commands);
        Assert.That(result, Is.Not.Null, done.ToString());
        Assert.That(result!.GetAttribute("status"), Is.EqualTo("completed"));
        Assert.That(result.GetAttribute("sessionid"), Is.EqualTo(session));
        return result;
    }

    internal static string? Note(Element command) => command.Child("note", Commands)?.GetAttribute("type") + ": " + command.ChildText("note", Commands);

    internal static List<string> Values(Element command, string var) =>
        command.Child("x", "jabber:x:data")!.Elements().First(f => f.GetAttribute("var") == var).Elements().Where(v => v.Name == "value").Select(v => v.Text).ToList();

    [Test]
    public async Task Only_admins_see_and_run_the_commands()
    {
        await using var server = await StartAsync("joe@localhost:joe-pass");
        await using var joe = await RawXmppClient.ConnectAsync(server.C2sPort);
        await joe.LoginAsync("joe", "joe-pass");
        var info = await joe.IqAsync("<iq type='get' id='i' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
        Assert.That(info.ToString(), Does.Contain(Commands));
        var items = await joe.IqAsync($"<iq type='get' id='l' to='localhost'><query xmlns='http://jabber.org/protocol/disco#items' node='{Commands}'/></iq>");
        Assert.That(items.GetAttribute("type"), Is.EqualTo("result"), items.ToString());
        Assert.That(items.Child("query", "http://jabber.org/protocol/disco#items")!.Elements(), Is.Empty);
        var run = await joe.IqAsync($"<iq type='set' id='r' to='localhost'><command xmlns='{Commands}' node='{Admin}#add-user' action='execute'/></iq>");
        Assert.That(run.Child("error", "jabber:client")!.Child("forbidden", Stanzas), Is.Not.Null, run.ToString());
        var unknown = await joe.IqAsync($"<iq type='set' id='u' to='localhost'><command xmlns='{Commands}' node='no-such' action='execute'/></iq>");
        Assert.That(unknown.Child("error", "jabber:client")!.Child("item-not-found", Stanzas), Is.Not.Null);

        await using var boss = await RawXmppClient.ConnectAsync(server.C2sPort);
        await boss.LoginAsync("boss", "boss-pass");
        var list = await boss.IqAsync($"<iq type='get' id='l' to='localhost'><query xmlns='http://jabber.org/protocol/disco#items' node='{Commands}'/></iq>");
        var nodes = list.Child("query", "http://jabber.org/protocol/disco#items")!.Elements().Select(e => e.GetAttribute("node")).ToList();
        Assert.That(nodes, Does.Contain($"{Admin}#add-user").And.Contain($"{Admin}#end-user-session").And.Contain($"{Admin}#set-motd"));
        var nodeInfo = await boss.IqAsync($"<iq type='get' id='n' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info' node='{Admin}#add-user'/></iq>");
        var identity = nodeInfo.Child("query", "http://jabber.org/protocol/disco#info")!.Child("identity", "http://jabber.org/protocol/disco#info")!;
        Assert.That(identity.GetAttribute("category") + "/" + identity.GetAttribute("type"), Is.EqualTo("automation/command-node"));
    }

    [Test]
    public async Task Sessions_are_checked_and_can_be_cancelled()
    {
        await using var server = await StartAsync();
        await using var boss = await RawXmppClient.ConnectAsync(server.C2sPort);
        await boss.LoginAsync("boss", "boss-pass");
        var wrong = await boss.IqAsync($"<iq type='set' id='w' to='localhost'><command xmlns='{Commands}' node='{Admin}#add-user' sessionid='nope' action='complete'/></iq>");
        Assert.That(wrong.Child("error", "jabber:client")!.Child("bad-sessionid", Commands), Is.Not.Null, wrong.ToString());
        var bad = await boss.IqAsync($"<iq type='set' id='b' to='localhost'><command xmlns='{Commands}' node='{Admin}#add-user' action='dance'/></iq>");
        Assert.That(bad.Child("error", "jabber:client")!.Child("malformed-action", Commands), Is.Not.Null);

        var first = await boss.IqAsync($"<iq type='set' id='f' to='localhost'><command xmlns='{Commands}' node='{Admin}#add-user' action='execute'/></iq>");
        var session = first.Child("command", Commands)!.GetAttribute("sessionid");
        var cancel = await boss.IqAsync($"<iq type='set' id='c' to='localhost'><command xmlns='{Commands}' node='{Admin}#add-user' sessionid='{session}' action='cancel'/></iq>");
        Assert.That(cancel.Child("command", Commands)!.GetAttribute("status"), Is.EqualTo("canceled"));
        var after = await boss.IqAsync($"<iq type='set' id='a' to='localhost'><command xmlns='{Commands}' node='{Admin}#add-user' sessionid='{session}' action='complete'/></iq>");
        Assert.That(after.Child("error", "jabber:client")!.Child("bad-sessionid", Commands), Is.Not.Null);
    }

    [Test]
    public async Task Admin_adds_changes_lists_and_deletes_accounts()
    {
        await using var server = await StartAsync("victim@localhost:victim-pass");
        await using var boss = await RawXmppClient.ConnectAsync(server.C2sPort);
        await boss.LoginAsync("boss", "boss-pass");

        var mismatch = await RunAsync(boss, "add-user", Form(("accountjid", ["new@localhost"]), ("password", ["one"]), ("password-verify", ["two"])));
        Assert.That(Note(mismatch), Does.StartWith("error:"));
        var added = await RunAsync(boss, "add-user", Form(("accountjid", ["new@localhost"]), ("password", ["new pass"]), ("password-verify", ["new pass"])));
        Assert.That(Note(added), Does.StartWith("info:"), Note(added));
        var again = await RunAsync(boss, "add-user", Form(("accountjid", ["new@localhost"]), ("password", ["x"]), ("password-verify", ["x"])));
        Assert.That(Note(again), Does.Contain("already exists"));
        var elsewhere = await RunAsync(boss, "add-user", Form(("accountjid", ["new@example.org"]), ("password", ["x"]), ("password-verify", ["x"])));
        Assert.That(Note(elsewhere), Does.StartWith("error:"));

        await using (var n = await RawXmppClient.ConnectAsync(server.C2sPort))
        {
            await n.LoginAsync("new", "new pass");
        }

        var changed = await RunAsync(boss, "change-user-password", Form(("accountjid", ["new@localhost"]), ("password", ["newer pass"])));
        Assert.That(Note(changed), Does.StartWith("info:"));
        await using (var n = await RawXmppClient.ConnectAsync(server.C2sPort))
        {
            await n.LoginAsync("new", "newer pass");
        }

        var count = await RunAsync(boss, "get-registered-users-num", null);
        Assert.That(Values(count, "registeredusersnum"), Is.EqualTo(new[] { "3" }));
        var list = await RunAsync(boss, "get-registered-users-list", Form(("max_items", ["25"])));
        Assert.That(Values(list, "registereduserjids"), Is.EqualTo(new[] { "boss@localhost", "new@localhost", "victim@localhost" }));
        var two = await RunAsync(boss, "get-registered-users-list", Form(("max_items", ["2"])));
        Assert.That(Values(two, "registereduserjids"), Has.Count.EqualTo(2));

        await using var victim = await RawXmppClient.ConnectAsync(server.C2sPort);
        await victim.LoginAsync("victim", "victim-pass");
        var online = await RunAsync(boss, "get-online-users-list", Form(("max_items", ["none"])));
        Assert.That(Values(online, "onlineuserjids"), Is.EqualTo(new[] { "boss@localhost", "victim@localhost" }));
        var onlineCount = await RunAsync(boss, "get-online-users-num", null);
        Assert.That(Values(onlineCount, "onlineusersnum"), Is.EqualTo(new[] { "2" }));

        // A full JID names its account (XEP-0133 §4.2 asks for bare JIDs; Smack's test framework sends full ones).
        var deleted = await RunAsync(boss, "delete-user", Form(("accountjids", ["victim@localhost/test", "ghost@localhost"])));
        Assert.That(Note(deleted), Does.StartWith("warn:").And.Contain("ghost@localhost does not exist"));
        Assert.That(await victim.ReadStreamErrorAsync(), Is.EqualTo("not-authorized"));
        await using var gone = await RawXmppClient.ConnectAsync(server.C2sPort);
        await gone.OpenAsync();
        await gone.StartTlsAsync();
        await gone.OpenAsync();
        Assert.That((await gone.AuthenticateAsync("SCRAM-SHA-256", "victim", "victim-pass")).Name, Is.EqualTo("failure"));
    }

    [Test]
    public async Task Admin_ends_sessions_announces_and_sets_the_message_of_the_day()
    {
        await using var server = await StartAsync("ann@localhost:ann-pass", "bob@localhost:bob-pass");
        await using var boss = await RawXmppClient.ConnectAsync(server.C2sPort);
        await boss.LoginAsync("boss", "boss-pass");
        await using var ann = await RawXmppClient.ConnectAsync(server.C2sPort);
        await ann.LoginAsync("ann", "ann-pass", resource: "phone");
        await ann.SendAsync("<presence/>");
        await ann.DrainAsync();

        var announced = await RunAsync(boss, "announce", Form(("subject", ["Maintenance"]), ("announcement", ["Down at noon", "for an hour"])));
        Assert.That(Note(announced), Is.EqualTo("info: Announcement sent to 1 session."));
        var headline = await ann.ReadUntilAsync(e => e.Name == "message");
        Assert.That(headline.GetAttribute("type"), Is.EqualTo("headline"));
        Assert.That(headline.GetAttribute("from"), Is.EqualTo("localhost"));
        Assert.That(headline.ChildText("subject", "jabber:client"), Is.EqualTo("Maintenance"));
        Assert.That(headline.ChildText("body", "jabber:client"), Is.EqualTo("Down at noon\nfor an hour"));

        var motd = await RunAsync(boss, "set-motd", Form(("motd", ["Welcome to the server"])));
        Assert.That(Note(motd), Does.StartWith("info:"));
        var now = await ann.ReadUntilAsync(e => e.Name == "message");
        Assert.That(now.ChildText("body", "jabber:client"), Is.EqualTo("Welcome to the server"));

        // Bob logs in later: he gets it once, not at his next login.
        await using (var bob = await RawXmppClient.ConnectAsync(server.C2sPort))
        {
            await bob.LoginAsync("bob", "bob-pass");
            await bob.SendAsync("<presence/>");
            var later = await bob.ReadUntilAsync(e => e.Name == "message");
            Assert.That(later.ChildText("body", "jabber:client"), Is.EqualTo("Welcome to the server"));
        }

        await using (var bob = await RawXmppClient.ConnectAsync(server.C2sPort))
        {
            await bob.LoginAsync("bob", "bob-pass");
            await bob.SendAsync("<presence/>");
            Assert.That((await bob.DrainAsync()).Where(e => e.Name == "message"), Is.Empty);
        }

        // The edit form shows the current text.
        var edit = await boss.IqAsync($"<iq type='set' id='e' to='localhost'><command xmlns='{Commands}' node='{Admin}#edit-motd' action='execute'/></iq>");
        Assert.That(Values(edit.Child("command", Commands)!, "motd"), Is.EqualTo(new[] { "Welcome to the server" }));
        var deleted = await RunAsync(boss, "delete-motd", null);
        Assert.That(Note(deleted), Does.StartWith("info:"));

        var ended = await RunAsync(boss, "end-user-session", Form(("accountjids", ["ann@localhost/phone"])));
        Assert.That(Note(ended), Is.EqualTo("info: 1 session ended."));
        Assert.That(await ann.ReadStreamErrorAsync(), Is.EqualTo("policy-violation"));
        var none = await RunAsync(boss, "end-user-session", Form(("accountjids", ["ann@localhost"])));
        Assert.That(Note(none), Does.StartWith("error:").And.Contain("no session"));
    }

    [Test]
    public void Admins_come_from_the_configuration_and_admin_needs_adhoc()
    {
        var options = ConfigLoader.Parse("<xmppserver><host name='localhost'/><admin jid='Boss@localhost'/></xmppserver>", "/x/server.config.xml");
        Assert.That(options.IsAdmin(Jid.Parse("boss@localhost/laptop")), Is.True);
        Assert.That(options.IsAdmin(Jid.Parse("joe@localhost")), Is.False);
        var ex = Assert.Throws<ConfigException>(() => ConfigLoader.Parse("<xmppserver><host name='localhost'/><admin jid='localhost'/></xmppserver>", "/x/server.config.xml"));
        Assert.That(ex!.Message, Does.Contain("not the address of an account"));
    }

    [Test]
    public void The_admin_module_refuses_to_load_without_adhoc()
    {
        var modules = new Dictionary<string, IReadOnlyDictionary<string, string>>(ServerOptions.DefaultModules);
        modules.Remove("adhoc");
        var ex = Assert.ThrowsAsync<ConfigException>(async () => await TestServer.StartAsync(o => o with { Modules = modules }));
        Assert.That(ex!.Message, Does.Contain("adhoc"));
    }
}
