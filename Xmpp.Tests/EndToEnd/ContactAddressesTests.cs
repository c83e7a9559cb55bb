using Xmpp.Core;
using Xmpp.Server.Config;
using Xmpp.Server.Modules.ContactAddresses;

namespace Xmpp.Tests.EndToEnd;

/// <summary>XEP-0157 contact addresses in the server's disco#info (a XEP-0128 form).</summary>
public sealed class ContactAddressesTests
{
    private static Func<ServerOptions, ServerOptions> With(Dictionary<string, string> contact) => o => o with
    {
        Modules = new Dictionary<string, IReadOnlyDictionary<string, string>>(ServerOptions.DefaultModules) { ["contact"] = contact },
    };

    [Test]
    public async Task Configured_addresses_are_a_serverinfo_form_in_disco_info()
    {
        var contact = new Dictionary<string, string>
        {
            ["abuse"] = "mailto:abuse@example.org, xmpp:abuse@example.org",
            ["admin"] = "xmpp:admin@example.org",
            ["status"] = "https://status.example.org/",
        };
        await using var server = await TestServer.StartAsync(With(contact), "alice@localhost:wonderland");
        await using var alice = await RawXmppClient.ConnectAsync(server.C2sPort);
        await alice.LoginAsync("alice", "wonderland");
        var info = await alice.IqAsync("<iq type='get' id='d1' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
        var form = info.FirstElement()!.Elements().Single(e => e.Is("x", "jabber:x:data"));
        Assert.That(form.GetAttribute("type"), Is.EqualTo("result"));
        string[] Values(string var) => form.Elements().Single(f => f.GetAttribute("var") == var).Elements().Select(v => v.Text).ToArray();
        Assert.That(Values("FORM_TYPE"), Is.EqualTo(new[] { ContactAddressesModule.FormType }));
        Assert.That(Values("abuse-addresses"), Is.EqualTo(new[] { "mailto:abuse@example.org", "xmpp:abuse@example.org" }));
        Assert.That(Values("admin-addresses"), Is.EqualTo(new[] { "xmpp:admin@example.org" }));
        Assert.That(Values("status-addresses"), Is.EqualTo(new[] { "https://status.example.org/" }));
        Assert.That(form.Elements().Select(f => f.GetAttribute("var")), Has.None.EqualTo("sales-addresses"), "unconfigured kinds are left out");
    }

    [TestCase("admin", "admin@example.org", "is not a URI")]
    [TestCase("admin", "/var/admin", "is not a URI")]
    [TestCase("boss", "xmpp:boss@example.org", "unknown option 'boss'")]
    public void Mistakes_in_the_configuration_are_reported(string option, string value, string message)
    {
        var ex = Assert.ThrowsAsync<ConfigException>(async () => await (await TestServer.StartAsync(With(new Dictionary<string, string> { [option] = value }))).DisposeAsync());
        Assert.That(ex!.Message, Does.Contain(message));
    }
}
