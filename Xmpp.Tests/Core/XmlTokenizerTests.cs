using System.Text;
using Xmpp.Core;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;

namespace Xmpp.Tests.Core;

/// <summary>
/// The stream reader's own XML tokenizer: XML 1.0 and Namespaces in XML 1.0 well-formedness, RFC 6120 §11
/// restrictions, and agreement with System.Xml (the reference) on generated stanzas split at every byte.
/// </summary>
public sealed class XmlTokenizerTests
{
    private const string Header = "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>";


    private static async Task<List<Element>> Stanzas(string body, int chunk = 4096) => await Stanzas(Encoding.UTF8.GetBytes(Header + body + "</stream:stream>"), chunk);

    private static async Task<List<Element>> Stanzas(byte[] bytes, int chunk = 4096, XmlReaderLimits? limits = null)
    {
        using var reader = new XmppStreamReader(new ChunkedStream(bytes, chunk), limits);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var result = new List<Element>();
        while (true)
        {
            var ev = await reader.ReadAsync(cts.Token);
            if (ev.Kind == XmppStreamEventKind.Element)
            {
                result.Add(ev.Element!);
            }
            else if (ev.Kind != XmppStreamEventKind.Header)
            {
                return result;
            }
        }
    }

    private static StreamErrorCondition ErrorOf(string body, XmlReaderLimits? limits = null) => ErrorOfRaw(Header + body, limits);

    private static StreamErrorCondition ErrorOfRaw(string xml, XmlReaderLimits? limits = null)
    {
        var ex = Assert.ThrowsAsync<XmppStreamException>(async () => await Stanzas(Encoding.UTF8.GetBytes(xml), 4096, limits));
        return ex!.Condition;
    }

    [Test]
    public async Task Cdata_is_literal_text()
    {
        var m = (await Stanzas("<message><body><![CDATA[a <b> & c]]>!</body></message>"))[0];
        Assert.That(m.ChildText("body", Ns.Client), Is.EqualTo("a <b> & c!"));
    }

    [Test]
    public async Task Character_references_are_expanded()
    {
        var m = (await Stanzas("<message><body>&#65;&#x42;&#x1F600;&lt;&gt;&quot;&apos;&amp;</body></message>"))[0];
        Assert.That(m.ChildText("body", Ns.Client), Is.EqualTo("AB\U0001F600<>\"'&"));
    }

    [TestCase("&#0;")]
    [TestCase("&#xD800;")]
    [TestCase("&#xFFFE;")]
    [TestCase("&#99999999999;")]
    [TestCase("&#X41;")]
    [TestCase("&#;")]
    [TestCase("& ;")]
    [TestCase("a & b")]
    [TestCase("]]>")]
    public void Bad_character_data_is_not_well_formed(string text) =>
        Assert.That(ErrorOf($"<message><body>{text}</body></message>"), Is.EqualTo(StreamErrorCondition.NotWellFormed));

    [TestCase("<message to='a''/><presence/>")]
    [TestCase("<message to=a/>")]
    [TestCase("<message to='a'from='b'/>")]
    [TestCase("<message to='<'/>")]
    [TestCase("<message to='a' to='b'/>")]
    [TestCase("<message xmlns:p='urn:p' xmlns:q='urn:p' p:a='1' q:a='2'/>")]
    [TestCase("<message><p:x/></message>")]
    [TestCase("<message p:a='1'/>")]
    [TestCase("<message xmlns:p=''/>")]
    [TestCase("<message xmlns:xmlns='urn:x'/>")]
    [TestCase("<message xmlns:xml='urn:x'/>")]
    [TestCase("<1message/>")]
    [TestCase("<a:b:c xmlns:a='urn:a'/>")]
    [TestCase("<message></presence>")]
    [TestCase("<p:x xmlns:p='urn:p'></q:x>")]
    [TestCase("<p:x xmlns:p='urn:p'></x>")]
    [TestCase("<message/ >")]
    [TestCase("<message><body>a\0b</body></message>")]
    [TestCase("<message><![CDAT[x]]></message>")]
    public void Malformed_markup_is_not_well_formed(string stanza) =>
        Assert.That(ErrorOf(stanza), Is.EqualTo(StreamErrorCondition.NotWellFormed));

