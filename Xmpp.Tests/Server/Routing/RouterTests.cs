using NLog;
using Xmpp.Core.Addressing;
using Xmpp.Core.Xml;
using Xmpp.Server.Routing;

namespace Xmpp.Tests.Server.Routing;

/// <summary>
/// The router alone, over a hook bus of recording handlers: which hook each stanza reaches (Prosody's
/// stanza_router names), what it does when nobody claims a stanza (RFC 6120 §8.4, RFC 6121 §8.5), and that
/// what it routes can no longer change. No sessions, no sockets.
/// </summary>
public sealed class RouterTests
{
    private HookBus _hooks = null!;
    private Router _router = null!;
    private List<(string Hook, StanzaContext Context)> _fired = null!;

    [SetUp]
    public void SetUp()
    {
        _hooks = new HookBus();
        _router = new Router(() => _hooks, ["example.org"], LogManager.CreateNullLogger());
        _fired = [];
    }

    /// <summary>Records every firing of these hooks; the handlers claim the stanza when <paramref name="claim"/>.</summary>
    private void Record(bool claim, params string[] hooks)
    {
        foreach (var hook in hooks)
        {
            _hooks.On(hook, (ctx, _) =>
            {
                _fired.Add((hook, ctx));
                return ValueTask.FromResult(claim);
            });
        }
    }

    private static Element Parse(string xml) => ElementParser.Parse(xml);

    private IEnumerable<string> Fired => _fired.Select(f => f.Hook);

    [TestCase("<message xmlns='jabber:client' from='a@example.org/r' to='b@example.org'/>", "message/bare")]
    [TestCase("<message xmlns='jabber:client' from='a@example.org/r' to='b@example.org/x'/>", "message/full")]
    [TestCase("<message xmlns='jabber:client' from='a@example.org/r' to='example.org'/>", "message/host")]
    [TestCase("<presence xmlns='jabber:client' from='a@example.org/r' to='b@example.org'/>", "presence/bare")]
    [TestCase("<iq xmlns='jabber:client' type='result' id='1' from='a@example.org/r' to='b@example.org/x'/>", "iq/full")]
    [TestCase("<iq xmlns='jabber:client' type='get' id='1' from='a@example.org/r' to='example.org'><ping xmlns='urn:xmpp:ping'/></iq>", "iq-get/host/urn:xmpp:ping:ping")]
    [TestCase("<iq xmlns='jabber:client' type='set' id='1' from='a@example.org/r' to='b@example.org'><query xmlns='jabber:iq:roster'/></iq>", "iq-set/bare/jabber:iq:roster:query")]
    [TestCase("<message xmlns='jabber:client' from='a@example.org/r' to='c@remote.example'/>", "route/remote")]
    public async Task A_stanza_reaches_the_hook_its_kind_and_address_name(string xml, string hook)
    {
        Record(true, "message/bare", "message/full", "message/host", "presence/bare", "iq/full", "iq/bare", "iq/host",
            "iq-get/host/urn:xmpp:ping:ping", "iq-set/bare/jabber:iq:roster:query", HookNames.RouteRemote);
        await _router.RouteAsync(Parse(xml), null, CancellationToken.None);
        Assert.That(Fired, Is.EqualTo(new[] { hook }));
    }

    [Test]
    public async Task A_request_nobody_answers_gets_service_unavailable_and_a_result_or_presence_is_dropped()
    {
        Record(true, "iq/full", "message/full");
        await _router.RouteAsync(Parse("<iq xmlns='jabber:client' type='get' id='q' from='a@example.org/r' to='example.org'><x xmlns='urn:example'/></iq>"), null, CancellationToken.None);
        await _router.RouteAsync(Parse("<iq xmlns='jabber:client' type='result' id='q2' from='a@example.org/r' to='example.org'/>"), null, CancellationToken.None);
        await _router.RouteAsync(Parse("<presence xmlns='jabber:client' from='a@example.org/r' to='example.org'/>"), null, CancellationToken.None);
        await _router.RouteAsync(Parse("<message xmlns='jabber:client' id='m' from='a@example.org/r' to='example.org'><body>x</body></message>"), null, CancellationToken.None);

        // Only the two bounces reach the sender, as errors with the RFC's condition.
        Assert.That(Fired, Is.EqualTo(new[] { "iq/full", "message/full" }));
        foreach (var (_, ctx) in _fired)
        {
            Assert.That(ctx.Stanza.GetAttribute("type"), Is.EqualTo("error"));
            Assert.That(ctx.To, Is.EqualTo(Jid.Parse("a@example.org/r")));
            Assert.That(ctx.Stanza.Child("error", "jabber:client")!.Child("service-unavailable", "urn:ietf:params:xml:ns:xmpp-stanzas"), Is.Not.Null);
        }

        // RFC 6120 §8.3.1: an error is never answered with an error.
        _fired.Clear();
        await _router.RouteAsync(Parse("<message xmlns='jabber:client' type='error' from='a@example.org/r' to='example.org'/>"), null, CancellationToken.None);
        Assert.That(Fired, Is.Empty);
    }

    [Test]
    public async Task A_remote_domain_nobody_routes_to_gets_remote_server_not_found()
    {
        Record(true, "message/full");
        await _router.RouteAsync(Parse("<message xmlns='jabber:client' id='m' from='a@example.org/r' to='c@remote.example'><body>x</body></message>"), null, CancellationToken.None);
        var bounce = _fired.Single().Context.Stanza;
        Assert.That(bounce.GetAttribute("from"), Is.EqualTo("c@remote.example"));
        Assert.That(bounce.Child("error", "jabber:client")!.Child("remote-server-not-found", "urn:ietf:params:xml:ns:xmpp-stanzas"), Is.Not.Null);
    }

