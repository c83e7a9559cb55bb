using Xmpp.Core.Sasl;
using Xmpp.Server.Config;

namespace Xmpp.Tests.Server;

/// <summary>
/// Every element reader of the configuration: what it maps to the options, and each mistake it refuses,
/// with the whole message (file, line, element, what is wrong).
/// </summary>
public sealed class ConfigReaderTests
{
    private const string Host = "<host name='a'/>";

    [TestCase("<host name='a'><cert/></host>", "<cert>: unknown element (expected <certificate>)")]
    [TestCase("<host name='a'><certificate cert='c.pem'/></host>", "<certificate>: attribute 'key' is required")]
    [TestCase("<host name='a'/><host name='A'/>", "<host>: host 'a' is declared twice")]
    [TestCase("<host/>", "<host>: attribute 'name' is required")]
    [TestCase(Host + "<listen type='c2s' address='nowhere'/>", "<listen>: address 'nowhere' is not an IP address, 'localhost' or '*'")]
    [TestCase(Host + "<listen/>", "<listen>: attribute 'type' is required")]
    [TestCase(Host + "<listen type='c2s' port='x'/>", "<listen>: attribute 'port' must be a whole number from 0 to 65535, not 'x'")]
    [TestCase(Host + "<s2s><path/></s2s>", "<path>: unknown element (expected <route domain host port/>)")]
    [TestCase(Host + "<s2s><route domain='bad domain' host='h'/></s2s>", "<route>: 'bad domain' is not a valid domain")]
    [TestCase(Host + "<s2s><route domain='b' host='h' port='0'/></s2s>", "<route>: attribute 'port' must be a whole number from 1 to 65535, not '0'")]
    [TestCase(Host + "<s2s><route domain='b'/></s2s>", "<route>: attribute 'host' is required")]
    [TestCase(Host + "<s2s dns-server='not-an-ip'/>", "<s2s>: dns-server 'not-an-ip' is not an IP address (with an optional :port)")]
    [TestCase(Host + "<s2s connect-timeout='0'/>", "<s2s>: attribute 'connect-timeout' must be a number from 1 to 600, not '0'")]
    [TestCase(Host + "<s2s dialback='sometimes'/>", "<s2s>: attribute 'dialback' must be true or false, not 'sometimes'")]
    [TestCase(Host + "<admin jid='example.org'/>", "<admin>: 'example.org' is not the address of an account (user@host)")]
    [TestCase(Host + "<admin jid='a@example.org/phone'/>", "<admin>: 'a@example.org/phone' is not the address of an account (user@host)")]
    [TestCase(Host + "<listen type='component'/><component domain='bad domain' secret='s'/>", "<component>: 'bad domain' is not a valid domain name")]
    [TestCase(Host + "<listen type='component'/><component domain='c.a' secret='s'/><component domain='C.a' secret='t'/>", "<component>: component 'c.a' is declared twice")]
    [TestCase(Host + "<listen type='component'/><component domain='c.a'/>", "<component>: attribute 'secret' is required")]
    [TestCase(Host + "<listen type='component'/><component domain='a' secret='s'/>", "<component>: 'a' is a <host>; a component needs a domain of its own")]
    [TestCase(Host + "<component domain='c.a' secret='s'/>", "<component>: components need a <listen type=\"component\" port=\"5347\"/> to connect to")]
    [TestCase(Host + "<data-dir/>", "<data-dir>: attribute 'path' is required")]
    [TestCase(Host + "<http cors-origins='https://chat.example/'/>", "<http>: cors-origins: 'https://chat.example/' is not * or an origin such as https://chat.example.org")]
    [TestCase(Host + "<http cors-origins='ftp://chat.example'/>", "<http>: cors-origins: 'ftp://chat.example' is not * or an origin such as https://chat.example.org")]
    [TestCase(Host + "<tls optional='true'/>", "<tls>: unknown attribute 'optional' (allowed: required)")]
    [TestCase(Host + "<storage connection='Host=db'/>", "<storage>: 'connection' is for type=\"postgresql\"; SQLite takes 'file'")]
    [TestCase(Host + "<storage type='postgresql' file='x.db'/>", "<storage>: 'file' is for type=\"sqlite\"; PostgreSQL takes 'connection'")]
    [TestCase(Host + "<storage type='postgresql'/>", "<storage>: attribute 'connection' is required")]
    [TestCase(Host + "<storage type='mysql'/>", "<storage>: unknown storage type 'mysql' (supported: sqlite, postgresql)")]
    [TestCase(Host + "<authentication scram='SHA-3'/>", "<authentication>: unknown SCRAM hash 'SHA-3' in 'scram' (SHA-1, SHA-256, SHA-512)")]
    [TestCase(Host + "<authentication scram='' allow-plain='false'/>", "<authentication>: with scram=\"\" and allow-plain=\"false\" no client could log in")]
    [TestCase(Host + "<authentication block-time='0'/>", "<authentication>: attribute 'block-time' must be a number from 1 to 86400, not '0'")]
    [TestCase(Host + "<limits depth='4'/>", "<limits>: attribute 'depth' must be a whole number from 8 to 1024, not '4'")]
    [TestCase(Host + "<limits stanza-rate='fast'/>", "<limits>: attribute 'stanza-rate' must be a number from 0 to 1000000, not 'fast'")]
    [TestCase(Host + "<limits stanza-size='1.5e9'/>", "<limits>: attribute 'stanza-size' must be a whole number from 10000 to 67108864, not '1.5e9'")]
    [TestCase(Host + "<logging level='loud'/>", "<logging>: unknown log level 'loud' (one of Trace, Debug, Info, Warn, Error, Fatal, Off)")]
    [TestCase(Host + "<logging format='xml'/>", "<logging>: unknown log format 'xml' (text or json)")]
    [TestCase(Host + "<modules><ping/><ping/></modules>", "<ping>: module 'ping' is listed twice")]
    [TestCase(Host + "<modules><ping/></modules><modules><ping/></modules>", "<ping>: module 'ping' is listed twice")]
    [TestCase(Host + "<modules order='any'/>", "<modules>: unknown attribute 'order'")]
    public void Each_reader_refuses_its_mistakes_with_the_whole_message(string children, string expected)
    {
        var ex = Assert.Throws<ConfigException>(() => ConfigLoader.Parse("<xmppserver>" + children + "</xmppserver>", "test.xml"));
        Assert.That(ex!.Message, Is.EqualTo("test.xml:1: " + expected));
    }

