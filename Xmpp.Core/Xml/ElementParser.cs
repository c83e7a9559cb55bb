using System.Xml;

namespace Xmpp.Core.Xml;

/// <summary>
/// Parses one element from a string the server itself wrote (stored offline messages, pending
/// subscription requests). Restricted like the stream reader: no DTD, no external resources.
/// </summary>
public static partial class ElementParser
{
    private static readonly XmlReaderSettings Settings = new()
    {
        DtdProcessing = DtdProcessing.Prohibit,
        XmlResolver = null,
        IgnoreComments = true,
        IgnoreProcessingInstructions = true,
        CloseInput = true,
    };

    public static Element Parse(string xml) => TryParseFast(xml, out var element) ? element! : ParseWithReader(xml);

    /// <summary>The general path: any well-formed element, through a restricted XmlReader.</summary>
    internal static Element ParseWithReader(string xml)
    {
        using var reader = XmlReader.Create(new StringReader(xml), Settings);
        var open = new Stack<Element>();
        while (reader.Read())
        {
            switch (reader.NodeType)
            {
                case XmlNodeType.Element:
                    {
                        var element = new Element(reader.LocalName, reader.NamespaceURI);
                        if (reader.MoveToFirstAttribute())
                        {
                            do
                            {
                                if (reader.NamespaceURI != Ns.Xmlns)
                                {
                                    element.SetAttribute(reader.LocalName, reader.NamespaceURI, reader.Value);
                                }
                            }
                            while (reader.MoveToNextAttribute());
                            reader.MoveToElement();
                        }

                        if (open.Count > 0)
                        {
                            open.Peek().Add(element);
                        }

                        if (reader.IsEmptyElement)
                        {
                            if (open.Count == 0)
                            {
                                return element;
                            }
                        }
                        else
                        {
                            open.Push(element);
                        }

                        break;
                    }

                case XmlNodeType.EndElement:
                    {
                        var element = open.Pop();
                        if (open.Count == 0)
                        {
                            return element;
                        }

                        break;
                    }

                case XmlNodeType.Text:
                case XmlNodeType.CDATA:
                case XmlNodeType.SignificantWhitespace:
                case XmlNodeType.Whitespace:
                    if (open.Count > 0)
                    {
                        open.Peek().AddText(reader.Value);
                    }

                    break;

                default:
                    break;
            }
        }

        throw new FormatException("no element in the input");
    }
}
