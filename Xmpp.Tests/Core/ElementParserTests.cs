using Xmpp.Core;
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

/// <summary>
/// The fast path (<see cref="ElementParser.TryParseFast"/>) against the XmlReader path: what it accepts it builds
/// exactly as the XmlReader path does, and what it declines the XmlReader path still parses or refuses.
/// </summary>
public sealed class ElementParserFastPathTests
{
    private static readonly string[] Accepted =
    [
        "<message xmlns='jabber:client' to='a@b/c' type='chat' id='1'><body>hi</body></message>",
        "<iq xmlns=\"jabber:client\" type=\"get\" id=\"x\"><query xmlns=\"jabber:iq:roster\"/></iq>",
        "<a><b>x&lt;y&gt;z&amp;&apos;&quot;</b>  <c/> tail</a>",
        "<a v='&#x9;&#xA;&#xD;&#65;&#x1F600;'>&#xD;&#10;</a>",
        "<a xmlns:a0='urn:x' a0:attr='1' xml:lang='en'><b xmlns=''/></a>",
        "<a  x='1'   y=\"2\" ><b /></a>",
        "<a>\u00e9\U0001F600 \n\t text</a>",
        "<x.y-z_1/>",
    ];

    private static readonly string[] Declined =
    [
        "<?xml version='1.0'?><a/>",
        "<!-- c --><a/>",
        "<a><![CDATA[x]]></a>",
        "<a><!-- c --></a>",
        "<a>x > y</a>",
        "<a>x\r\ny</a>",
        "<a v='x\ny'/>",
        "<a\tv='1'/>",
        "<p:a xmlns:p='urn:p'/>",
        "<a><a0:b xmlns:a0='urn:p'/></a>",
        "<\u00e9l\u00e9ment/>",
        "<a>&nbsp;</a>",
        "<a>&#0;</a>",
        "<a>\u0001</a>",
        "<a v='1' v='2'/>",
        "<a xmlns='x' xmlns='y'/>",
        "<a p:v='1'/>",
        "<a></b>",
        "<a><b></a>",
        "<a>",
        "<a x='1",
        "<a/ >",
        "",
        " <a/>",
    ];

    [TestCaseSource(nameof(Accepted))]
    public void Accepts_and_builds_what_the_reader_builds(string xml)
    {
        Assert.That(ElementParser.TryParseFast(xml, out var fast), Is.True);
        Assert.That(Dump(fast!), Is.EqualTo(Dump(ElementParser.ParseWithReader(xml))));
    }

    [TestCaseSource(nameof(Declined))]
    public void Declines_the_rest_for_the_reader(string xml)
    {
        Assert.That(ElementParser.TryParseFast(xml, out _), Is.False);
    }

    [Test]
    public void Declined_input_is_still_parsed_or_refused_as_before()
    {
        Assert.That(ElementParser.Parse("<?xml version='1.0'?><a>x &gt; <!-- c -->y</a>").Text, Is.EqualTo("x > y"));
        Assert.That(ElementParser.Parse("<a>x\r\ny</a>").Text, Is.EqualTo("x\ny"));
        Assert.That(ElementParser.Parse("<a v='x\ny'/>").GetAttribute("v"), Is.EqualTo("x y"));
        Assert.Catch(() => ElementParser.Parse("<a v='1' v='2'/>"));
        Assert.Catch(() => ElementParser.Parse("<a>&#0;</a>"));
        Assert.Catch(() => ElementParser.Parse("<a p:v='1'/>"));
    }

    [Test]
    public void Random_trees_the_writer_wrote_are_built_as_the_reader_builds_them()
    {
        var random = new Random(20261205);
        string[] names = ["message", "body", "x", "item", "a-b", "c.d", "e_f"];
        string[] namespaces = ["jabber:client", "urn:xmpp:delay", string.Empty, "urn:x:a'b\"c&d"];
        string[] texts = ["", " ", "plain", "<&>'\"", "\r\n\t", "\u00e9\U0001F600", "\u0001\uFFFE\uD800x", "]]>", "a\u2028b"];

        Element Tree(int depth, string ns)
        {
            var e = new Element(names[random.Next(names.Length)], random.Next(3) == 0 ? namespaces[random.Next(namespaces.Length)] : ns);
            for (var i = random.Next(4); i > 0; i--)
            {
                var kind = random.Next(4);
                var attrNs = kind == 0 ? Ns.Xml : kind == 1 ? "urn:attr:" + random.Next(3) : string.Empty;
                e.SetAttribute("at" + random.Next(5), attrNs, texts[random.Next(texts.Length)]);
            }

            for (var i = depth > 0 ? random.Next(4) : 0; i > 0; i--)
            {
                if (random.Next(2) == 0)
                {
                    e.AddText(texts[random.Next(texts.Length)]);
                }
                else
                {
                    e.Add(Tree(depth - 1, e.Namespace));
                }
            }

            return e;
        }

        var fastCount = 0;
        for (var n = 0; n < 3000; n++)
        {
            var xml = Tree(4, "jabber:client").ToString();
            var expected = Dump(ElementParser.ParseWithReader(xml));
            if (ElementParser.TryParseFast(xml, out var fast))
            {
                fastCount++;
                Assert.That(Dump(fast!), Is.EqualTo(expected), xml);
            }

            Assert.That(Dump(ElementParser.Parse(xml)), Is.EqualTo(expected), xml);
        }

        // The writer's output is the fast path's to take, all of it.
        Assert.That(fastCount, Is.EqualTo(3000));
    }

    /// <summary>Everything the tree holds, text nodes apart (adjacent text may be split differently and means the same).</summary>
    private static string Dump(Element e)
    {
        var sb = new System.Text.StringBuilder();
        void Walk(Element x)
        {
            sb.Append('{').Append(x.Namespace).Append('}').Append(x.Name);
            foreach (var a in x.Attributes)
            {
                sb.Append(" {").Append(a.Namespace).Append('}').Append(a.LocalName).Append("=[").Append(a.Value).Append(']');
            }

            sb.Append('(');
            var text = new System.Text.StringBuilder();
            foreach (var node in x.Nodes)
            {
                if (node is string s)
                {
                    text.Append(s);
                    continue;
                }

                sb.Append("text[").Append(text).Append(']');
                text.Clear();
                Walk((Element)node);
            }

            sb.Append("text[").Append(text).Append("])");
        }

        Walk(e);
        return sb.ToString();
    }
}
