using System.Globalization;
using Xmpp.Server.Modules.Time;

namespace Xmpp.Tests.EndToEnd;

/// <summary>XEP-0202 entity time.</summary>
public sealed class TimeTests
{
    [Test]
    public async Task Server_answers_with_utc_and_its_offset_and_advertises_the_feature()
    {
        await using var server = await TestServer.StartAsync(null, "alice@localhost:wonderland", "bob@localhost:builder");
        await using var alice = await RawXmppClient.ConnectAsync(server.C2sPort);
        await using var bob = await RawXmppClient.ConnectAsync(server.C2sPort);
        await alice.LoginAsync("alice", "wonderland");
        await bob.LoginAsync("bob", "builder");

        var info = await alice.IqAsync("<iq type='get' id='d1' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
        Assert.That(info.FirstElement()!.Elements().Where(e => e.Name == "feature").Select(e => e.GetAttribute("var")), Does.Contain(TimeModule.Namespace));

        var reply = await alice.IqAsync("<iq type='get' id='t1' to='localhost'><time xmlns='urn:xmpp:time'/></iq>");
        Assert.That(reply.GetAttribute("type"), Is.EqualTo("result"));
        var time = reply.Child("time", TimeModule.Namespace)!;
        Assert.That(time.ChildText("tzo", TimeModule.Namespace), Does.Match(@"^[+-]\d\d:\d\d$"));
        var utc = DateTimeOffset.Parse(time.ChildText("utc", TimeModule.Namespace)!, CultureInfo.InvariantCulture);
        Assert.That((utc - DateTimeOffset.UtcNow).Duration(), Is.LessThan(TimeSpan.FromSeconds(30)));

        // To an account's full JID the query goes to the client, which answers for itself.
        await alice.SendAsync("<iq type='get' id='t2' to='bob@localhost/test'><time xmlns='urn:xmpp:time'/></iq>");
        var routed = await bob.ReadUntilAsync(e => e.Name == "iq" && e.GetAttribute("id") == "t2");
        Assert.That(routed.GetAttribute("from"), Is.EqualTo("alice@localhost/test"));
    }

    [TestCase("time", "zone", "module time: unknown option 'zone' (it has none)")]
    [TestCase("offline", "max", "module offline: unknown option 'max' (allowed: max-per-user)")]
    [TestCase("version", "show_os", "module version: unknown option 'show_os' (allowed: show-os)")]
    public void Attributes_a_module_does_not_ask_for_are_configuration_errors(string module, string option, string message)
    {
        var modules = new Dictionary<string, IReadOnlyDictionary<string, string>>(Xmpp.Server.Config.ServerOptions.DefaultModules)
        {
            [module] = new Dictionary<string, string> { [option] = "1" },
        };
        var ex = Assert.ThrowsAsync<Xmpp.Server.Config.ConfigException>(async () => await (await TestServer.StartAsync(o => o with { Modules = modules })).DisposeAsync());
        Assert.That(ex!.Message, Is.EqualTo(message));
    }

    [TestCase(-330, "-05:30")]
    [TestCase(0, "+00:00")]
    [TestCase(345, "+05:45")]
    public void Offset_is_written_as_sign_hours_minutes(int minutes, string tzo)
    {
        var now = new DateTimeOffset(2026, 12, 1, 12, 0, 0, 123, TimeSpan.FromMinutes(minutes));
        var time = TimeModule.Answer(now);
        Assert.That(time.ChildText("tzo", TimeModule.Namespace), Is.EqualTo(tzo));
        Assert.That(time.ChildText("utc", TimeModule.Namespace), Is.EqualTo(now.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.123'Z'", CultureInfo.InvariantCulture)));
    }
}