    [Test]
    public void Mistakes_on_the_root_element_name_it()
    {
        var ex = Assert.Throws<ConfigException>(() => ConfigLoader.Parse("<xmppserver version='2'><host name='a'/></xmppserver>", "test.xml"));
        Assert.That(ex!.Message, Is.EqualTo("test.xml:1: <xmppserver>: unknown attribute 'version'"));
        ex = Assert.Throws<ConfigException>(() => ConfigLoader.Parse("<xmppserver xmlns='urn:example'><host name='a'/></xmppserver>", "test.xml"));
        Assert.That(ex!.Message, Is.EqualTo("test.xml:1: <xmppserver>: the root element must be <xmppserver>"));
    }

    [Test]
    public void A_postgresql_connection_string_is_checked_by_npgsql()
    {
        var ex = Assert.Throws<ConfigException>(() => ConfigLoader.Parse("<xmppserver>" + Host + "<storage type='postgresql' connection='Colour=blue'/></xmppserver>", "test.xml"));
        Assert.That(ex!.Message, Does.StartWith("test.xml:1: <storage>: 'connection' is not a valid PostgreSQL connection string: "));

        var o = ConfigLoader.Parse("<xmppserver>" + Host + "<storage type='postgresql' connection='Host=db;Database=xmpp'/></xmppserver>", "/etc/xmpp/server.config.xml");
        Assert.That(o.Storage, Is.EqualTo(new StorageOptions { Provider = "postgresql", ConnectionString = "Host=db;Database=xmpp" }));
    }

