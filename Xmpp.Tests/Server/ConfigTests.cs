using Xmpp.Server.Config;

namespace Xmpp.Tests.Server;

public sealed class ConfigTests
{
    [Test]
    public void Shipped_config_file_loads()
    {
        var dir = TestContext.CurrentContext.TestDirectory;
        var file = Path.GetFullPath(Path.Combine(dir, "..", "..", "..", "..", "server.config.xml"));
        var options = ConfigLoader.Load(file);
        Assert.That(options.Hosts.Select(h => h.Name), Is.EqualTo(new[] { "localhost" }));
        Assert.That(options.Listeners.Select(l => (l.Kind, l.Port)), Is.EqualTo(new[] { (ListenerKind.C2s, 5222), (ListenerKind.C2sDirectTls, 5223), (ListenerKind.S2s, 5269), (ListenerKind.Https, 5443) }));
        Assert.That(options.S2s.RequireEncryption, Is.True);
        Assert.That(options.S2s.AllowDialback, Is.True);
        Assert.That(options.Tls.Required, Is.True);
        Assert.That(options.Limits.StanzaSize, Is.EqualTo(262144));

        // The shipped file spells out the defaults: it must say what the code does.
        Assert.That(options.Limits, Is.EqualTo(new LimitOptions()));
        Assert.That(options.Auth, Is.EqualTo(new AuthOptions()));
        Assert.That(options.DataDirectory, Is.EqualTo(Path.Combine(Path.GetDirectoryName(file)!, "data")));
        Assert.That(options.Storage.File, Is.EqualTo(Path.Combine(Path.GetDirectoryName(file)!, "data", "xmpp.db")));
    }

    [Test]
    public void S2s_settings_map_to_options()
    {
        var o = ConfigLoader.Parse("""
            <xmppserver>
              <host name="example.org"/>
              <listen type="s2s" address="*"/>
              <listen type="s2s-tls" address="127.0.0.1"/>
              <s2s require-encryption="false" dialback="false" ca-file="ca.pem" dns-server="127.0.0.53" connect-timeout="3" idle-timeout="60" queue="10">
                <route domain="Example.NET" host="192.0.2.7" port="5299"/>
                <route domain="tls.example" host="tls.example" direct-tls="true"/>
              </s2s>
            </xmppserver>
            """, "/etc/xmpp/server.config.xml");
        Assert.That(o.Listeners.Select(l => (l.Kind, l.Port)), Is.EqualTo(new[] { (ListenerKind.S2s, 5269), (ListenerKind.S2sDirectTls, 5270) }));
        Assert.That(o.S2s.RequireEncryption, Is.False);
        Assert.That(o.S2s.AllowDialback, Is.False);
        Assert.That(o.S2s.CaFile, Is.EqualTo("/etc/xmpp/ca.pem"));
        Assert.That(o.S2s.DnsServer, Is.EqualTo("127.0.0.53"));
        Assert.That((o.S2s.ConnectTimeout, o.S2s.IdleTimeout, o.S2s.QueueLimit), Is.EqualTo((TimeSpan.FromSeconds(3), TimeSpan.FromSeconds(60), 10)));
        Assert.That(o.S2s.Routes["example.net"], Is.EqualTo(new S2sRoute("192.0.2.7", 5299, false)));
        Assert.That(o.S2s.Routes["tls.example"], Is.EqualTo(new S2sRoute("tls.example", 5270, true)));
        var ex = Assert.Throws<ConfigException>(() => ConfigLoader.Parse("<xmppserver><host name='a'/><s2s dns-server='not-an-ip'/></xmppserver>", "/x/server.config.xml"));
        Assert.That(ex!.Message, Does.Contain("dns-server"));
    }

    [Test]
    public void Values_map_to_options()
    {
        var o = ConfigLoader.Parse("""
            <xmppserver>
              <host name="Example.ORG"><certificate cert="c.pem" key="k.pem"/></host>
              <listen type="c2s-tls" address="127.0.0.1" port="0"/>
              <tls required="false"/>
              <data-dir path="/var/lib/x"/>
              <authentication iterations="10000" allow-plain="false" max-failures="4" failure-delay="0.5"/>
              <limits stanza-size="100000" auth-timeout="10" output-queue="50" idle-timeout="120" roster-items="500"/>
              <logging level="debug" format="json"/>
              <modules><ping/></modules>
            </xmppserver>
            """, "/etc/xmpp/server.config.xml");
        Assert.That(o.Hosts[0].Name, Is.EqualTo("example.org"));
        Assert.That(o.Hosts[0].CertificateFile, Is.EqualTo("/etc/xmpp/c.pem"));
        Assert.That(o.Listeners[0], Is.EqualTo(new ListenerOptions(ListenerKind.C2sDirectTls, "127.0.0.1", 0)));
        Assert.That(o.Tls.Required, Is.False);
        Assert.That(o.Limits.IdleTimeout, Is.EqualTo(TimeSpan.FromSeconds(120)));
        Assert.That(o.Limits.RosterItems, Is.EqualTo(500));
        Assert.That(o.DataDirectory, Is.EqualTo("/var/lib/x"));
        Assert.That(o.Auth.Iterations, Is.EqualTo(10000));
        Assert.That(o.Auth.AllowPlain, Is.False);
        Assert.That(o.Auth.FailureDelay, Is.EqualTo(TimeSpan.FromMilliseconds(500)));
        Assert.That(o.Auth.MaxFailuresPerStream, Is.EqualTo(4));
        Assert.That(o.Limits.AuthTimeout, Is.EqualTo(TimeSpan.FromSeconds(10)));
        Assert.That(o.Limits.OutputQueue, Is.EqualTo(50));
        Assert.That(o.Logging.Level, Is.EqualTo("Debug"));
        Assert.That(o.Modules.Keys, Is.EqualTo(new[] { "ping" }));
    }

    [TestCase("<xmppserver><host name='a'/><bogus/></xmppserver>", ":1: <bogus>: unknown element")]
    [TestCase("<xmppserver>\n<host name='a'/>\n<listen type='c2s' port='99999'/></xmppserver>", ":3: <listen>: attribute 'port' must be a whole number from 0 to 65535")]
    [TestCase("<xmppserver><host name='a' colour='red'/></xmppserver>", "<host>: unknown attribute 'colour'")]
    [TestCase("<xmppserver><host name='bad host'/></xmppserver>", "<host>: 'bad host' is not a valid domain name")]
    [TestCase("<xmppserver></xmppserver>", "at least one <host")]
    [TestCase("<xmppserver><host name='a'/><authentication iterations='100'/></xmppserver>", "<authentication>: attribute 'iterations' must be a whole number from 4096")]
    [TestCase("<xmppserver><host name='a'/><listen type='s3s'/></xmppserver>", "unknown listener type 's3s'")]
    [TestCase("<xmppserver><host name='a'/><authentication max-failures='10'/></xmppserver>", "attribute 'max-failures' must be a whole number from 3 to 6")]
    [TestCase("<xmppserver><host name='a'/><tls required='maybe'/></xmppserver>", "must be true or false")]
    [TestCase("<xmppserver><host name='a'></xmppserver>", "not well-formed XML")]
    [TestCase("<server/>", "the root element must be <xmppserver>")]
    public void Mistakes_name_the_line_and_element(string xml, string expected)
    {
        var ex = Assert.Throws<ConfigException>(() => ConfigLoader.Parse(xml, "test.xml"));
        Assert.That(ex!.Message, Does.Contain(expected));
        Assert.That(ex.Message, Does.StartWith("test.xml"));
    }
}
