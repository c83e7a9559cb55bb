namespace Xmpp.Server.Config;

public sealed record HostOptions(string Name, string? CertificateFile = null, string? KeyFile = null);
