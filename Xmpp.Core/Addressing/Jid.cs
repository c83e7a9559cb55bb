using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Net;
using System.Text;

namespace Xmpp.Core.Addressing;

/// <summary>
/// An XMPP address (RFC 7622), always held in prepared (normalised) form, so equality is ordinal.
/// The only ways to make one are <see cref="TryParse"/> and <see cref="TryCreate"/>.
/// </summary>
[Specification("RFC 7622", "", Note = "JIDs with PRECIS (RFC 8264/8265): UsernameCaseMapped localparts, OpaqueString resourceparts, IDNA domainparts, 1023-byte limits.")]
public sealed class Jid : IEquatable<Jid>
{
    private const int MaxPartBytes = 1023;
    private static readonly System.Buffers.SearchValues<char> ReservedInLocal = System.Buffers.SearchValues.Create("\"&'/:<>@");
    private readonly string _text;
    private Jid? _bare;

    private Jid(string? local, string domain, string? resource)
    {
        Local = local;
        Domain = domain;
        Resource = resource;
        var sb = new StringBuilder();
        if (local is not null)
        {
            sb.Append(local).Append('@');
        }

        sb.Append(domain);
        if (resource is not null)
        {
            sb.Append('/').Append(resource);
        }

        _text = sb.ToString();
    }

    public string? Local { get; }

    public string Domain { get; }

    public string? Resource { get; }

    public bool IsBare => Resource is null;

    public bool IsDomain => Local is null && Resource is null;

    public Jid Bare => IsBare ? this : (_bare ??= new Jid(Local, Domain, null));

    public Jid WithResource(string preparedResource) => new(Local, Domain, preparedResource);

    public static bool TryParse(string? text, [NotNullWhen(true)] out Jid? jid)
    {
        jid = null;
        if (string.IsNullOrEmpty(text))
        {
            return false;
        }

        // RFC 7622 §3.1: the resource starts at the first '/', the localpart ends at the first '@' before it.
        string? resource = null;
        var slash = text.IndexOf('/', StringComparison.Ordinal);
        var rest = text;
        if (slash >= 0)
        {
            resource = text[(slash + 1)..];
            rest = text[..slash];
            if (resource.Length == 0)
            {
                return false;
            }
        }

        string? local = null;
        var at = rest.IndexOf('@', StringComparison.Ordinal);
        var domain = rest;
        if (at >= 0)
        {
            local = rest[..at];
            domain = rest[(at + 1)..];
            if (local.Length == 0)
            {
                return false;
            }
        }

        return TryCreate(local, domain, resource, out jid);
    }

    public static Jid Parse(string text) =>
        TryParse(text, out var jid) ? jid : throw new FormatException($"not a valid JID: {text}");

    public static bool TryCreate(string? local, string domain, string? resource, [NotNullWhen(true)] out Jid? jid)
    {
        jid = null;
        string? preparedLocal = null, preparedResource = null;
        if (local is not null && !TryPrepareLocal(local, out preparedLocal))
        {
            return false;
        }

        if (!TryPrepareDomain(domain, out var preparedDomain))
        {
            return false;
        }

        if (resource is not null && !TryPrepareResource(resource, out preparedResource))
        {
            return false;
        }

        jid = new Jid(preparedLocal, preparedDomain, preparedResource);
        return true;
    }

    /// <summary>RFC 7622 §3.3: UsernameCaseMapped, minus the characters XMPP reserves.</summary>
    public static bool TryPrepareLocal(string local, [NotNullWhen(true)] out string? prepared)
    {
        prepared = null;
        if (!Precis.TryPrepareUsernameCaseMapped(local, out var p) || Encoding.UTF8.GetByteCount(p) > MaxPartBytes)
        {
            return false;
        }

        if (p.AsSpan().IndexOfAny(ReservedInLocal) >= 0)
        {
            return false;
        }

        prepared = p;
        return true;
    }

    /// <summary>RFC 7622 §3.4: OpaqueString.</summary>
    public static bool TryPrepareResource(string resource, [NotNullWhen(true)] out string? prepared)
    {
        prepared = null;
        if (!Precis.TryPrepareOpaqueString(resource, out var p) || Encoding.UTF8.GetByteCount(p) > MaxPartBytes)
        {
            return false;
        }

        prepared = p;
        return true;
    }

    /// <summary>RFC 7622 §3.2: IP literal, IPv4 address, or an IDNA domain name held in lower-case U-label form.</summary>
    public static bool TryPrepareDomain(string domain, [NotNullWhen(true)] out string? prepared)
    {
        prepared = null;
        if (domain.EndsWith('.'))
        {
            domain = domain[..^1];
        }

        if (domain.Length == 0 || Encoding.UTF8.GetByteCount(domain) > MaxPartBytes)
        {
            return false;
        }

        if (domain[0] == '[')
        {
            if (domain[^1] != ']' || !IPAddress.TryParse(domain[1..^1], out var v6) ||
                v6.AddressFamily != System.Net.Sockets.AddressFamily.InterNetworkV6)
            {
                return false;
            }

            prepared = "[" + v6 + "]";
            return true;
        }

        if (IsDottedQuad(domain))
        {
            prepared = domain;
            return true;
        }

        if (TryPrepareAsciiHostname(domain, out prepared))
        {
            return true;
        }

        try
        {
            var idn = new IdnMapping { UseStd3AsciiRules = true, AllowUnassigned = false };
            var ascii = idn.GetAscii(domain);
            foreach (var label in ascii.Split('.'))
            {
                if (label.Length is 0 or > 63)
                {
                    return false;
                }
            }

            prepared = idn.GetUnicode(ascii).ToLowerInvariant();
            return Encoding.UTF8.GetByteCount(prepared) <= MaxPartBytes;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    /// <summary>
    /// The common case without IDNA machinery: letters, digits and hyphens (STD3 rules), no A-labels
    /// (those go through IdnMapping to become U-labels). Null when the slow path must decide.
    /// </summary>
    private static bool TryPrepareAsciiHostname(string domain, [NotNullWhen(true)] out string? prepared)
    {
        prepared = null;
        var labelStart = 0;
        for (var i = 0; i <= domain.Length; i++)
        {
            if (i == domain.Length || domain[i] == '.')
            {
                var length = i - labelStart;
                if (length is 0 or > 63 || domain[labelStart] == '-' || domain[i - 1] == '-' ||
                    (length >= 4 && domain[labelStart + 2] == '-' && domain[labelStart + 3] == '-'))
                {
                    return false;
                }

                labelStart = i + 1;
                continue;
            }

            if (!char.IsAsciiLetterOrDigit(domain[i]) && domain[i] != '-')
            {
                return false;
            }
        }

        prepared = domain.ToLowerInvariant();
        return true;
    }

    private static bool IsDottedQuad(string s)
    {
        var parts = s.Split('.');
        return parts.Length == 4 && Array.TrueForAll(parts, p =>
            p.Length is > 0 and <= 3 && p.All(char.IsAsciiDigit) && int.Parse(p, CultureInfo.InvariantCulture) <= 255);
    }

    public bool Equals(Jid? other) => other is not null && string.Equals(_text, other._text, StringComparison.Ordinal);

    public override bool Equals(object? obj) => obj is Jid other && Equals(other);

    public override int GetHashCode() => StringComparer.Ordinal.GetHashCode(_text);

    public override string ToString() => _text;

    public static bool operator ==(Jid? left, Jid? right) => left is null ? right is null : left.Equals(right);

    public static bool operator !=(Jid? left, Jid? right) => !(left == right);
}
