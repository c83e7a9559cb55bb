using System.Text;
using Xmpp.Core;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;

namespace Xmpp.Tests.Core;

/// <summary>The stream reader on whole messages (WebSocket, BOSH) and the UTF-8 writer that answers them.</summary>
public sealed class MessageReaderTests
{
    private static Element? Parse(string message, XmlReaderLimits? limits = null) =>
        XmppStreamReader.ForMessages(limits).ParseMessage(Encoding.UTF8.GetBytes(message));

    [Test]
    public void A_message_is_one_element_in_jabber_client_by_default()
    {
        var reader = XmppStreamReader.ForMessages();
        var first = reader.ParseMessage("<message to='a@b'><body>hi &amp; bye</body></message>"u8);
        Assert.That(first!.Is("message", Ns.Client));
        Assert.That(first.ChildText("body", Ns.Client), Is.EqualTo("hi & bye"));

        // The same reader goes on with the next message, prefixes declared in the last one forgotten.
        var second = reader.ParseMessage(" <x:a xmlns:x='urn:x'/>\n"u8);
        Assert.That(second!.Is("a", "urn:x"));
        Assert.That(() => reader.ParseMessage("<x:a/>"u8), Throws.TypeOf<XmppStreamException>());
        Assert.That(reader.ParseMessage("<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>"u8)!.Is("error", Ns.Stream));
    }

    [Test]
    public void Whitespace_only_is_no_element_and_a_declaration_may_lead()
    {
        Assert.That(Parse("  \r\n"), Is.Null);
        Assert.That(Parse("<?xml version='1.0'?><open xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>")!.Is("open", Ns.Framing));
    }

    [TestCase("<a/><b/>", StreamErrorCondition.NotWellFormed)]
    [TestCase("<a>", StreamErrorCondition.NotWellFormed)]
    [TestCase("<a/>text", StreamErrorCondition.BadFormat)]
    [TestCase("</a>", StreamErrorCondition.NotWellFormed)]
    [TestCase("<a><!-- c --></a>", StreamErrorCondition.RestrictedXml)]
    [TestCase("<a/><?pi?>", StreamErrorCondition.RestrictedXml)]
    public void Anything_but_one_complete_element_is_the_streams_error(string message, StreamErrorCondition condition)
    {
        var ex = Assert.Throws<XmppStreamException>(() => Parse(message));
        Assert.That(ex!.Condition, Is.EqualTo(condition), ex.Message);
    }

    [Test]
    public void The_limits_of_a_stream_hold_per_message()
    {
        var limits = new XmlReaderLimits { MaxStanzaBytes = 64, MaxDepth = 2 };
        Assert.That(Assert.Throws<XmppStreamException>(() => Parse("<a>" + new string('x', 100) + "</a>", limits))!.Condition, Is.EqualTo(StreamErrorCondition.PolicyViolation));
        Assert.That(Assert.Throws<XmppStreamException>(() => Parse("<a><b><c/></b></a>", limits))!.Condition, Is.EqualTo(StreamErrorCondition.PolicyViolation));
        Assert.That(Parse("<a><b/></a>", limits), Is.Not.Null);
    }

    [Test]
    public void The_utf8_writer_writes_what_the_text_writer_writes()
    {
        var e = new Element("message", Ns.Client).SetAttribute("to", "a\t<b>'\"&").SetAttribute("lang", Ns.Xml, "en").SetAttribute("x", "urn:other", "y");
        e.AddChild("body", Ns.Client).AddText("héllo 😀 \u0001 \uD800 ]]> \r\n");
        e.AddChild("x", "urn:x").AddChild("y");
        foreach (var parent in new string?[] { null, Ns.Client, "http://jabber.org/protocol/httpbind" })
        {
            var sb = new StringBuilder();
            ElementWriter.Write(sb, e, parent);
            var w = new PooledBufferWriter();
            Utf8ElementWriter.Write(w, e, parent);
            Assert.That(Encoding.UTF8.GetString(w.WrittenSpan), Is.EqualTo(sb.ToString()));
            w.Release();
        }
    }

    [Test]
    public void A_prefixed_element_declares_its_prefix_when_asked()
    {
        var features = new Element("features", Ns.Stream);
        features.AddChild("mechanisms", Ns.Sasl).AddChild("mechanism", Ns.Sasl).AddText("PLAIN");
        var w = new PooledBufferWriter();
        Utf8ElementWriter.WritePrefixed(w, "stream", features, declare: true, childrenParent: Ns.Stream);
        Assert.That(Encoding.UTF8.GetString(w.WrittenSpan), Is.EqualTo(
            "<stream:features xmlns:stream='http://etherx.jabber.org/streams'><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>"));
        w.Release();
        Assert.That(w.WrittenCount, Is.Zero);
    }
}
