using System.Text;
using Xmpp.Core.Addressing;

namespace Xmpp.Fuzz;

/// <summary>
/// JID parsing (RFC 7622 with PRECIS): parsing never throws, and a parsed JID is canonical, so parsing
/// its text again, or building it from its parts, gives the same JID (RFC 7622 §3: preparation is
/// idempotent; a server compares JIDs by their prepared text).
/// </summary>
public static class JidTarget
{
    private static readonly UTF8Encoding Utf8 = new(false, false);

    public static void Run(byte[] input)
    {
        var text = Utf8.GetString(input);
        if (!Jid.TryParse(text, out var jid))
        {
            return;
        }

        var canonical = jid.ToString();
        if (!Jid.TryParse(canonical, out var again) || again != jid)
        {
            throw new FuzzFindingException($"'{canonical}' (from '{text}') does not parse back to itself");
        }

        if (!Jid.TryCreate(jid.Local, jid.Domain, jid.Resource, out var built) || built != jid)
        {
            throw new FuzzFindingException($"'{canonical}' cannot be rebuilt from its parts");
        }

        if (!Jid.TryParse(jid.Bare.ToString(), out var bare) || bare != jid.Bare || !bare.IsBare)
        {
            throw new FuzzFindingException($"the bare JID of '{canonical}' does not parse back to itself");
        }

        if (jid.Local is { } local && (!Jid.TryPrepareLocal(local, out var l) || l != local))
        {
            throw new FuzzFindingException($"localpart '{local}' is not stable under preparation");
        }

        if (jid.Resource is { } resource && (!Jid.TryPrepareResource(resource, out var r) || r != resource))
        {
            throw new FuzzFindingException($"resourcepart '{resource}' is not stable under preparation");
        }

        if (!Jid.TryPrepareDomain(jid.Domain, out var d) || d != jid.Domain)
        {
            throw new FuzzFindingException($"domainpart '{jid.Domain}' is not stable under preparation");
        }

        if (Encoding.UTF8.GetByteCount(jid.Domain) > 1023 || (jid.Local is { } lp && Encoding.UTF8.GetByteCount(lp) > 1023) ||
            (jid.Resource is { } rp && Encoding.UTF8.GetByteCount(rp) > 1023))
        {
            throw new FuzzFindingException($"a part of '{canonical}' is longer than 1023 bytes (RFC 7622 §3.2-3.4)");
        }
    }
}
