using Xmpp.Core.Addressing;

namespace Xmpp.Tests.Core;

/// <summary>The examples of RFC 7622 §3.5 and more.</summary>
public sealed class JidTests
{
    [TestCase("juliet@example.com", "juliet@example.com")]
    [TestCase("juliet@example.com/foo", "juliet@example.com/foo")]
    [TestCase("juliet@example.com/foo bar", "juliet@example.com/foo bar")]
    [TestCase("juliet@example.com/ foo", "juliet@example.com/ foo")] // RFC 7622 erratum 4560: example 18 is valid
    [TestCase("juliet@example.com/foo@bar", "juliet@example.com/foo@bar")]
    [TestCase("foo\\20bar@example.com", "foo\\20bar@example.com")]
    [TestCase("fussball@example.com", "fussball@example.com")]
    [TestCase("fußball@example.com", "fußball@example.com")]
    [TestCase("π@example.com", "π@example.com")]
    [TestCase("Σ@example.com/foo", "σ@example.com/foo")]
    [TestCase("σ@example.com/foo", "σ@example.com/foo")]
    [TestCase("ς@example.com/foo", "ς@example.com/foo")]
    [TestCase("king@example.com/♚", "king@example.com/♚")]
    [TestCase("example.com", "example.com")]
    [TestCase("example.com/foobar", "example.com/foobar")]
    [TestCase("a.example.com/b@example.net", "a.example.com/b@example.net")]
    [TestCase("Juliet@EXAMPLE.com/Balcony", "juliet@example.com/Balcony")]
    [TestCase("juliet@example.com./r", "juliet@example.com/r")]
    [TestCase("ＪＵＬＩＥＴ@example.com", "juliet@example.com")]
    [TestCase("user@[::1]", "user@[::1]")]
    [TestCase("user@127.0.0.1/x", "user@127.0.0.1/x")]
    [TestCase("user@münchen.de", "user@münchen.de")]
    [TestCase("user@xn--mnchen-3ya.de", "user@münchen.de")]
    public void Valid_jids_are_prepared(string input, string expected)
    {
        Assert.That(Jid.TryParse(input, out var jid), Is.True, input);
        Assert.That(jid!.ToString(), Is.EqualTo(expected));
    }

    [TestCase("\"juliet\"@example.com")]
    [TestCase("foo bar@example.com")]
    [TestCase("@example.com/")]
    [TestCase("henryⅣ@example.com/")]
    [TestCase("♚@example.com")]
    [TestCase("juliet@")]
    [TestCase("/foobar")]
    [TestCase("")]
    [TestCase("a@b@c")]
    [TestCase("user@exa mple.com")]
    [TestCase("user@example.com/")]
    [TestCase("us\u0000er@example.com")]
    [TestCase("user@example.com/\u0007bell")]
    [TestCase("user\u200B@example.com")]
    [TestCase("user@-example.com")]
    [TestCase("user@example-.com")]
    [TestCase("user@example..com")]
    [TestCase("user@exa_mple.com")]
    [TestCase("user@xn--zz.com")]
    public void Invalid_jids_are_refused(string input) =>
        Assert.That(Jid.TryParse(input, out _), Is.False, input);

    /// <summary>
    /// Noncharacters and lone surrogates are DISALLOWED (RFC 8264 §9.13). Found by fuzzing: string.Normalize
    /// threw on U+FFFE. In code rather than in attributes, whose strings are stored as UTF-8 and cannot hold
    /// a lone surrogate.
    /// </summary>
    [Test]
    public void Noncharacters_and_lone_surrogates_are_refused()
    {
        string[] inputs =
        [
            "us\uFFFEer@example.com", "user@example.com/re\uFFFFs", "us\uFDD0er@example.com", "user@example.com/\uD83F\uDFFE",
            "us\uD800er@example.com", "user@example.com/\uDC00", "user@example.com/a\uD800",
        ];
        foreach (var input in inputs)
        {
            Assert.That(Jid.TryParse(input, out _), Is.False, string.Join(" ", input.Select(c => ((int)c).ToString("X4", System.Globalization.CultureInfo.InvariantCulture))));
        }
    }

    [Test]
    public void Parts_longer_than_1023_bytes_are_refused()
    {
        Assert.That(Jid.TryParse(new string('a', 1024) + "@example.com", out _), Is.False);
        Assert.That(Jid.TryParse("a@example.com/" + new string('r', 1024), out _), Is.False);
        Assert.That(Jid.TryParse(new string('a', 1023) + "@example.com/" + new string('r', 1023), out _), Is.True);
        Assert.That(Jid.TryParse("a@example.com/" + string.Concat(Enumerable.Repeat("é", 512)), out _), Is.False, "counted in UTF-8 bytes");
    }

    [Test]
    public void Equality_is_on_the_prepared_form()
    {
        Assert.That(Jid.Parse("ROMEO@Example.Net/Orchard"), Is.EqualTo(Jid.Parse("romeo@example.net/Orchard")));
        Assert.That(Jid.Parse("romeo@example.net/Orchard"), Is.Not.EqualTo(Jid.Parse("romeo@example.net/orchard")));
        Assert.That(Jid.Parse("romeo@example.net/Orchard").Bare, Is.EqualTo(Jid.Parse("romeo@example.net")));
    }
}
