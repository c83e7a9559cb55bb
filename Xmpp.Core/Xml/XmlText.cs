using System.Buffers;
using System.Globalization;
using System.Text;
using Xmpp.Core.Stanzas;

namespace Xmpp.Core.Xml;

/// <summary>
/// Character data and attribute values for <see cref="XmppStreamReader"/>: strict UTF-8, only the characters
/// XML 1.0 §2.2 allows, the five predefined entities and character references (§4.1, §4.6; RFC 6120 §11.1
/// forbids all others), line-end normalisation (§2.11) and attribute-value normalisation (§3.3.3).
/// </summary>
internal static class XmlText
{
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Characters outside XML 1.0's Char production that UTF-8 can encode (surrogates cannot be).</summary>
    private static readonly SearchValues<char> Forbidden = SearchValues.Create(
        "\u0000\u0001\u0002\u0003\u0004\u0005\u0006\u0007\u0008\u000B\u000C\u000E\u000F\u0010\u0011\u0012\u0013\u0014\u0015\u0016\u0017\u0018\u0019\u001A\u001B\u001C\u001D\u001E\u001F\uFFFE\uFFFF");

    private static readonly SearchValues<byte> TextSpecials = SearchValues.Create("&\r"u8);

    private static readonly SearchValues<byte> AttributeSpecials = SearchValues.Create("&\r\n\t"u8);

    private const int MaxInternedValue = 64;

    /// <summary>Strictly decodes UTF-8 (invalid sequences are not-well-formed) and checks the characters.</summary>
    public static string Utf8(ReadOnlySpan<byte> raw)
    {
        string s;
        try
        {
            s = StrictUtf8.GetString(raw);
        }
        catch (DecoderFallbackException)
        {
            throw NotWellFormed("invalid UTF-8");
        }

        if (s.AsSpan().IndexOfAny(Forbidden) >= 0)
        {
            throw NotWellFormed("character not allowed in XML");
        }

        return s;
    }

    /// <summary>
    /// Decodes character data (<paramref name="attribute"/> false) or an attribute value. A
    /// <paramref name="literal"/> run (CDATA) has no references but is still line-end normalised.
    /// </summary>
    public static string Decode(ReadOnlySpan<byte> raw, bool attribute, bool literal = false)
    {
        if (raw.IsEmpty)
        {
            return string.Empty;
        }

        var specials = attribute ? AttributeSpecials : TextSpecials;
        if (raw.IndexOfAny(specials) < 0)
        {
            if (attribute && raw.Length <= MaxInternedValue && Ascii.IsValid(raw))
            {
                Span<char> chars = stackalloc char[raw.Length];
                Ascii.ToUtf16(raw, chars, out _);
                if (chars.IndexOfAny(Forbidden) >= 0)
                {
                    throw NotWellFormed("character not allowed in XML");
                }

                return XmlNames.Intern(chars);
            }

            return Utf8(raw);
        }

        char[] rented;
        int length;
        try
        {
            rented = ArrayPool<char>.Shared.Rent(StrictUtf8.GetMaxCharCount(raw.Length));
            length = StrictUtf8.GetChars(raw, rented);
        }
        catch (DecoderFallbackException)
        {
            throw NotWellFormed("invalid UTF-8");
        }

        try
        {
            var chars = rented.AsSpan(0, length);
            if (chars.IndexOfAny(Forbidden) >= 0)
            {
                throw NotWellFormed("character not allowed in XML");
            }

            // In place: the output is never longer than the input read so far.
            var o = 0;
            for (var i = 0; i < chars.Length; i++)
            {
                var c = chars[i];
                switch (c)
                {
                    case '\r':
                        // §2.11: CR LF and a lone CR become LF (then, in attribute values, a space).
                        if (i + 1 < chars.Length && chars[i + 1] == '\n')
                        {
                            i++;
                        }

                        chars[o++] = attribute ? ' ' : '\n';
                        break;
                    case '\n' or '\t' when attribute:
                        chars[o++] = ' ';
                        break;
                    case '&' when !literal:
                        i = Reference(chars, i, ref o);
                        break;
                    default:
                        chars[o++] = c;
                        break;
                }
            }

            return new string(chars[..o]);
        }
        finally
        {
            ArrayPool<char>.Shared.Return(rented);
        }
    }

    /// <summary>Expands the reference at chars[amp] into chars[o..]; returns the index of its ';'.</summary>
    private static int Reference(Span<char> chars, int amp, ref int o)
    {
        var rest = chars[(amp + 1)..];
        var semi = rest.IndexOf(';');
        if (semi <= 0)
        {
            throw NotWellFormed("'&' must start an entity or character reference");
        }

        var name = rest[..semi];
        var end = amp + 1 + semi;
        switch (name)
        {
            case "amp": chars[o++] = '&'; return end;
            case "lt": chars[o++] = '<'; return end;
            case "gt": chars[o++] = '>'; return end;
            case "quot": chars[o++] = '"'; return end;
            case "apos": chars[o++] = '\''; return end;
            default: break;
        }

        if (name[0] != '#')
        {
            // RFC 6120 §11.1 allows no entity declarations, so no other entity can be defined.
            throw NotWellFormed("undeclared entity reference");
        }

        var hex = name.Length > 1 && name[1] == 'x';
        var digits = name[(hex ? 2 : 1)..];
        if (digits.IsEmpty || digits.Length > 8 ||
            !int.TryParse(digits, hex ? NumberStyles.AllowHexSpecifier : NumberStyles.None, CultureInfo.InvariantCulture, out var code) ||
            !IsXmlChar(code))
        {
            throw NotWellFormed("invalid character reference");
        }

        if (code < 0x10000)
        {
            chars[o++] = (char)code;
        }
        else
        {
            code -= 0x10000;
            chars[o++] = (char)(0xD800 + (code >> 10));
            chars[o++] = (char)(0xDC00 + (code & 0x3FF));
        }

        return end;
    }

    /// <summary>XML 1.0 §2.2 Char.</summary>
    private static bool IsXmlChar(int c) =>
        c is 0x9 or 0xA or 0xD or (>= 0x20 and <= 0xD7FF) or (>= 0xE000 and <= 0xFFFD) or (>= 0x10000 and <= 0x10FFFF);

    private static XmppStreamException NotWellFormed(string reason) => new(StreamErrorCondition.NotWellFormed, reason);
}
