using System.Net;
using DnsClient;
using DnsClient.Protocol;
using NLog;
using Xmpp.Server.Config;

namespace Xmpp.Server.S2s;

/// <summary>One place to try when connecting to a remote domain.</summary>
public sealed record S2sTarget(string Host, int Port, bool DirectTls);

/// <summary>An SRV record as far as ordering is concerned.</summary>
public sealed record SrvRecord(string Target, int Port, int Priority, int Weight, bool DirectTls);

/// <summary>
/// Finds where a remote domain's server listens (RFC 6120 §3.2, XEP-0368): configured routes first;
/// else `_xmpps-server._tcp` (direct TLS) and `_xmpp-server._tcp` (STARTTLS) SRV records, ordered by
/// priority and by weight (RFC 2782), direct TLS first at equal priority; else the domain itself on
/// port 5269. Addresses of the targets are looked up with the same DNS server.
/// </summary>
[Specification("XEP-0368", "1.1.0", Note = "_xmpps-server direct-TLS SRV records, and a direct-TLS server listener (s2s-tls).")]
public sealed class SrvResolver
{
    private readonly Lazy<LookupClient> _dns;
    private readonly S2sOptions _options;
    private readonly Logger _log;

    public SrvResolver(S2sOptions options, Logger log)
    {
        _options = options;
        _log = log;
        var dnsOptions = options.DnsServer is { } server
            ? new LookupClientOptions(ParseServer(server))
            : new LookupClientOptions();
        dnsOptions.UseCache = true;
        dnsOptions.Timeout = options.ConnectTimeout < TimeSpan.FromSeconds(5) ? options.ConnectTimeout : TimeSpan.FromSeconds(5);
        dnsOptions.Retries = 1;
        dnsOptions.ThrowDnsErrors = false;
        dnsOptions.ContinueOnDnsError = true;
        dnsOptions.UseTcpFallback = true;
        // Made at the first lookup: reading the resolver configuration and loading DnsClient wait until a
        // remote domain is contacted (many servers never do after a start, or only much later).
        _dns = new Lazy<LookupClient>(() => new LookupClient(dnsOptions));
    }

    private static IPEndPoint ParseServer(string text) =>
        IPEndPoint.TryParse(text, out var ep) ? (ep.Port == 0 ? new IPEndPoint(ep.Address, 53) : ep) : throw new ArgumentException($"bad DNS server '{text}'");

    /// <summary>The targets to try in order (never empty).</summary>
    public async Task<IReadOnlyList<S2sTarget>> ResolveAsync(string domain, CancellationToken cancellationToken)
    {
        if (_options.Routes.TryGetValue(domain, out var route))
        {
            return [new S2sTarget(route.Host, route.Port, route.DirectTls)];
        }

        var records = new List<SrvRecord>();
        foreach (var (service, directTls) in new[] { ("_xmpps-server._tcp.", true), ("_xmpp-server._tcp.", false) })
        {
            try
            {
                var answer = await _dns.Value.QueryAsync(service + domain, QueryType.SRV, cancellationToken: cancellationToken).ConfigureAwait(false);
                foreach (var srv in answer.Answers.SrvRecords())
                {
                    records.Add(new SrvRecord(srv.Target.Value.TrimEnd('.'), srv.Port, srv.Priority, srv.Weight, directTls));
                }
            }
            catch (DnsResponseException ex)
            {
                _log.Debug("SRV lookup {Service}{Domain} failed: {Reason}", service, domain, ex.Message);
            }
        }

        // RFC 2782: a single record with target "." means the service is decidedly not available.
        if (records.Count == 1 && records[0].Target.Length == 0)
        {
            return [];
        }

        if (records.Count == 0)
        {
            return [new S2sTarget(domain, 5269, false)];
        }

        return Order(records, Random.Shared).Select(r => new S2sTarget(r.Target, r.Port, r.DirectTls)).ToList();
    }

    /// <summary>
    /// RFC 2782 ordering: ascending priority; within a priority, a weighted random order (weight 0 last
    /// among equals, still possible); XEP-0368: direct TLS before STARTTLS when priorities are equal.
    /// </summary>
    public static IEnumerable<SrvRecord> Order(IReadOnlyList<SrvRecord> records, Random random)
    {
        foreach (var group in records.Where(r => r.Target.Length > 0).GroupBy(r => r.Priority).OrderBy(g => g.Key))
        {
            foreach (var tls in new[] { true, false })
            {
                var pool = group.Where(r => r.DirectTls == tls).OrderBy(r => r.Weight == 0 ? 0 : 1).ToList();
                while (pool.Count > 0)
                {
                    var total = pool.Sum(r => r.Weight);
                    var pick = total == 0 ? 0 : random.Next(total + 1);
                    var running = 0;
                    var chosen = pool[^1];
                    foreach (var r in pool)
                    {
                        running += r.Weight;
                        if (running >= pick)
                        {
                            chosen = r;
                            break;
                        }
                    }

                    pool.Remove(chosen);
                    yield return chosen;
                }
            }
        }
    }

    /// <summary>The addresses of a target host (an IP address is itself), IPv6 and IPv4.</summary>
    public async Task<IReadOnlyList<IPAddress>> AddressesAsync(string host, CancellationToken cancellationToken)
    {
        if (IPAddress.TryParse(host, out var ip))
        {
            return [ip];
        }

        var list = new List<IPAddress>();
        foreach (var type in new[] { QueryType.AAAA, QueryType.A })
        {
            try
            {
                var answer = await _dns.Value.QueryAsync(host, type, cancellationToken: cancellationToken).ConfigureAwait(false);
                list.AddRange(answer.Answers.OfType<AddressRecord>().Select(a => a.Address));
            }
            catch (DnsResponseException ex)
            {
                _log.Debug("Address lookup {Type} {Host} failed: {Reason}", type, host, ex.Message);
            }
        }

        if (list.Count == 0 && _options.DnsServer is null)
        {
            // No DNS answer from the system resolver's server: the hosts file may still know it.
            try
            {
                list.AddRange(await Dns.GetHostAddressesAsync(host, cancellationToken).ConfigureAwait(false));
            }
            catch (System.Net.Sockets.SocketException)
            {
                // Not found.
            }
        }

        return list;
    }
}
