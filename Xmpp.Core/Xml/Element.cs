using System.Text;

namespace Xmpp.Core.Xml;

/// <summary>
/// A small XML element: qualified name, attributes, and child nodes (elements or text). Built mutable; once
/// <see cref="Freeze"/>d (the router freezes every stanza it routes) it and its descendants refuse every change,
/// so an element that several sessions' queues and a module hold at once can never change under them. A
/// module that wants it different makes a <see cref="Copy"/> (shallow: the frozen children are shared) and
/// changes that.
/// </summary>
public sealed class Element
{
    private List<XmlAttr>? _attributes;
    private List<object>? _nodes;
    private bool _frozen;
    private int _wireSize;

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
    public int WireSize
    {
        get => _wireSize;
        set
        {
            ThrowIfFrozen();
            _wireSize = value;
        }
    }

    /// <summary>Whether the element refuses changes (see <see cref="Freeze"/>).</summary>
    public bool IsFrozen => Volatile.Read(ref _frozen);

    /// <summary>Makes the element and all its descendants unchangeable from now on; returns it.</summary>
    public Element Freeze()
    {
        if (_frozen)
        {
            return this;
        }

        if (_nodes is not null)
        {
            foreach (var n in _nodes)
            {
                (n as Element)?.Freeze();
            }
        }

        Volatile.Write(ref _frozen, true);
        return this;
    }

    private void ThrowIfFrozen()
    {
        if (_frozen)
        {
            throw new InvalidOperationException($"<{Name}/> is frozen: change a Copy() of it");
        }
    }

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
        ThrowIfFrozen();
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
        ThrowIfFrozen();
        (_nodes ??= []).Add(child);
        return this;
    }

    public Element AddText(string text)
    {
        ThrowIfFrozen();
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
    public int RemoveChildren(Func<Element, bool> match)
    {
        ThrowIfFrozen();
        return _nodes?.RemoveAll(n => n is Element e && match(e)) ?? 0;
    }

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

    /// <summary>
    /// A changeable copy of this element whose children are this one's own (not copied: frozen, they are safe to
    /// share). The way to change a stanza that is already on its way.
    /// </summary>
    public Element Copy()
    {
        if (!_frozen)
        {
            // Children that can still change must not be shared.
            return Clone();
        }

        var copy = new Element(Name, Namespace) { _wireSize = _wireSize };
        if (_attributes is not null)
        {
            copy._attributes = [.. _attributes];
        }

        if (_nodes is not null)
        {
            copy._nodes = [.. _nodes];
        }

        return copy;
    }

    /// <summary>A deep copy, changeable all through.</summary>
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
