using Xmpp.Core.Xml;
using Xmpp.Server.Modules.Offline;

namespace Xmpp.Tests.Server;

public sealed class OfflineRulesTests
{
    [TestCase("<message xmlns='jabber:client' type='chat'><body>hi</body></message>", true)]
    [TestCase("<message xmlns='jabber:client'><body>normal</body></message>", true)]
    [TestCase("<message xmlns='jabber:client' type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>", false)]
    [TestCase("<message xmlns='jabber:client' type='chat'><thread>t</thread><active xmlns='http://jabber.org/protocol/chatstates'/></message>", false)]
    [TestCase("<message xmlns='jabber:client' type='chat'><body>x</body><no-store xmlns='urn:xmpp:hints'/></message>", false)]
    [TestCase("<message xmlns='jabber:client' type='chat'><store xmlns='urn:xmpp:hints'/><gone xmlns='http://jabber.org/protocol/chatstates'/></message>", true)]
    [TestCase("<message xmlns='jabber:client' type='chat'><received xmlns='urn:xmpp:receipts' id='1'/></message>", true)]
    [TestCase("<message xmlns='jabber:client' type='headline'><body>news</body></message>", false)]
    [TestCase("<message xmlns='jabber:client' type='groupchat'><body>room</body></message>", false)]
    [TestCase("<message xmlns='jabber:client' type='error'><body>x</body></message>", false)]
    public void Stores_messages_with_content(string xml, bool expected)
    {
        Assert.That(OfflineModule.ShouldStore(ElementParser.Parse(xml)), Is.EqualTo(expected));
    }
}