    [Test]
    public void Storage_http_admins_components_and_modules_map_to_options()
    {
        var o = ConfigLoader.Parse("""
            <xmppserver>
              <host name="example.org"/>
              <listen type="component" port="5348"/>
              <storage file="db/x.sqlite"/>
              <http cors-origins="https://chat.example.org  http://localhost:8080"/>
              <admin jid="Root@Example.org"/>
              <admin jid="ops@example.org"/>
              <component domain="Bridge.example.org" secret="s3cret"/>
              <logging file="log/server.log"/>
              <modules><version show-os="true"/></modules>
              <modules><muc subdomain="rooms"/></modules>
            </xmppserver>
            """, "/etc/xmpp/server.config.xml");
        Assert.That(o.Listeners, Is.EqualTo(new[] { new ListenerOptions(ListenerKind.Component, "localhost", 5348) }));
        Assert.That(o.Storage, Is.EqualTo(new StorageOptions { Provider = "sqlite", File = "/etc/xmpp/db/x.sqlite" }));
        Assert.That(o.DataDirectory, Is.EqualTo("/etc/xmpp/data"));
        Assert.That(o.Http.CorsOrigins, Is.EqualTo(new[] { "https://chat.example.org", "http://localhost:8080" }));
        Assert.That(o.Admins.Select(a => a.ToString()), Is.EqualTo(new[] { "root@example.org", "ops@example.org" }));
        Assert.That(o.Components, Is.EqualTo(new[] { new ComponentOptions("bridge.example.org", "s3cret") }));
        Assert.That(o.Logging, Is.EqualTo(new LoggingOptions { File = "/etc/xmpp/log/server.log" }));
        Assert.That(o.Modules.Keys, Is.EqualTo(new[] { "version", "muc" }), "several <modules> add up");
        Assert.That(o.Modules["version"]["show-os"], Is.EqualTo("true"));
        Assert.That(o.Modules["muc"]["subdomain"], Is.EqualTo("rooms"));
        Assert.That(o.SourceFile, Is.EqualTo("/etc/xmpp/server.config.xml"));
    }

    [Test]
    public void Without_elements_the_defaults_hold()
    {
        var o = ConfigLoader.Parse("<xmppserver>" + Host + "</xmppserver>", "/etc/xmpp/server.config.xml");
        Assert.That(o.Listeners, Is.Empty);
        Assert.That(o.Modules, Is.SameAs(ServerOptions.DefaultModules));
        Assert.That(o.Http.CorsOrigins, Is.EqualTo(new[] { "*" }));
        Assert.That(o.S2s.Routes, Is.Empty);
        Assert.That((o.Auth, o.Limits, o.Tls, o.Logging), Is.EqualTo((new AuthOptions(), new LimitOptions(), new TlsOptions(), new LoggingOptions())));
        Assert.That(o.Storage, Is.EqualTo(new StorageOptions { File = "/etc/xmpp/data/xmpp.db" }));
        Assert.That(ConfigLoader.Parse("<xmppserver>" + Host + "<modules/></xmppserver>", "/x/c.xml").Modules, Is.Empty, "an empty <modules> loads none");
    }

    [Test]
    public void Scram_hashes_are_offered_strongest_first_and_may_be_none()
    {
        var o = ConfigLoader.Parse("<xmppserver>" + Host + "<authentication scram='SHA-1, SHA-512 SHA-1'/></xmppserver>", "/x/c.xml");
        Assert.That(o.Auth.Scram, Is.EqualTo(new[] { ScramHash.Sha512, ScramHash.Sha1 }));
        o = ConfigLoader.Parse("<xmppserver>" + Host + "<authentication scram=''/></xmppserver>", "/x/c.xml");
        Assert.That(o.Auth.Scram, Is.Empty);
        Assert.That(o.Auth.AllowPlain, Is.True);
    }

    [Test]
    public void A_later_element_of_the_same_kind_replaces_the_earlier()
    {
        var o = ConfigLoader.Parse("<xmppserver>" + Host + "<tls required='false'/><limits depth='10'/><tls/><limits roster-items='20'/></xmppserver>", "/x/c.xml");
        Assert.That(o.Tls.Required, Is.True);
        Assert.That(o.Limits, Is.EqualTo(new LimitOptions { RosterItems = 20 }));
    }
}
