using Xmpp.Core.Caps;
using Xmpp.Core.Xml;

namespace Xmpp.Tests.Core;

/// <summary>XEP-0115 §5 with the XEP's own examples.</summary>
public sealed class EntityCapabilitiesTests
{
    [Test]
    public void Simple_generation_example()
    {
        var query = ElementParser.Parse("""
            <query xmlns='http://jabber.org/protocol/disco#info'>
              <identity category='client' name='Exodus 0.9.1' type='pc'/>
              <feature var='http://jabber.org/protocol/caps'/>
              <feature var='http://jabber.org/protocol/disco#info'/>
              <feature var='http://jabber.org/protocol/disco#items'/>
              <feature var='http://jabber.org/protocol/muc'/>
            </query>
            """);
        Assert.That(EntityCapabilities.Verification(query), Is.EqualTo("QgayPKawpkPSDYmwT/WM94uAlu0="));
    }

    [Test]
    public void Complex_generation_example()
    {
        var query = ElementParser.Parse("""
            <query xmlns='http://jabber.org/protocol/disco#info'>
              <identity xml:lang='en' category='client' name='Psi 0.11' type='pc'/>
              <identity xml:lang='el' category='client' name='Ψ 0.11' type='pc'/>
              <feature var='http://jabber.org/protocol/caps'/>
              <feature var='http://jabber.org/protocol/disco#info'/>
              <feature var='http://jabber.org/protocol/disco#items'/>
              <feature var='http://jabber.org/protocol/muc'/>
              <x xmlns='jabber:x:data' type='result'>
                <field var='FORM_TYPE' type='hidden'><value>urn:xmpp:dataforms:softwareinfo</value></field>
                <field var='ip_version' type='text-multi'><value>ipv4</value><value>ipv6</value></field>
                <field var='os'><value>Mac</value></field>
                <field var='os_version'><value>10.5.1</value></field>
                <field var='software'><value>Psi</value></field>
                <field var='software_version'><value>0.11</value></field>
              </x>
            </query>
            """);
        Assert.That(EntityCapabilities.Verification(query), Is.EqualTo("q07IKJEyjvHSyhy//CH0CxmKi8w="));
    }

    [TestCase("<feature var='a'/><feature var='a'/>")]
    [TestCase("<identity category='client' type='pc'/><identity category='client' type='pc'/>")]
    [TestCase("<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE'><value>x</value></field></x>")]
    public void Ill_formed_results_are_not_cached(string children)
    {
        var query = ElementParser.Parse($"<query xmlns='http://jabber.org/protocol/disco#info'>{children}</query>");
        Assert.That(EntityCapabilities.Verification(query), Is.Null);
    }
}
