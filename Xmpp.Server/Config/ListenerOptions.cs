namespace Xmpp.Server.Config;

/// <param name="Address">An IP address, "localhost" (both loopback addresses) or "*" (all interfaces).</param>
public sealed record ListenerOptions(ListenerKind Kind, string Address, int Port);
