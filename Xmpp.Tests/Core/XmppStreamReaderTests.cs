using System.Text;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;

namespace Xmpp.Tests.Core;

public sealed class XmppStreamReaderTests
{
    private const string Header = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>";


    private static async Task<List<XmppStreamEvent>> ReadAll(string xml, int chunk = 4096, XmlReaderLimits? limits = null)
    {
        using var reader = new XmppStreamReader(new ChunkedStream(Encoding.UTF8.GetBytes(xml), chunk), limits);
        var events = new List<XmppStreamEvent>();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        while (true)
        {
            var ev = await reader.ReadAsync(cts.Token);
            events.Add(ev);
            if (ev.Kind is XmppStreamEventKind.End or XmppStreamEventKind.Eof)
            {
                return events;
            }
        }
    }

    private static async Task<StreamErrorCondition> ErrorOf(string xml, int chunk = 4096, XmlReaderLimits? limits = null)
    {
        var ex = Assert.ThrowsAsync<XmppStreamException>(async () => await ReadAll(xml, chunk, limits));
        await Task.CompletedTask;
        return ex!.Condition;
    }

    [Test]
    public async Task Header_stanzas_and_end_are_reported()
    {
        var events = await ReadAll(Header + "<message to='a@b'><body>hi &amp; bye</body></message><presence/></stream:stream>");
        Assert.That(events.Select(e => e.Kind), Is.EqualTo(new[] { XmppStreamEventKind.Header, XmppStreamEventKind.Element, XmppStreamEventKind.Element, XmppStreamEventKind.End }));
        Assert.That(events[0].Header!.To, Is.EqualTo("localhost"));
        Assert.That(events[0].Header!.DefaultNamespace, Is.EqualTo("jabber:client"));
        var message = events[1].Element!;
        Assert.That(message.Namespace, Is.EqualTo("jabber:client"));
        Assert.That(message.ChildText("body", "jabber:client"), Is.EqualTo("hi & bye"));
    }

    [TestCase(1)]
    [TestCase(2)]
    [TestCase(7)]
    public async Task Stanzas_split_across_reads_parse_the_same(int chunk)
    {
        var xml = Header + "<iq type='get' id='1'><query xmlns='jabber:iq:roster'/></iq> \n <message><body>ünïcödé ☃</body></message></stream:stream>";
        var whole = await ReadAll(xml, 65536);
        var split = await ReadAll(xml, chunk);
        Assert.That(split.Select(e => e.Element?.ToString()), Is.EqualTo(whole.Select(e => e.Element?.ToString())));
        Assert.That(split[2].Element!.ChildText("body", "jabber:client"), Is.EqualTo("ünïcödé ☃"));
    }

    [Test]
    public async Task Whitespace_keepalives_are_ignored()
    {
        var events = await ReadAll(Header + "   \n\t  <presence/>  \n</stream:stream>");
        Assert.That(events.Count(e => e.Kind == XmppStreamEventKind.Element), Is.EqualTo(1));
    }

    [Test]
    public async Task Connection_closed_without_closing_tag_is_eof()
    {
        var events = await ReadAll(Header + "<presence/>");
        Assert.That(events[^1].Kind, Is.EqualTo(XmppStreamEventKind.Eof));
    }

    [Test]
    public async Task Comment_is_restricted_xml() =>
        Assert.That(await ErrorOf(Header + "<!-- hello --><presence/>"), Is.EqualTo(StreamErrorCondition.RestrictedXml));

    [Test]
    public async Task Processing_instruction_is_restricted_xml() =>
        Assert.That(await ErrorOf(Header + "<?evil stuff?><presence/>"), Is.EqualTo(StreamErrorCondition.RestrictedXml));

    [Test]
    public async Task Billion_laughs_dtd_is_refused_without_expansion()
    {
        var sb = new StringBuilder("<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol 'lol'>");
        for (var i = 1; i < 10; i++)
        {
            sb.Append($"<!ENTITY lol{i} '{string.Concat(Enumerable.Repeat($"&lol{i - 1};", 10))}'>");
        }

        sb.Append("]><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'><message><body>&lol9;</body></message>");
        var before = GC.GetTotalMemory(false);
        Assert.That(await ErrorOf(sb.ToString()), Is.EqualTo(StreamErrorCondition.RestrictedXml));
        Assert.That(GC.GetTotalMemory(false) - before, Is.LessThan(50_000_000));
    }

    [Test]
    public async Task External_entity_is_never_fetched() =>
        Assert.That(await ErrorOf("<?xml version='1.0'?><!DOCTYPE x [<!ENTITY xxe SYSTEM 'file:///etc/passwd'>]><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'><message><body>&xxe;</body></message>"),
            Is.EqualTo(StreamErrorCondition.RestrictedXml));

