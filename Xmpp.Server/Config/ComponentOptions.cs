namespace Xmpp.Server.Config;

/// <param name="Domain">The component's domain (a subdomain of a host, by convention), which it serves entirely.</param>
/// <param name="Secret">The shared secret of its XEP-0114 handshake.</param>
public sealed record ComponentOptions(string Domain, string Secret);
