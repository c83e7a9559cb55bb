using System.Globalization;
using System.Text;
using Xmpp.Server.Config;
using Xmpp.Server.Modules.ExternalServices;

namespace Xmpp.Tests.EndToEnd;

/// <summary>XEP-0215 external service discovery with TURN REST API credentials.</summary>
public sealed class ExternalServicesTests
{
    private const string Secret = "a-shared-secret-of-some-length";

    [Test]
    public void Credentials_follow_the_turn_rest_api_scheme()
    {
        // Computed independently: base64(HMAC-SHA1(secret, "1700000000:alice@localhost")).
        var (user, password) = ExternalServicesModule.Credentials(Encoding.UTF8.GetBytes(Secret), "alice@localhost", DateTimeOffset.FromUnixTimeSeconds(1_700_000_000));
        Assert.That(user, Is.EqualTo("1700000000:alice@localhost"));
        Assert.That(password, Is.EqualTo("7YDC3+JUQsrJlPPIc/tkPmGK2ng="));
    }

    [Test]
    public void Requests_in_the_same_step_get_the_same_expiry_and_every_expiry_leaves_most_of_the_ttl()
    {
        var day = TimeSpan.FromDays(1);
        var start = DateTimeOffset.FromUnixTimeSeconds(1_700_000_000 - (1_700_000_000 % 3600));

        // One hour steps for a day's ttl: 0.9 s before a second boundary and just after it, the same credentials
        // (the XSF's conformance suite compares a typed request with the full list, sent milliseconds apart).
        var before = ExternalServicesModule.Expiry(start + TimeSpan.FromSeconds(45.9), day);
        var after = ExternalServicesModule.Expiry(start + TimeSpan.FromSeconds(46.05), day);
        Assert.That(after, Is.EqualTo(before));
        Assert.That(before, Is.EqualTo(start + day));
        Assert.That(ExternalServicesModule.Expiry(start + TimeSpan.FromHours(1), day), Is.EqualTo(start + TimeSpan.FromHours(1) + day));

        Assert.That(ExternalServicesModule.Step(TimeSpan.FromSeconds(600)), Is.EqualTo(TimeSpan.FromSeconds(25)));
        Assert.That(ExternalServicesModule.Step(TimeSpan.FromSeconds(1)), Is.EqualTo(TimeSpan.FromSeconds(1)));
        Assert.That(ExternalServicesModule.Step(TimeSpan.FromDays(7)), Is.EqualTo(TimeSpan.FromHours(1)));
        foreach (var ttl in new[] { TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(600), day, TimeSpan.FromDays(7) })
        {
            for (var s = 0.0; s < 7200; s += 97.3)
            {
                var now = start + TimeSpan.FromSeconds(s);
                var expires = ExternalServicesModule.Expiry(now, ttl);
                var step = ExternalServicesModule.Step(ttl);
                Assert.That(expires - now, Is.LessThanOrEqualTo(ttl).And.GreaterThan(ttl - step), $"ttl {ttl}, {s} s");
                Assert.That(expires.UtcTicks % TimeSpan.TicksPerSecond, Is.Zero, "whole seconds, as the username carries them");
            }
        }
    }

    [Test]
    public async Task Local_users_get_stun_and_turn_with_fresh_credentials()
    {
        var modules = new Dictionary<string, IReadOnlyDictionary<string, string>>(ServerOptions.DefaultModules)
        {
            ["extdisco"] = new Dictionary<string, string> { ["stun"] = "stun.example.org:3478", ["turn"] = "turn.example.org:3478", ["turns"] = "turn.example.org:5349", ["secret"] = Secret, ["ttl"] = "600" },
        };
        await using var server = await TestServer.StartAsync(o => o with { Modules = modules }, "alice@localhost:wonderland");
        await using var alice = await RawXmppClient.ConnectAsync(server.C2sPort);
        await alice.LoginAsync("alice", "wonderland");

        var info = await alice.IqAsync("<iq type='get' id='d' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
        Assert.That(info.FirstElement()!.Elements().Select(e => e.GetAttribute("var")), Does.Contain(ExternalServicesModule.Namespace));

        var all = (await alice.IqAsync("<iq type='get' id='s1' to='localhost'><services xmlns='urn:xmpp:extdisco:2'/></iq>")).Child("services", ExternalServicesModule.Namespace)!;
        Assert.That(all.Elements().Select(e => $"{e.GetAttribute("type")}/{e.GetAttribute("transport")}:{e.GetAttribute("port")}"),
            Is.EqualTo(new[] { "stun/udp:3478", "turn/udp:3478", "turn/tcp:3478", "turns/tcp:5349" }));
        var turn = all.Elements().First(e => e.GetAttribute("type") == "turn");
        var expires = DateTimeOffset.Parse(turn.GetAttribute("expires")!, CultureInfo.InvariantCulture);
        Assert.That((expires - DateTimeOffset.UtcNow).TotalSeconds, Is.InRange(570, 610), "600 s counted from the start of a 25 s step");
        var username = turn.GetAttribute("username")!;
        Assert.That(username, Does.EndWith(":alice@localhost"));
        var (_, password) = ExternalServicesModule.Credentials(Encoding.UTF8.GetBytes(Secret), "alice@localhost", DateTimeOffset.FromUnixTimeSeconds(long.Parse(username.Split(':')[0], CultureInfo.InvariantCulture)));
        Assert.That(turn.GetAttribute("password"), Is.EqualTo(password));
        Assert.That(all.Elements().First().GetAttribute("password"), Is.Null, "STUN needs none");

        var onlyTurn = (await alice.IqAsync("<iq type='get' id='s2' to='localhost'><services xmlns='urn:xmpp:extdisco:2' type='turn'/></iq>")).Child("services", ExternalServicesModule.Namespace)!;
        Assert.That(onlyTurn.Elements().Select(e => e.GetAttribute("type")).Distinct(), Is.EqualTo(new[] { "turn" }));

        var creds = await alice.IqAsync("<iq type='get' id='c1' to='localhost'><credentials xmlns='urn:xmpp:extdisco:2'><service type='turns' host='turn.example.org'/></credentials></iq>");
        Assert.That(creds.Child("credentials", ExternalServicesModule.Namespace)!.Elements().Single().GetAttribute("port"), Is.EqualTo("5349"));
        var none = await alice.IqAsync("<iq type='get' id='c2' to='localhost'><credentials xmlns='urn:xmpp:extdisco:2'><service type='turn' host='elsewhere.example'/></credentials></iq>");
        Assert.That(none.Child("error", "jabber:client")!.Child("item-not-found", "urn:ietf:params:xml:ns:xmpp-stanzas"), Is.Not.Null);
    }

    [TestCase("turn", "turn.example.org", "module extdisco: 'turn.example.org' in turn must be host:port")]
    [TestCase("turn", "turn.example.org:3478", "module extdisco: TURN needs secret, the static-auth-secret of the TURN server (at least 16 characters)")]
    public void Bad_configuration_is_refused(string option, string value, string message)
    {
        var modules = new Dictionary<string, IReadOnlyDictionary<string, string>>(ServerOptions.DefaultModules)
        {
            ["extdisco"] = new Dictionary<string, string> { [option] = value },
        };
        var ex = Assert.ThrowsAsync<ConfigException>(async () => await (await TestServer.StartAsync(o => o with { Modules = modules })).DisposeAsync());
        Assert.That(ex!.Message, Is.EqualTo(message));
    }
}