    [Test]
    public async Task Undeclared_entity_reference_is_not_well_formed() =>
        Assert.That(await ErrorOf(Header + "<message><body>&foo;</body></message>"), Is.EqualTo(StreamErrorCondition.NotWellFormed));

    [Test]
    public async Task Mismatched_tags_are_not_well_formed() =>
        Assert.That(await ErrorOf(Header + "<message><body></message>"), Is.EqualTo(StreamErrorCondition.NotWellFormed));

    [Test]
    public async Task Invalid_utf8_is_not_well_formed()
    {
        var bytes = Encoding.UTF8.GetBytes(Header + "<message><body>").Concat(new byte[] { 0xC3, 0x28, 0xFF }).Concat(Encoding.UTF8.GetBytes("</body></message>")).ToArray();
        using var reader = new XmppStreamReader(new MemoryStream(bytes));
        await reader.ReadAsync(CancellationToken.None);
        var ex = Assert.ThrowsAsync<XmppStreamException>(async () => await reader.ReadAsync(CancellationToken.None));
        Assert.That(ex!.Condition, Is.EqualTo(StreamErrorCondition.NotWellFormed));
    }

    [Test]
    public async Task Text_outside_stanzas_is_bad_format() =>
        Assert.That(await ErrorOf(Header + "hello<presence/>"), Is.EqualTo(StreamErrorCondition.BadFormat));

    [Test]
    public async Task Oversized_stanza_is_a_policy_violation()
    {
        var limits = new XmlReaderLimits { MaxStanzaBytes = 10_000 };
        Assert.That(await ErrorOf(Header + "<message><body>" + new string('x', 20_000) + "</body></message>", limits: limits), Is.EqualTo(StreamErrorCondition.PolicyViolation));
    }

    [Test]
    public async Task Huge_single_attribute_is_refused_before_it_is_buffered()
    {
        var limits = new XmlReaderLimits { MaxStanzaBytes = 10_000 };
        Assert.That(await ErrorOf(Header + "<message to='" + new string('x', 5_000_000) + "'/>", limits: limits), Is.EqualTo(StreamErrorCondition.PolicyViolation));
    }

    [Test]
    public async Task Many_small_stanzas_are_not_counted_together()
    {
        var limits = new XmlReaderLimits { MaxStanzaBytes = 10_000 };
        var xml = Header + string.Concat(Enumerable.Repeat("<message><body>" + new string('y', 900) + "</body></message>", 200)) + "</stream:stream>";
        var events = await ReadAll(xml, limits: limits);
        Assert.That(events.Count(e => e.Kind == XmppStreamEventKind.Element), Is.EqualTo(200));
    }

    [Test]
    public async Task Deep_nesting_is_a_policy_violation() =>
        Assert.That(await ErrorOf(Header + "<message>" + string.Concat(Enumerable.Repeat("<a>", 200)) + string.Concat(Enumerable.Repeat("</a>", 200)) + "</message>"),
            Is.EqualTo(StreamErrorCondition.PolicyViolation));

    [Test]
    public async Task Reader_returns_header_without_waiting_for_more_data()
    {
        // A live socket: only the header has arrived. The reader must report it without blocking.
        var pipe = new System.IO.Pipelines.Pipe();
        await pipe.Writer.WriteAsync(Encoding.UTF8.GetBytes(Header));
        using var reader = new XmppStreamReader(pipe.Reader.AsStream());
        var ev = await reader.ReadAsync(CancellationToken.None).AsTask().WaitAsync(TimeSpan.FromSeconds(5));
        Assert.That(ev.Kind, Is.EqualTo(XmppStreamEventKind.Header));
        await pipe.Writer.WriteAsync(Encoding.UTF8.GetBytes("<presence/>"));
        ev = await reader.ReadAsync(CancellationToken.None).AsTask().WaitAsync(TimeSpan.FromSeconds(5));
        Assert.That(ev.Element!.Name, Is.EqualTo("presence"));
    }

    [Test]
    public void Serializer_never_writes_characters_xml_forbids() =>
        Assert.That(ElementWriter.Escape("a\u0007b\uD800c\tok"), Is.EqualTo("a\uFFFDb\uFFFDc\tok"));

    [Test]
    public void Serializer_escapes_and_inherits_the_namespace()
    {
        var e = new Element("message", "jabber:client").SetAttribute("to", "a'b<c");
        e.AddChild("body").AddText("1 < 2 & \"3\"");
        e.Add(new Element("x", "urn:x").SetAttribute("lang", "http://www.w3.org/XML/1998/namespace", "en"));
        Assert.That(ElementWriter.ToXml(e, "jabber:client"),
            Is.EqualTo("<message to='a&apos;b&lt;c'><body>1 &lt; 2 &amp; &quot;3&quot;</body><x xmlns='urn:x' xml:lang='en'/></message>"));
    }
}
