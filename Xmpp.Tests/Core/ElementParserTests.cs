using Xmpp.Core.Xml;

namespace Xmpp.Tests.Core;

public sealed class ElementParserTests
{
    [Test]
    public void Round_trips_what_the_serializer_writes()
    {
        var original = new Element("message", "jabber:client")
            .SetAttribute("to", "bob@localhost")
            .SetAttribute("lang", "http://www.w3.org/XML/1998/namespace", "en");
        original.AddChild("body").AddText("a < b & \"c\" 'd' \u00e9\U0001F600");
        original.Add(new Element("delay", "urn:xmpp:delay").SetAttribute("stamp", "2026-01-01T00:00:00Z"));
        var parsed = ElementParser.Parse(original.ToString());
        Assert.That(parsed.ToString(), Is.EqualTo(original.ToString()));
        Assert.That(parsed.ChildText("body", "jabber:client"), Is.EqualTo("a < b & \"c\" 'd' \u00e9\U0001F600"));
        Assert.That(parsed.GetAttribute("lang", "http://www.w3.org/XML/1998/namespace"), Is.EqualTo("en"));
        Assert.That(parsed.Child("delay", "urn:xmpp:delay")!.GetAttribute("stamp"), Is.EqualTo("2026-01-01T00:00:00Z"));
    }

    [Test]
    public void Refuses_a_dtd()
    {
        Assert.Throws<System.Xml.XmlException>(() => ElementParser.Parse("<!DOCTYPE x [<!ENTITY a 'b'>]><x>&a;</x>"));
    }
}
