namespace Xmpp.Server.Routing;

/// <summary>
/// Hook names, in Prosody's words so its source reads side by side with ours:
/// "message/bare", "presence/full", "iq-get/host/urn:xmpp:ping:ping", ...
/// </summary>
public static class HookNames
{
    /// <summary>A stanza addressed to a remote domain (federation claims it).</summary>
    public const string RouteRemote = "route/remote";

    /// <summary>Presence without 'to' from a client: broadcast (RFC 6121 §4.2, §4.4).</summary>
    public const string PresenceBroadcast = "presence/broadcast";

    /// <summary>
    /// Presence with 'to' from a local client, before it is routed (Prosody's "pre-presence"): subscription
    /// handling updates the sender's roster here, directed presence is remembered.
    /// </summary>
    public const string PresenceOutbound = "pre-presence";

    /// <summary>
    /// Every stanza between two different accounts (or an account and another entity) of which at least one
    /// is local, before anything else handles it, on the sender's side: what the sender's own settings forbid
    /// (blocking, XEP-0191); a handler that returns true stops it. In a cluster it runs on the sender's home node.
    /// </summary>
    public const string FilterOutbound = "stanza/filter-out";

    /// <summary>
    /// The recipient's half of the filter, right after <see cref="FilterOutbound"/>: what the recipient's
    /// settings refuse. In a cluster it runs on the recipient's home node, after the sender's outbound hooks.
    /// </summary>
    public const string FilterInbound = "stanza/filter-in";

    /// <summary>A message from a local client, before it is routed (carbons copy it, blocking refuses it).</summary>
    public const string MessageOutbound = "pre-message";

    /// <summary>An iq from a local client, before it is routed.</summary>
    public const string IqOutbound = "pre-iq";

    /// <summary>"pre-KIND" for a stanza from a local client.</summary>
    public static string Outbound(string kind) => kind switch
    {
        "message" => MessageOutbound,
        "presence" => PresenceOutbound,
        "iq" => IqOutbound,
        _ => "pre-" + kind,
    };

    /// <summary>A resource became available with non-negative priority (offline messages are delivered then).</summary>
    public const string PresenceInitial = "presence/initial";

    /// <summary>A message for an existing local account that no available resource took (offline storage claims it).</summary>
    public const string MessageOffline = "message/offline/handle";

    /// <summary>A resource was bound (the session is in the session manager).</summary>
    public const string ResourceBound = "resource-bind";

    /// <summary>A bound session ended, whatever the cause (the session is already out of the session manager).</summary>
    public const string ResourceUnbound = "resource-unbind";

    /// <summary>"KIND/TARGET" for the three stanza kinds without allocating per stanza.</summary>
    public static string Stanza(string kind, Target target) => (kind, target) switch
    {
        ("message", Target.Host) => "message/host",
        ("message", Target.Bare) => "message/bare",
        ("message", Target.Full) => "message/full",
        ("presence", Target.Host) => "presence/host",
        ("presence", Target.Bare) => "presence/bare",
        ("presence", Target.Full) => "presence/full",
        ("iq", Target.Host) => "iq/host",
        ("iq", Target.Bare) => "iq/bare",
        ("iq", Target.Full) => "iq/full",
        _ => kind + "/" + TargetName(target),
    };

    public static string Iq(string type, Target target, string ns, string name) =>
        "iq-" + type + "/" + TargetName(target) + "/" + ns + ":" + name;

    public static string TargetName(Target target) => target switch
    {
        Target.Host => "host",
        Target.Bare => "bare",
        _ => "full",
    };
}

/// <summary>What a stanza's 'to' names: the server itself, an account, or one resource of an account.</summary>
public enum Target
{
    Host,
    Bare,
    Full,
}