    [Test]
    public async Task Prefixes_resolve_in_scope_and_end_tags_match_them()
    {
        var stanzas = await Stanzas("<stream:features><p:x xmlns:p='urn:p' p:a='1'><p:y><z xmlns='urn:z'/></p:y></p:x></stream:features>");
        var features = stanzas[0];
        Assert.That(features.Namespace, Is.EqualTo(Ns.Stream));
        var x = features.FirstElement()!;
        Assert.That((x.Name, x.Namespace, x.GetAttribute("a", "urn:p")), Is.EqualTo(("x", "urn:p", "1")));
        Assert.That(x.FirstElement()!.FirstElement()!.Namespace, Is.EqualTo("urn:z"));
    }

    [Test]
    public void A_prefix_goes_out_of_scope_with_its_element() =>
        Assert.That(ErrorOf("<message><x xmlns:p='urn:p'/><p:y/></message>"), Is.EqualTo(StreamErrorCondition.NotWellFormed));

    [Test]
    public async Task Line_ends_and_attribute_whitespace_are_normalised()
    {
        var m = (await Stanzas("<message id='a&#10;b\tc\r\nd'><body>1\r\n2\r3</body></message>"))[0];
        Assert.That(m.GetAttribute("id"), Is.EqualTo("a\nb c d"));
        Assert.That(m.ChildText("body", Ns.Client), Is.EqualTo("1\n2\n3"));
    }

    [Test]
    public async Task Non_ascii_names_are_accepted()
    {
        var m = (await Stanzas("<message><ñandú xmlns='urn:x' größe='1'/></message>"))[0];
        Assert.That(m.FirstElement()!.GetAttribute("größe"), Is.EqualTo("1"));
    }

    [Test]
    public void Other_encodings_are_unsupported() =>
        Assert.That(ErrorOfRaw("<?xml version='1.0' encoding='UTF-16'?>" + Header), Is.EqualTo(StreamErrorCondition.UnsupportedEncoding));

    [Test]
    public async Task Byte_order_mark_and_declaration_are_accepted()
    {
        var bytes = new byte[] { 0xEF, 0xBB, 0xBF }.Concat(Encoding.UTF8.GetBytes("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n" + Header + "<presence/></stream:stream>")).ToArray();
        Assert.That(await Stanzas(bytes, 1), Has.Count.EqualTo(1));
    }

    [Test]
    public void Declaration_after_the_start_is_restricted() =>
        Assert.That(ErrorOf("<?xml version='1.0'?><presence/>"), Is.EqualTo(StreamErrorCondition.RestrictedXml));

    // Found by fuzzing: the '?' of "<?" was taken for the start of "?>", and the reader threw
    // ArgumentOutOfRangeException instead of a stream error.
    [TestCase("<?>")]
    [TestCase("<?>vvv")]
    [TestCase("<??>")]
    public void Malformed_processing_instruction_at_the_start_is_restricted(string start) =>
        Assert.That(ErrorOfRaw(start + Header), Is.EqualTo(StreamErrorCondition.RestrictedXml));

    // Found by fuzzing: names valid in XML 1.0 5th edition that System.Xml and expat (4th edition rules)
    // refuse; forwarding them would break the receiver's stream.
    [TestCase("<presence\u0700/>")]
    [TestCase("<iq type='result' id\uFFCB='2'/>")]
    [TestCase("<message><x\U00010400 xmlns='urn:x'/></message>")]
    public void Names_outside_the_4th_edition_rules_are_not_well_formed(string stanza) =>
        Assert.That(ErrorOf(stanza), Is.EqualTo(StreamErrorCondition.NotWellFormed));

    // Found by fuzzing: tab and line feed that arrived as character references in an attribute were written
    // literally, and the next parser normalised them to spaces.
    [Test]
    public async Task Whitespace_character_references_in_attributes_survive_a_round_trip()
    {
        var m = (await Stanzas("<message id='a&#x9;b&#xA;c&#xD;d'><x xmlns='urn:&#x9;x'/></message>"))[0];
        Assert.That(m.GetAttribute("id"), Is.EqualTo("a\tb\nc\rd"));
        var again = ElementParser.Parse(ElementWriter.ToXml(m, null));
        Assert.That(again.GetAttribute("id"), Is.EqualTo("a\tb\nc\rd"));
        Assert.That(again.FirstElement()!.Namespace, Is.EqualTo("urn:\tx"));
    }

    // Found by fuzzing: an element in the xml namespace was written as xmlns='...XML/1998/namespace', which
    // no parser accepts.
    [Test]
    public void Element_in_the_xml_namespace_is_bad_format() =>
        Assert.That(ErrorOf("<message><xml:c/></message>"), Is.EqualTo(StreamErrorCondition.BadFormat));

