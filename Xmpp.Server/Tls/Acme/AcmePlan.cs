using System.Globalization;
using Xmpp.Server.Config;

namespace Xmpp.Server.Tls.Acme;

/// <summary>What <c>xmppserver check</c> says ACME will do with a configuration (nothing is sent to the CA).</summary>
internal static class AcmePlan
{
    public static IEnumerable<string> Describe(ServerOptions options)
    {
        if (options.Acme is not { } acme)
        {
            yield break;
        }

        var ci = CultureInfo.InvariantCulture;
        yield return string.Create(ci, $"ACME: directory {acme.Directory} (https), account contact {(acme.Contact.Count == 0 ? "none" : string.Join(", ", acme.Contact))}; the terms of service are agreed to");
        var stored = Path.Combine(options.DataDirectory, "acme");
        foreach (var host in options.Hosts)
        {
            if (host.CertificateFile is not null)
            {
                yield return $"ACME: host {host.Name}: not handled, it has its own <certificate>";
                continue;
            }

            var names = AcmeCertificates.NamesFor(host.Name, ServiceDomains(options, host.Name));
            var file = Path.Combine(stored, host.Name + ".crt");
            yield return string.Create(ci, $"ACME: host {host.Name}: a certificate for {string.Join(", ", names)} by HTTP-01, {(File.Exists(file) ? "the one in " + file + " renewed" : "ordered at start into " + file + ", renewed")} when fewer than {acme.RenewBeforeDays} days remain (checked every {acme.CheckInterval.TotalHours:0.##} h)");
        }

        yield return string.Create(ci, $"ACME: HTTP-01 answered on {AcmeCertificates.Endpoint(acme)}: every name must resolve (DNS A/AAAA) to this server, and the CA must reach it on port 80{(acme.HttpPort == 80 ? string.Empty : $" (forwarded to {acme.HttpPort})")}");
    }

    /// <summary>
    /// The service subdomains the modules will serve (muc and pubsub, each under its 'subdomain' option). The
    /// running server asks the loaded modules instead (ModuleHost.ServiceDomains); check loads none.
    /// </summary>
    private static IEnumerable<string> ServiceDomains(ServerOptions options, string host)
    {
        foreach (var (module, fallback) in new[] { ("muc", "conference"), ("pubsub", "pubsub") })
        {
            if (options.Modules.TryGetValue(module, out var attributes))
            {
                yield return (attributes.TryGetValue("subdomain", out var sub) ? sub : fallback) + "." + host;
            }
        }
    }
}
