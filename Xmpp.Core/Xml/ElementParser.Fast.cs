using System.Text;

namespace Xmpp.Core.Xml;

/// <summary>
/// The fast path of <see cref="ElementParser.Parse"/>: XML exactly as <see cref="ElementWriter"/> writes it
/// (unprefixed element names, single- or double-quoted attributes, xmlns and xmlns:prefix declarations, the
/// xml: prefix, the five predefined entities and character references), parsed without an XmlReader, which costs
/// about 13 KB of buffers per call (every stanza crossing nodes in cluster mode is parsed here). Anything else
/// (a comment, CDATA, a declaration, a prefixed element, a raw carriage return, a character XML forbids, a name
/// outside ASCII) returns false, and the XmlReader path parses it, or refuses it, as before: what this path
/// accepts, it builds exactly as that path would.
/// </summary>
public static partial class ElementParser
{
    internal static bool TryParseFast(string xml, out Element? element)
    {
        element = null;
        var p = new FastParser(xml);
        try
        {
            element = p.Document();
            return element is not null;
        }
        catch (IndexOutOfRangeException)
        {
            // Input that ends early: the XmlReader path says what is wrong with it.
            return false;
        }
    }

    private ref struct FastParser(string xml)
    {
        private readonly string _s = xml;
        private int _i;

        // Prefixes declared by the open elements (xmlns:p), innermost last; rare, so a list searched backwards.
        private List<(string Prefix, string Uri, int Depth)>? _prefixes;

        public Element? Document()
        {
            if (_s.Length == 0 || _s[0] != '<')
            {
                return null;
            }

            var open = new Stack<Element>();
            while (true)
            {
                // At '<': a start tag or an end tag.
                if (_s[_i + 1] == '/')
                {
                    _i += 2;
                    var name = Name();
                    if (name is null || open.Count == 0 || name != open.Peek().Name || _s[_i] != '>')
                    {
                        return null;
                    }

                    _i++;
                    var closed = open.Pop();
                    Undeclare(open.Count);
                    if (open.Count == 0)
                    {
                        return closed;
                    }
                }
                else
                {
                    _i++;
                    var parentNs = open.Count > 0 ? open.Peek().Namespace : string.Empty;
                    var element = StartTag(parentNs, open.Count + 1, out var empty);
                    if (element is null)
                    {
                        return null;
                    }

                    if (open.Count > 0)
                    {
                        open.Peek().Add(element);
                    }

                    if (empty)
                    {
                        Undeclare(open.Count);
                        if (open.Count == 0)
                        {
                            return element;
                        }
                    }
                    else
                    {
                        open.Push(element);
                    }
                }

                // Character data up to the next tag.
                if (_s[_i] != '<')
                {
                    if (open.Count == 0)
                    {
                        return null;
                    }

                    var text = Text('<');
                    if (text is null)
                    {
                        return null;
                    }

                    open.Peek().AddText(text);
                }
            }
        }

        private Element? StartTag(string parentNs, int depth, out bool empty)
        {
            empty = false;
            var name = Name();
            if (name is null)
            {
                return null;
            }

            string? ns = null;
            List<(string Prefix, string Local, string Value)>? attributes = null;
            while (true)
            {
                var c = _s[_i];
                if (c == '>')
                {
                    _i++;
                    break;
                }

                if (c == '/')
                {
                    if (_s[_i + 1] != '>')
                    {
                        return null;
                    }

                    _i += 2;
                    empty = true;
                    break;
                }

                if (c != ' ')
                {
                    return null;
                }

                while (_s[_i] == ' ')
                {
                    _i++;
                }

                if (_s[_i] is '>' or '/')
                {
                    continue;
                }

                var first = Name();
                if (first is null)
                {
                    return null;
                }

                var local = first;
                var prefix = string.Empty;
                if (_s[_i] == ':')
                {
                    _i++;
                    prefix = first;
                    local = Name() ?? string.Empty;
                    if (local.Length == 0)
                    {
                        return null;
                    }
                }

                if (_s[_i] != '=')
                {
                    return null;
                }

                _i++;
                var quote = _s[_i];
                if (quote is not ('\'' or '"'))
                {
                    return null;
                }

                _i++;
                var value = Text(quote);
                if (value is null)
                {
                    return null;
                }

                _i++;
                if (prefix.Length == 0 && local == "xmlns")
                {
                    if (ns is not null)
                    {
                        return null;
                    }

                    ns = value;
                }
                else if (prefix == "xmlns")
                {
                    // Namespaces in XML §3: the xml and xmlns prefixes are fixed; a prefix may not be undeclared (1.0).
                    if (value.Length == 0 || local is "xml" or "xmlns")
                    {
                        return null;
                    }

                    (_prefixes ??= []).Add((local, value, depth));
                }
                else
                {
                    (attributes ??= []).Add((prefix, local, value));
                }
            }

            var element = new Element(name, ns ?? parentNs);
            if (attributes is not null)
            {
                foreach (var (prefix, local, value) in attributes)
                {
                    var attrNs = prefix.Length == 0 ? string.Empty : prefix == "xml" ? Ns.Xml : Lookup(prefix);
                    if (attrNs is null || element.GetAttribute(local, attrNs) is not null)
                    {
                        return null; // an undeclared prefix or a repeated attribute: not well-formed
                    }

                    element.SetAttribute(local, attrNs, value);
                }
            }

            return element;
        }

        /// <summary>Forgets the prefixes declared deeper than <paramref name="depth"/> (their element has ended).</summary>
        private readonly void Undeclare(int depth)
        {
            if (_prefixes is null)
            {
                return;
            }

            for (var k = _prefixes.Count - 1; k >= 0 && _prefixes[k].Depth > depth; k--)
            {
                _prefixes.RemoveAt(k);
            }
        }

        private readonly string? Lookup(string prefix)
        {
            if (_prefixes is not null)
            {
                for (var k = _prefixes.Count - 1; k >= 0; k--)
                {
                    if (_prefixes[k].Prefix == prefix)
                    {
                        return _prefixes[k].Uri;
                    }
                }
            }

            return null;
        }

        /// <summary>An ASCII NCName (no colon), or null.</summary>
        private string? Name()
        {
            var start = _i;
            var c = _s[_i];
            if (!(c is (>= 'a' and <= 'z') or (>= 'A' and <= 'Z') or '_'))
            {
                return null;
            }

            _i++;
            while (_s[_i] is (>= 'a' and <= 'z') or (>= 'A' and <= 'Z') or (>= '0' and <= '9') or '_' or '-' or '.')
            {
                _i++;
            }

            return XmlNames.Intern(_s.AsSpan(start, _i - start));
        }

        /// <summary>
        /// Text up to <paramref name="end"/> ('&lt;' for character data, the quote for an attribute value), with its
        /// references resolved; null for anything the writer would not have written as it is.
        /// </summary>
        private string? Text(char end)
        {
            var start = _i;
            StringBuilder? sb = null;
            var run = _i;
            while (true)
            {
                var c = _s[_i];
                if (c == end)
                {
                    break;
                }

                switch (c)
                {
                    case '&':
                        sb ??= new StringBuilder(_i - start + 16);
                        sb.Append(_s, run, _i - run);
                        if (!Reference(sb))
                        {
                            return null;
                        }

                        run = _i;
                        continue;
                    case '<' or '>' or '\r':
                        // '<' in a value is not well-formed; '>' and a raw CR the writer never leaves as they are
                        // (']]>' would be an error, a CR is normalised): the XmlReader path decides.
                        return null;
                    case '\t' or '\n' when end != '<':
                        return null; // normalised to a space in an attribute value (XML 1.0 §3.3.3)
                    case < ' ' when c is not ('\t' or '\n'):
                        return null;
                    case >= '\uD800' when !ValidAt(_i):
                        return null;
                }

                _i++;
            }

            if (sb is null)
            {
                return _s.Substring(start, _i - start);
            }

            return sb.Append(_s, run, _i - run).ToString();
        }

        /// <summary>A valid XML character or surrogate pair at <paramref name="k"/> (the BMP's non-characters and lone surrogates are not).</summary>
        private readonly bool ValidAt(int k)
        {
            var c = _s[k];
            if (char.IsHighSurrogate(c))
            {
                return k + 1 < _s.Length && char.IsLowSurrogate(_s[k + 1]);
            }

            if (char.IsLowSurrogate(c))
            {
                return k > 0 && char.IsHighSurrogate(_s[k - 1]);
            }

            return c is not ('\uFFFE' or '\uFFFF');
        }

        /// <summary>At '&amp;': appends what the reference stands for and moves past it; false for anything else.</summary>
        private bool Reference(StringBuilder sb)
        {
            var semi = _s.IndexOf(';', _i);
            if (semi < 0 || semi - _i > 10)
            {
                return false;
            }

            var body = _s.AsSpan(_i + 1, semi - _i - 1);
            _i = semi + 1;

            // XML 1.0 §4.6: the five predefined entities.
            char? named = body switch { "lt" => '<', "gt" => '>', "amp" => '&', "apos" => '\'', "quot" => '"', _ => null };
            if (named is { } c)
            {
                sb.Append(c);
                return true;
            }

            // §4.1 character references, decimal or hexadecimal, to a Char (§2.2: #x9 | #xA | #xD | [#x20-#xD7FF] |
            // [#xE000-#xFFFD] | [#x10000-#x10FFFF]).
            if (body.Length < 2 || body[0] != '#')
            {
                return false;
            }

            var hex = body[1] == 'x';
            var digits = hex ? body[2..] : body[1..];
            if (digits.Length == 0 || !int.TryParse(digits, hex ? System.Globalization.NumberStyles.AllowHexSpecifier : System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var code) ||
                !(code is 0x9 or 0xA or 0xD || (code >= 0x20 && code <= 0xD7FF) || (code >= 0xE000 && code <= 0xFFFD) || (code >= 0x10000 && code <= 0x10FFFF)))
            {
                return false;
            }

            sb.Append(char.ConvertFromUtf32(code));
            return true;
        }
    }
}
