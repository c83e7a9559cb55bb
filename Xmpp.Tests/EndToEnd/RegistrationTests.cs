using Xmpp.Server.Config;

namespace Xmpp.Tests.EndToEnd;

/// <summary>XEP-0077 in-band registration.</summary>
public sealed class RegistrationTests
{
    private const string Register = "jabber:iq:register";

    [Test]
    public async Task Register_change_the_password_and_remove_the_account_with_a_per_address_limit()
    {
        var modules = new Dictionary<string, IReadOnlyDictionary<string, string>>(ServerOptions.DefaultModules)
        {
            ["register"] = new Dictionary<string, string> { ["per-ip"] = "1", ["window"] = "600" },
        };
        await using var server = await TestServer.StartAsync(o => o with { Modules = modules }, "taken@localhost:secret");

        await using (var c = await RawXmppClient.ConnectAsync(server.C2sPort))
        {
            await c.OpenAsync();
            await c.StartTlsAsync();
            var features = await c.OpenAsync();
            Assert.That(features.Child("register", "http://jabber.org/features/iq-register"), Is.Not.Null);

            var form = await c.IqAsync($"<iq type='get' id='g'><query xmlns='{Register}'/></iq>");
            Assert.That(form.Child("query", Register)!.Child("username", Register), Is.Not.Null);
            var taken = await c.IqAsync($"<iq type='set' id='t'><query xmlns='{Register}'><username>taken</username><password>x</password></query></iq>");
            Assert.That(taken.Child("error", "jabber:client")!.Child("conflict", "urn:ietf:params:xml:ns:xmpp-stanzas"), Is.Not.Null);
            var empty = await c.IqAsync($"<iq type='set' id='e'><query xmlns='{Register}'><username>newbie</username></query></iq>");
            Assert.That(empty.Child("error", "jabber:client")!.Child("not-acceptable", "urn:ietf:params:xml:ns:xmpp-stanzas"), Is.Not.Null);
            var ok = await c.IqAsync($"<iq type='set' id='r'><query xmlns='{Register}'><username>newbie</username><password>first pass</password></query></iq>");
            Assert.That(ok.GetAttribute("type"), Is.EqualTo("result"), ok.ToString());

            // One account per address per window; the conflict above did not use the place up.
            var again = await c.IqAsync($"<iq type='set' id='r2'><query xmlns='{Register}'><username>second</username><password>pw</password></query></iq>");
            Assert.That(again.Child("error", "jabber:client")!.Child("resource-constraint", "urn:ietf:params:xml:ns:xmpp-stanzas"), Is.Not.Null);
        }

        await using (var c = await RawXmppClient.ConnectAsync(server.C2sPort))
        {
            await c.LoginAsync("newbie", "first pass");
            var info = await c.IqAsync($"<iq type='get' id='i'><query xmlns='{Register}'/></iq>");
            Assert.That(info.Child("query", Register)!.Child("registered", Register), Is.Not.Null);
            var changed = await c.IqAsync($"<iq type='set' id='p'><query xmlns='{Register}'><username>newbie</username><password>second pass</password></query></iq>");
            Assert.That(changed.GetAttribute("type"), Is.EqualTo("result"));
        }

        await using (var c = await RawXmppClient.ConnectAsync(server.C2sPort))
        {
            await c.LoginAsync("newbie", "second pass");
            var removed = await c.IqAsync($"<iq type='set' id='x'><query xmlns='{Register}'><remove/></query></iq>");
            Assert.That(removed.GetAttribute("type"), Is.EqualTo("result"));
            Assert.That(await c.ReadStreamErrorAsync(), Is.EqualTo("not-authorized"));
        }

        await using (var c = await RawXmppClient.ConnectAsync(server.C2sPort))
        {
            await c.OpenAsync();
            await c.StartTlsAsync();
            await c.OpenAsync();
            Assert.That((await c.AuthenticateAsync("SCRAM-SHA-256", "newbie", "second pass")).Name, Is.EqualTo("failure"));
        }
    }

    [Test]
    public async Task Registration_is_off_unless_enabled()
    {
        await using var server = await TestServer.StartAsync(null);
        await using var c = await RawXmppClient.ConnectAsync(server.C2sPort);
        await c.OpenAsync();
        await c.StartTlsAsync();
        var features = await c.OpenAsync();
        Assert.That(features.Child("register", "http://jabber.org/features/iq-register"), Is.Null);
        await c.SendAsync($"<iq type='set' id='r'><query xmlns='{Register}'><username>x</username><password>y</password></query></iq>");
        Assert.That(await c.ReadStreamErrorAsync(), Is.EqualTo("not-authorized"));
    }
}
