using System.Buffers;
using System.Collections.Frozen;
using System.Text;
using Xmpp.Core.Stanzas;

namespace Xmpp.Core.Xml;

/// <summary>
/// Names for <see cref="XmppStreamReader"/>: QName splitting and validation (XML 1.0 §2.3, Namespaces in XML
/// 1.0 §4), and one shared string for each name and namespace that XMPP streams use all the time, so that
/// parsing a stanza does not allocate its element names. All tables are immutable.
/// </summary>
internal static class XmlNames
{
    public const string XmlPrefix = "xml";
    public const string XmlnsPrefix = "xmlns";

    /// <summary>Longest name or value looked up in <see cref="Common"/>; longer ones are never in it.</summary>
    private const int MaxCommonLength = 64;

    public static readonly SearchValues<byte> Whitespace = SearchValues.Create(" \t\r\n"u8);

    public static readonly SearchValues<byte> TagDelimiters = SearchValues.Create("<>'\""u8);

    private static readonly SearchValues<byte> AsciiNameChars =
        SearchValues.Create("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-"u8);

    public static ReadOnlySpan<byte> Utf8Bom => [0xEF, 0xBB, 0xBF];

    private static readonly FrozenSet<string> Common = FrozenSet.Create(StringComparer.Ordinal,
    [
        // Stanzas and their usual children and attributes (RFC 6120, RFC 6121).
        "stream", "features", "error", "message", "presence", "iq", "body", "subject", "thread", "show", "status",
        "priority", "query", "item", "group", "x", "c", "delay", "text", "type", "id", "to", "from", "lang", "jid",
        "name", "subscription", "ask", "ver", "version", "node", "hash", "stamp", "xmlns", "stream", "db", "result",
        "verify", "key", "bind", "resource", "session", "starttls", "proceed", "auth", "mechanism", "mechanisms",
        "challenge", "response", "success", "failure", "abort", "required", "optional", "ping", "r", "a", "enable",
        "enabled", "resume", "resumed", "h", "previd", "active", "inactive", "composing", "paused", "gone",
        "request", "received", "displayed", "markable", "store", "no-store", "no-copy", "origin-id", "stanza-id",
        "identity", "feature", "category", "var", "value", "field", "os", "seconds", "reason", "by", "code",
        "remove", "approved", "none", "both", "chat", "normal", "headline", "groupchat", "get", "set",
        "subscribe", "subscribed", "unsubscribe", "unsubscribed", "unavailable", "probe", "away", "xa", "dnd",
        "en", "1.0", "PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256-PLUS", "EXTERNAL",
        "cancel", "continue", "modify", "wait", "service-unavailable", "item-not-found", "feature-not-implemented",
        "forbidden", "not-allowed", "bad-request",

        // Namespaces.
        Ns.Stream, Ns.Client, Ns.Server, Ns.Xml, Ns.Streams, Ns.Stanzas, Ns.Tls, Ns.Sasl, Ns.Bind, Ns.Session,
        Ns.DiscoInfo, Ns.DiscoItems, Ns.Ping, Ns.Version, Ns.Roster, Ns.Dialback, Ns.DialbackFeature,
        "urn:xmpp:delay", "jabber:x:delay", "http://jabber.org/protocol/caps", "http://jabber.org/protocol/chatstates",
        "urn:xmpp:receipts", "urn:xmpp:chat-markers:0", "urn:xmpp:hints", "urn:xmpp:sid:0", "urn:xmpp:sm:3",
        "urn:xmpp:carbons:2", "urn:xmpp:mam:2", "vcard-temp", "vcard-temp:x:update", "jabber:iq:last",
        "jabber:iq:private", "urn:xmpp:blocking", "urn:xmpp:csi:0", "urn:xmpp:time", "jabber:x:data",
        "http://jabber.org/protocol/muc", "http://jabber.org/protocol/muc#user", "urn:xmpp:idle:1",
        "http://jabber.org/protocol/pubsub", "http://jabber.org/protocol/pubsub#event",
    ]);

    private static readonly FrozenSet<string>.AlternateLookup<ReadOnlySpan<char>> CommonLookup =
        Common.GetAlternateLookup<ReadOnlySpan<char>>();

