namespace Xmpp.Server.Config;

/// <param name="Host">A host name (resolved with the configured DNS server) or an IP address.</param>
public sealed record S2sRoute(string Host, int Port, bool DirectTls);
