using System.Security.Cryptography.X509Certificates;
using Xmpp.Server.S2s;

namespace Xmpp.Tests.Server;

public sealed class S2sUnitTests
{
    [Test]
    public void Srv_records_are_ordered_by_priority_then_weight_with_direct_tls_first()
    {
        var records = new List<SrvRecord>
        {
            new("c.example", 5269, 20, 0, false),
            new("a.example", 5269, 10, 60, false),
            new("b.example", 5269, 10, 40, false),
            new("t.example", 5270, 10, 0, true),
            new("d.example", 5269, 30, 10, true),
        };
        var seen = new Dictionary<string, int>();
        for (var seed = 0; seed < 400; seed++)
        {
            var order = SrvResolver.Order(records, new Random(seed)).Select(r => r.Target).ToList();
            Assert.That(order[0], Is.EqualTo("t.example"), "XEP-0368: direct TLS first at equal priority");
            Assert.That(order.Skip(1).Take(2), Is.EquivalentTo(new[] { "a.example", "b.example" }));
            Assert.That(order.Skip(3), Is.EqualTo(new[] { "c.example", "d.example" }), "ascending priority");
            seen[order[1]] = seen.GetValueOrDefault(order[1]) + 1;
        }

        // RFC 2782: weight 60 against 40 is chosen first about 60% of the time.
        Assert.That(seen["a.example"], Is.InRange(190, 290));
    }

    [Test]
    public void A_dot_target_means_no_service()
    {
        Assert.That(SrvResolver.Order([new SrvRecord(string.Empty, 0, 0, 0, false)], new Random(1)), Is.Empty);
    }

    [Test]
    public async Task Configured_route_wins_and_without_srv_the_domain_itself_on_5269_is_used()
    {
        var options = new Xmpp.Server.Config.S2sOptions
        {
            DnsServer = "127.0.0.1:9", // nothing answers there
            ConnectTimeout = TimeSpan.FromMilliseconds(300),
            Routes = new Dictionary<string, Xmpp.Server.Config.S2sRoute> { ["routed.test"] = new("10.0.0.7", 5999, true) },
        };
        var resolver = new SrvResolver(options, NLog.LogManager.CreateNullLogger());
        Assert.That(await resolver.ResolveAsync("routed.test", CancellationToken.None), Is.EqualTo(new[] { new S2sTarget("10.0.0.7", 5999, true) }));
        Assert.That(await resolver.ResolveAsync("nosrv.test", CancellationToken.None), Is.EqualTo(new[] { new S2sTarget("nosrv.test", 5269, false) }));
        Assert.That(await resolver.AddressesAsync("127.0.0.9", CancellationToken.None), Is.EqualTo(new[] { System.Net.IPAddress.Parse("127.0.0.9") }));
    }

    [Test]
    public void Dialback_keys_follow_xep_0185_and_verify_only_for_the_same_streams_and_domains()
    {
        var secret = "s3cr3tvalue"u8.ToArray();
        var dialback = new Dialback(secret);
        var key = dialback.Key("example.net", "example.org", "D60000229F");

        // XEP-0185: HMAC-SHA256 keyed with hex(SHA256(secret)), over "receiving originating id", in hex.
        var hmacKey = System.Text.Encoding.ASCII.GetBytes(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(secret)));
        var expected = Convert.ToHexStringLower(System.Security.Cryptography.HMACSHA256.HashData(hmacKey, "example.net example.org D60000229F"u8));
        Assert.That(key, Is.EqualTo(expected));
        Assert.That(dialback.Verify("example.net", "example.org", "D60000229F", key), Is.True);
        Assert.That(dialback.Verify("example.net", "example.org", "D60000229F", " " + key + "\n"), Is.True, "whitespace around the key");
        Assert.That(dialback.Verify("example.net", "example.org", "OTHERSTREAM", key), Is.False);
        Assert.That(dialback.Verify("example.org", "example.net", "D60000229F", key), Is.False);
        Assert.That(new Dialback("other"u8.ToArray()).Verify("example.net", "example.org", "D60000229F", key), Is.False);
    }

    [Test]
    public void Certificate_identity_and_trust()
    {
        var ca = new TestCa();
        var trusting = new PeerCertificates([ca.Root()]);
        var now = DateTimeOffset.UtcNow;
        using var good = ca.IssueX509("peer.test", dnsNames: ["peer.test"]);
        using var wildcard = ca.IssueX509("wild", dnsNames: ["*.wild.test"]);
        using var xmppAddrOnly = ca.IssueX509("x", xmppAddrs: ["xmpp.test"]);
        using var srvOnly = ca.IssueX509("s", srvNames: ["_xmpp-server.srv.test"]);
        using var clientSrv = ca.IssueX509("c", srvNames: ["_xmpp-client.srv.test"]);
        using var expired = ca.IssueX509("peer.test", dnsNames: ["peer.test"], notBefore: DateTime.UtcNow.AddDays(-30), notAfter: DateTime.UtcNow.AddDays(-1));
        using var cnOnly = ca.IssueX509("cn.test");
        using var stranger = new TestCa("Other CA").IssueX509("peer.test", dnsNames: ["peer.test"]);

        Assert.Multiple(() =>
        {
            Assert.That(trusting.Check(good, "peer.test", now), Is.Null);
            Assert.That(trusting.Check(good, "other.test", now), Does.Contain("not for other.test"));
            Assert.That(trusting.Check(wildcard, "chat.wild.test", now), Is.Null);
            Assert.That(trusting.Check(wildcard, "wild.test", now), Is.Not.Null, "a wildcard covers exactly one label");
            Assert.That(trusting.Check(wildcard, "a.b.wild.test", now), Is.Not.Null);
            Assert.That(trusting.Check(xmppAddrOnly, "xmpp.test", now), Is.Null, "xmppAddr otherName");
            Assert.That(trusting.Check(srvOnly, "srv.test", now), Is.Null, "SRV-ID otherName");
            Assert.That(trusting.Check(clientSrv, "srv.test", now), Is.Not.Null, "an _xmpp-client SRV-ID does not name a server");
            Assert.That(trusting.Check(expired, "peer.test", now), Does.Contain("not valid now"));
            Assert.That(trusting.Check(cnOnly, "cn.test", now), Is.Null, "CN only when there is no subjectAltName");
            Assert.That(trusting.Check(stranger, "peer.test", now), Does.Contain("trusted authority"));
            Assert.That(new PeerCertificates([]).Check(good, "peer.test", now), Does.Contain("trusted authority"), "the test CA is not a system root");
            Assert.That(trusting.Check(null, "peer.test", now), Is.EqualTo("no certificate"));
        });
    }
}
