namespace Xmpp.Server.Config;

public sealed record LimitOptions
{
    /// <summary>Bytes of one top-level element on a client stream (policy-violation beyond it).</summary>
    public int StanzaSize { get; init; } = 256 * 1024;

    /// <summary>The same on a server-to-server stream, which carries other servers' larger stanzas (Prosody's default).</summary>
    public int S2sStanzaSize { get; init; } = 512 * 1024;

    public int MaxDepth { get; init; } = 64;

    /// <summary>Attributes on one element, namespace declarations not counted.</summary>
    public int MaxAttributes { get; init; } = 64;

    /// <summary>Namespace declarations on one element.</summary>
    public int MaxNamespaces { get; init; } = 32;

    /// <summary>Open connections (client and server streams together) from one IP address; 0: no limit.</summary>
    public int ConnectionsPerIp { get; init; } = 100;

    /// <summary>
    /// Stanzas (and other top-level elements) a client stream may send per second, sustained; a token
    /// bucket of <see cref="StanzaBurst"/> tokens refilled at this rate. A client that empties it gets a
    /// policy-violation stream error. 0: no limit.
    /// </summary>
    public double StanzaRate { get; init; } = 50;

    /// <summary>Size of that bucket: how many elements a client may send at once.</summary>
    public int StanzaBurst { get; init; } = 250;

    /// <summary>Resources bound at once to one account; one more is refused with resource-constraint (RFC 6120 §7.6.2.1).</summary>
    public int SessionsPerAccount { get; init; } = 16;

    /// <summary>How long a connection may take from accept to a bound resource.</summary>
    public TimeSpan AuthTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Stanzas queued for one connection before it is treated as a stuck reader and closed.</summary>
    public int OutputQueue { get; init; } = 10_000;

    /// <summary>
    /// Bytes queued for one connection (estimated from the stanzas' size on the wire) before it is treated
    /// as a stuck reader and closed: without it, 10,000 stanzas of 256 KiB could hold 2.5 GiB.
    /// </summary>
    public long OutputBytes { get; init; } = 16 * 1024 * 1024;

    /// <summary>How long to wait for the peer's closing tag after sending ours.</summary>
    public TimeSpan CloseTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// A bound connection silent this long is closed with connection-timeout (and its session ends, so its
    /// contacts see it go offline); halfway through the silence the server pings the client (XEP-0199).
    /// </summary>
    public TimeSpan IdleTimeout { get; init; } = TimeSpan.FromSeconds(300);

    /// <summary>Roster entries per account (items and remembered subscription requests together).</summary>
    public int RosterItems { get; init; } = 2000;
}
