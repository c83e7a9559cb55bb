using System.Text;

namespace Xmpp.Core.Xml;

/// <summary>
/// A small mutable XML element: qualified name, attributes, and child nodes (elements or text).
/// The parser builds it; after that the server treats received elements as read-only and copies before changing.
/// </summary>
public sealed class Element
{
    private List<XmlAttr>? _attributes;
    private List<object>? _nodes;

    public Element(string name, string ns)
    {
        Name = name;
        Namespace = ns;
    }

    public string Name { get; }

    public string Namespace { get; }

    /// <summary>
    /// About how many bytes this element took on the wire when a stream reader parsed it as a stanza;
    /// 0 for elements built in code. Output queues use it to bound the memory a slow reader can hold.
    /// </summary>
    public int WireSize { get; set; }

    public IReadOnlyList<XmlAttr> Attributes => (IReadOnlyList<XmlAttr>?)_attributes ?? [];

    /// <summary>Child nodes in document order: <see cref="Element"/> or <see cref="string"/> (text).</summary>
    public IReadOnlyList<object> Nodes => (IReadOnlyList<object>?)_nodes ?? [];

    public bool Is(string name, string ns) => Name == name && Namespace == ns;

    public string? GetAttribute(string localName) => GetAttribute(localName, string.Empty);

    public string? GetAttribute(string localName, string ns)
    {
        if (_attributes is null)
        {
            return null;
        }

        foreach (var a in _attributes)
        {
            if (a.LocalName == localName && a.Namespace == ns)
            {
                return a.Value;
            }
        }

        return null;
    }

    /// <summary>Sets, replaces or (with a null value) removes an unqualified attribute.</summary>
    public Element SetAttribute(string localName, string? value) => SetAttribute(localName, string.Empty, value);

    public Element SetAttribute(string localName, string ns, string? value)
    {
        _attributes ??= [];
        for (var i = 0; i < _attributes.Count; i++)
        {
            if (_attributes[i].LocalName == localName && _attributes[i].Namespace == ns)
            {
                if (value is null)
                {
                    _attributes.RemoveAt(i);
                }
                else
                {
                    _attributes[i] = new XmlAttr(localName, ns, value);
                }

                return this;
            }
        }

        if (value is not null)
        {
            _attributes.Add(new XmlAttr(localName, ns, value));
        }

        return this;
    }

    public Element Add(Element child)
    {
        (_nodes ??= []).Add(child);
        return this;
    }

    public Element AddText(string text)
    {
        if (text.Length > 0)
        {
            (_nodes ??= []).Add(text);
        }

        return this;
    }

    /// <summary>Adds a child element and returns the child (for building nested trees).</summary>
    public Element AddChild(string name, string? ns = null)
    {
        var child = new Element(name, ns ?? Namespace);
        Add(child);
        return child;
    }

    /// <summary>Removes every child element with this name and namespace; returns how many.</summary>
    public int RemoveChildren(string name, string ns) => RemoveChildren(e => e.Name == name && e.Namespace == ns);

    /// <summary>Removes every child element that matches; returns how many.</summary>
    public int RemoveChildren(Func<Element, bool> match) => _nodes?.RemoveAll(n => n is Element e && match(e)) ?? 0;

    public IEnumerable<Element> Elements()
    {
        if (_nodes is null)
        {
            yield break;
        }

        foreach (var n in _nodes)
        {
            if (n is Element e)
            {
                yield return e;
            }
        }
    }

    public Element? FirstElement()
    {
        if (_nodes is not null)
        {
            foreach (var n in _nodes)
            {
                if (n is Element e)
                {
                    return e;
                }
            }
        }

        return null;
    }

    public int ElementCount()
    {
        var count = 0;
        if (_nodes is not null)
        {
            foreach (var n in _nodes)
            {
                if (n is Element)
                {
                    count++;
                }
            }
        }

        return count;
    }

    public Element? Child(string name, string ns)
    {
        if (_nodes is not null)
        {
            foreach (var n in _nodes)
            {
                if (n is Element e && e.Name == name && e.Namespace == ns)
                {
                    return e;
                }
            }
        }

        return null;
    }

    public Element? Child(string name) => Child(name, Namespace);

    /// <summary>The concatenated text children of this element (not of descendants).</summary>
    public string Text
    {
        get
        {
            if (_nodes is null)
            {
                return string.Empty;
            }

            string? single = null;
            StringBuilder? sb = null;
            foreach (var n in _nodes)
            {
                if (n is string s)
                {
                    if (single is null)
                    {
                        single = s;
                    }
                    else
                    {
                        sb ??= new StringBuilder(single);
                        sb.Append(s);
                    }
                }
            }

            return sb?.ToString() ?? single ?? string.Empty;
        }
    }

    public string? ChildText(string name, string ns) => Child(name, ns)?.Text;

    /// <summary>A deep copy.</summary>
    public Element Clone()
    {
        var copy = new Element(Name, Namespace);
        if (_attributes is not null)
        {
            copy._attributes = [.. _attributes];
        }

        if (_nodes is not null)
        {
            copy._nodes = new List<object>(_nodes.Count);
            foreach (var n in _nodes)
            {
                copy._nodes.Add(n is Element e ? e.Clone() : n);
            }
        }

        return copy;
    }

    /// <summary>Serialises as a standalone fragment (default namespace declared on this element).</summary>
    public override string ToString() => ElementWriter.ToXml(this, parentNamespace: null);
}
