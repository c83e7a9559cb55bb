using Xmpp.Server.Routing;

namespace Xmpp.Tests.Server;

public sealed class HookNamesTests
{
    [TestCase("message", Target.Bare, "message/bare")]
    [TestCase("presence", Target.Full, "presence/full")]
    [TestCase("iq", Target.Host, "iq/host")]
    public void Stanza_hook_names_are_prosodys(string kind, Target target, string expected) =>
        Assert.That(HookNames.Stanza(kind, target), Is.EqualTo(expected));

    [Test]
    public void Iq_hook_names_carry_type_target_and_payload() =>
        Assert.That(HookNames.Iq("get", Target.Host, "urn:xmpp:ping", "ping"), Is.EqualTo("iq-get/host/urn:xmpp:ping:ping"));
}