    [Test]
    public async Task A_malformed_to_is_answered_jid_malformed()
    {
        Record(true, "message/full");
        await _router.RouteAsync(Parse("<message xmlns='jabber:client' id='m' from='a@example.org/r' to='@@bad'><body>x</body></message>"), Jid.Parse("a@example.org/r"), null, CancellationToken.None);
        var bounce = _fired.Single().Context.Stanza;
        Assert.That(bounce.Child("error", "jabber:client")!.Child("jid-malformed", "urn:ietf:params:xml:ns:xmpp-stanzas"), Is.Not.Null);
    }

    [Test]
    public async Task Presence_without_to_is_a_broadcast_and_other_stanzas_without_to_go_to_the_account()
    {
        Record(true, HookNames.PresenceBroadcast, "iq-get/bare/jabber:iq:roster:query");
        var from = Jid.Parse("a@example.org/r");
        await _router.RouteAsync(Parse("<presence xmlns='jabber:client'/>"), from, null, CancellationToken.None);
        await _router.RouteAsync(Parse("<iq xmlns='jabber:client' type='get' id='r'><query xmlns='jabber:iq:roster'/></iq>"), from, null, CancellationToken.None);
        Assert.That(Fired, Is.EqualTo(new[] { HookNames.PresenceBroadcast, "iq-get/bare/jabber:iq:roster:query" }));
        Assert.That(_fired[0].Context.To, Is.Null);
        Assert.That(_fired[1].Context.To, Is.EqualTo(from.Bare));
    }

    [Test]
    public async Task The_filter_sees_stanzas_between_accounts_and_can_stop_them()
    {
        Record(false, HookNames.FilterOutbound);
        _hooks.On(HookNames.FilterOutbound, (ctx, _) => ValueTask.FromResult(ctx.Stanza.GetAttribute("id") == "blocked"), priority: -1);
        Record(true, "message/bare");
        await _router.RouteAsync(Parse("<message xmlns='jabber:client' id='ok' from='a@example.org/r' to='b@example.org'/>"), null, CancellationToken.None);
        await _router.RouteAsync(Parse("<message xmlns='jabber:client' id='blocked' from='a@example.org/r' to='b@example.org'/>"), null, CancellationToken.None);
        await _router.RouteAsync(Parse("<message xmlns='jabber:client' id='self' from='a@example.org/r' to='a@example.org'/>"), null, CancellationToken.None);
        Assert.That(Fired, Is.EqualTo(new[] { HookNames.FilterOutbound, "message/bare", HookNames.FilterOutbound, "message/bare" }));
        Assert.That(_fired.Where(f => f.Hook == "message/bare").Select(f => f.Context.Stanza.GetAttribute("id")), Is.EqualTo(new[] { "ok", "self" }));
    }

    [Test]
    public async Task Only_a_local_clients_stanza_goes_through_the_outbound_hook()
    {
        Record(false, HookNames.MessageOutbound);
        Record(true, "message/bare");
        await _router.RouteAsync(Parse("<message xmlns='jabber:client' from='a@example.org/r' to='b@example.org'/>"), null, CancellationToken.None);
        Assert.That(Fired, Is.EqualTo(new[] { "message/bare" }));
    }

    [Test]
    public async Task What_the_router_routes_cannot_change_and_a_hook_hands_a_changed_copy_on()
    {
        var original = Parse("<message xmlns='jabber:client' from='a@example.org/r' to='b@example.org'><body>x</body></message>");
        _hooks.On("message/bare", (ctx, _) =>
        {
            Assert.That(ctx.Stanza.IsFrozen, Is.True);
            Assert.Throws<InvalidOperationException>(() => ctx.Stanza.SetAttribute("id", "changed"));
            Assert.Throws<InvalidOperationException>(() => ctx.Stanza.Child("body", "jabber:client")!.AddText("y"));
            ctx.Stanza = ctx.Stanza.Copy().Add(new Element("stanza-id", "urn:xmpp:sid:0").SetAttribute("id", "1"));
            return ValueTask.FromResult(false);
        }, priority: 10);
        Record(true, "message/bare");
        await _router.RouteAsync(original, null, CancellationToken.None);

        var delivered = _fired.Single().Context.Stanza;
        Assert.That(delivered.Child("stanza-id", "urn:xmpp:sid:0"), Is.Not.Null, "later hooks see the copy");
        Assert.That(original.Child("stanza-id", "urn:xmpp:sid:0"), Is.Null, "the original is as it was");
        Assert.That(ReferenceEquals(delivered.Child("body", "jabber:client"), original.Child("body", "jabber:client")), Is.True, "children are shared, not copied");
    }

    [Test]
    public async Task Addresses_parsed_by_the_caller_are_used_as_given()
    {
        Record(true, "presence/full");
        var from = Jid.Parse("a@example.org/r");
        var to = Jid.Parse("b@example.org/x");
        await _router.RouteParsedAsync(Parse("<presence xmlns='jabber:client' from='a@example.org/r' to='b@example.org/x'/>"), from, to, CancellationToken.None);
        var ctx = _fired.Single().Context;
        Assert.That(ReferenceEquals(ctx.From, from) && ReferenceEquals(ctx.To, to), Is.True);
        Assert.That(ctx.Stanza.IsFrozen, Is.True);
    }
}