    [Test]
    public void Text_before_the_header_is_not_well_formed() =>
        Assert.That(ErrorOfRaw("hello" + Header), Is.EqualTo(StreamErrorCondition.NotWellFormed));

    [Test]
    public void Thousands_of_namespace_declarations_are_a_policy_violation()
    {
        var decls = string.Concat(Enumerable.Range(0, 5000).Select(i => $" xmlns:p{i}='urn:{i}'"));
        Assert.That(ErrorOf($"<message{decls}/>"), Is.EqualTo(StreamErrorCondition.PolicyViolation));
    }

    [Test]
    public async Task An_idle_reader_holds_no_buffer()
    {
        var pipe = new System.IO.Pipelines.Pipe();
        using var reader = new XmppStreamReader(pipe.Reader.AsStream());
        await pipe.Writer.WriteAsync(Encoding.UTF8.GetBytes(Header + "<presence/> "));
        Assert.That((await reader.ReadAsync(CancellationToken.None)).Kind, Is.EqualTo(XmppStreamEventKind.Header));
        Assert.That((await reader.ReadAsync(CancellationToken.None)).Kind, Is.EqualTo(XmppStreamEventKind.Element));
        var next = reader.ReadAsync(CancellationToken.None).AsTask();
        await Task.Delay(50);
        Assert.That(reader.HoldsBuffer, Is.False, "nothing pending: no buffer while waiting");
        await pipe.Writer.WriteAsync(Encoding.UTF8.GetBytes("<message><body>half"));
        await Task.Delay(50);
        Assert.That(next.IsCompleted, Is.False);
        Assert.That(reader.HoldsBuffer, Is.True, "a partial stanza is kept");
        await pipe.Writer.WriteAsync(Encoding.UTF8.GetBytes("</body></message>"));
        var ev = await next.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.That(ev.Element!.ChildText("body", Ns.Client), Is.EqualTo("half"));
        Assert.That(reader.HoldsBuffer, Is.False);
    }

    [Test]
    public async Task Generated_stanzas_parse_as_system_xml_parses_them_at_any_split()
    {
        var random = new Random(6120);
        var stanzas = Enumerable.Range(0, 300).Select(_ => RandomElement(random, 0)).ToList();
        var xml = new StringBuilder(Header);
        var expected = new List<string>();
        foreach (var s in stanzas)
        {
            var text = s.ToString();
            xml.Append(text).Append(random.Next(3) == 0 ? " \n" : string.Empty);
            expected.Add(ElementParser.Parse(text).ToString());
        }

        xml.Append("</stream:stream>");
        var bytes = Encoding.UTF8.GetBytes(xml.ToString());
        foreach (var chunk in new[] { 1, 2, 3, 5, 13, 100, 4096, 1 << 20 })
        {
            var parsed = (await Stanzas(bytes, chunk)).Select(e => e.ToString()).ToList();
            Assert.That(parsed, Is.EqualTo(expected), $"chunk {chunk}");
        }
    }

    private static readonly string[] Names = ["message", "body", "x", "item", "ñ", "a-b.c_d", "query"];
    private static readonly string[] Namespaces = [Ns.Client, "urn:x", "http://jabber.org/protocol/caps", "urn:ü"];
    private static readonly string[] Texts = ["hi", "a & b", "1 < 2 > 0", "\"quoted\" 'too'", "]]", "]]>", "ünïcödé ☃ \U0001F600", "line\nbreak\ttab", "  ", "&amp;"];

    private static Element RandomElement(Random random, int depth)
    {
        var e = new Element(Names[random.Next(Names.Length)], depth == 0 ? Ns.Client : Namespaces[random.Next(Namespaces.Length)]);
        for (var i = random.Next(4); i > 0; i--)
        {
            e.SetAttribute("a" + i, Texts[random.Next(Texts.Length)].Replace("\n", " ", StringComparison.Ordinal).Replace("\t", " ", StringComparison.Ordinal));
        }

        if (random.Next(4) == 0)
        {
            e.SetAttribute("lang", Ns.Xml, "en");
        }

        for (var i = depth < 4 ? random.Next(4) : 0; i > 0; i--)
        {
            if (random.Next(2) == 0)
            {
                e.Add(RandomElement(random, depth + 1));
            }
            else
            {
                e.AddText(Texts[random.Next(Texts.Length)]);
            }
        }

        return e;
    }
}