    public static bool IsWhitespace(byte b) => b is (byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n';

    /// <summary>The shared instance of a common string, or a new string.</summary>
    public static string Intern(ReadOnlySpan<char> chars) =>
        chars.Length <= MaxCommonLength && CommonLookup.TryGetValue(chars, out var common) ? common : new string(chars);

    /// <summary>Splits and validates a QName: (prefix, local), prefix empty when there is none.</summary>
    public static (string Prefix, string Local) QName(ReadOnlySpan<byte> raw)
    {
        var colon = raw.IndexOf((byte)':');
        if (colon < 0)
        {
            return (string.Empty, NCName(raw));
        }

        if (raw[(colon + 1)..].IndexOf((byte)':') >= 0)
        {
            throw NotWellFormed("a name may contain one colon at most");
        }

        return (NCName(raw[..colon]), NCName(raw[(colon + 1)..]));
    }

    /// <summary>Whether an end tag's raw name is prefix:local (or local when the prefix is empty).</summary>
    public static bool QNameEquals(ReadOnlySpan<byte> raw, string prefix, string local)
    {
        if (prefix.Length > 0)
        {
            if (raw.Length <= prefix.Length || raw[prefix.Length] != (byte)':' || !Utf8Equals(raw[..prefix.Length], prefix))
            {
                return false;
            }

            raw = raw[(prefix.Length + 1)..];
        }

        return Utf8Equals(raw, local);
    }

    private static bool Utf8Equals(ReadOnlySpan<byte> raw, string value)
    {
        if (Ascii.IsValid(raw))
        {
            return Ascii.Equals(raw, value);
        }

        return raw.Length <= 4 * value.Length && Encoding.UTF8.GetString(raw) == value;
    }

    private static string NCName(ReadOnlySpan<byte> raw)
    {
        if (raw.IsEmpty)
        {
            throw NotWellFormed("empty name");
        }

        if (raw.IndexOfAnyExcept(AsciiNameChars) < 0)
        {
            var first = raw[0];
            if (first is (>= (byte)'0' and <= (byte)'9') or (byte)'.' or (byte)'-')
            {
                throw NotWellFormed("a name may not start with a digit, '.' or '-'");
            }

            if (raw.Length <= MaxCommonLength)
            {
                Span<char> chars = stackalloc char[raw.Length];
                Ascii.ToUtf16(raw, chars, out _);
                return Intern(chars);
            }

            return Encoding.ASCII.GetString(raw);
        }

        // Names are checked against XML 1.0 5th edition (§2.3) and also against the older, narrower rules of
        // the 4th edition that System.Xml and expat (Prosody, ejabberd's fast_xml) still apply: a name only
        // one of them accepts would break the stream of whoever we forward the stanza to. Both must agree,
        // so supplementary characters, which the 4th edition does not allow in names, are refused too
        // (found by fuzzing: U+0700 and U+FFCB names that System.Xml refused).
        var name = XmlText.Utf8(raw);
        for (var i = 0; i < name.Length; i++)
        {
            var c = name[i];
            var start = i == 0;
            if (!IsNameChar(c, start) || !(start ? System.Xml.XmlConvert.IsStartNCNameChar(c) : System.Xml.XmlConvert.IsNCNameChar(c)))
            {
                throw NotWellFormed("invalid character in a name");
            }
        }

        return name;
    }

    /// <summary>NameStartChar and NameChar of XML 1.0 (5th edition) §2.3, for the BMP, without ':'.</summary>
    private static bool IsNameChar(char c, bool start)
    {
        if (c is (>= 'a' and <= 'z') or (>= 'A' and <= 'Z') or '_' or (>= '\u00C0' and <= '\u00D6') or (>= '\u00D8' and <= '\u00F6')
            or (>= '\u00F8' and <= '\u02FF') or (>= '\u0370' and <= '\u037D') or (>= '\u037F' and <= '\u1FFF')
            or '\u200C' or '\u200D' or (>= '\u2070' and <= '\u218F') or (>= '\u2C00' and <= '\u2FEF')
            or (>= '\u3001' and <= '\uD7FF') or (>= '\uF900' and <= '\uFDCF') or (>= '\uFDF0' and <= '\uFFFD'))
        {
            return true;
        }

        return !start && c is '-' or '.' or (>= '0' and <= '9') or '\u00B7' or (>= '\u0300' and <= '\u036F') or '\u203F' or '\u2040';
    }

    private static XmppStreamException NotWellFormed(string reason) => new(StreamErrorCondition.NotWellFormed, reason);
}
