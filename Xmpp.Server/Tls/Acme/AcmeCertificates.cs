using System.Net;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using NLog;
using Xmpp.Server.Config;
using Xmpp.Server.Hosting;

namespace Xmpp.Server.Tls.Acme;

/// <summary>
/// Certificates from an ACME server (RFC 8555) for the hosts without a configured &lt;certificate&gt;, as
/// ejabberd's built-in ACME client gets them: one certificate per host naming the host and its service
/// subdomains, validated by HTTP-01, kept in DATA-DIR/acme/ (owner-only files: account.key, HOST.crt with
/// the chain, HOST.key) and renewed by a background loop. The core sees it as an
/// <see cref="ICertificateSource"/>, and is told to rebuild its certificates after each issuance.
/// </summary>
public sealed class AcmeCertificates : ICertificateSource, IAsyncDisposable
{
    private readonly AcmeOptions _options;
    private readonly string _dir;
    private readonly IReadOnlyList<string> _hosts;
    private readonly Logger _log;
    private readonly TimeProvider _time;
    private readonly Http01Responder _responder;
    private readonly HttpClient _http;
    private readonly Dictionary<string, Issued> _issued = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();
    private Task _loop = Task.CompletedTask;
    private Task _listener = Task.CompletedTask;
    private CancellationTokenSource? _stop;
    private AcmeJws? _account;
    private AcmeClient? _client;

    /// <param name="options">the &lt;acme&gt; element.</param>
    /// <param name="dataDirectory">the server's data directory (the files go to its acme/ folder).</param>
    /// <param name="hosts">the hosts to get certificates for (those without a &lt;certificate&gt;).</param>
    /// <param name="logs">the server's log factory.</param>
    /// <param name="time">the clock (tests).</param>
    public AcmeCertificates(AcmeOptions options, string dataDirectory, IReadOnlyList<string> hosts, LogFactory logs, TimeProvider? time = null)
    {
        _options = options;
        _dir = Path.Combine(dataDirectory, "acme");
        _hosts = hosts;
        _log = logs.GetLogger("Acme");
        _time = time ?? TimeProvider.System;
        _responder = new Http01Responder { Answered = (token, from) => _log.Debug("ACME: answered the HTTP-01 challenge {Token} for {Remote}", token, from) };
        _http = CreateHttpClient(options.CaFile);
        PrivateFiles.EnsureDirectory(_dir);
        var storedFor = File.Exists(DirectoryFile) ? File.ReadAllText(DirectoryFile).Trim() : null;
        foreach (var host in hosts)
        {
            if (TryLoad(host, out var issued, out var problem))
            {
                _issued[host] = issued with { Directory = storedFor };
            }
            else if (problem is not null)
            {
                _log.Warn("ACME: the stored certificate for {Host} does not load ({Reason}); a new one will be ordered", host, problem);
            }
        }
    }

    /// <summary>The hosts this source gets certificates for.</summary>
    public IReadOnlyList<string> Hosts => _hosts;

    private string DirectoryFile => Path.Combine(_dir, "directory");

    private string AccountKeyFile => Path.Combine(_dir, "account.key");

    /// <inheritdoc/>
    public CertificateFiles? Find(string host)
    {
        lock (_gate)
        {
            return _issued.TryGetValue(host, out var issued) ? issued.Files : null;
        }
    }

    /// <summary>
    /// Starts the HTTP-01 responder and the renewal loop: a pass at once, then every check-interval (or
    /// sooner after a failure, with backoff). <paramref name="namesFor"/> gives the names a host's
    /// certificate must carry (read at each pass: a reload may turn a service on); <paramref name="install"/>
    /// makes the server use the new files for new connections.
    /// </summary>
    public void Start(Func<string, IReadOnlyList<string>> namesFor, Func<CancellationToken, Task<bool>> install, CancellationToken stopping)
    {
        _stop = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        var endpoint = Endpoint(_options);
        _listener = ListenAsync(endpoint, _stop.Token);
        _loop = RunAsync(namesFor, install, _stop.Token);
    }

    /// <summary>The HTTP-01 responder's address: "*" is every interface (dual-stack), "localhost" is 127.0.0.1.</summary>
    public static IPEndPoint Endpoint(AcmeOptions options) => options.HttpAddress switch
    {
        "*" => new IPEndPoint(IPAddress.IPv6Any, options.HttpPort),
        "localhost" => new IPEndPoint(IPAddress.Loopback, options.HttpPort),
        var a => new IPEndPoint(IPAddress.Parse(a), options.HttpPort),
    };

    /// <summary>What a host's certificate must name: the host, then its service subdomains.</summary>
    public static IReadOnlyList<string> NamesFor(string host, IEnumerable<string> serviceDomains) =>
        [host, .. serviceDomains.Where(d => d.EndsWith("." + host, StringComparison.Ordinal)).Order(StringComparer.Ordinal)];

    private async Task ListenAsync(IPEndPoint endpoint, CancellationToken ct)
    {
        try
        {
            await PlainHttpHost.ServeAsync(endpoint, _responder.HandleAsync, address => _log.Info("ACME: answering HTTP-01 challenges on {Address}", address), ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
        catch (IOException ex)
        {
            _log.Error("ACME: cannot listen for HTTP-01 challenges on {Endpoint}: {Reason}. The CA must reach port 80 of every name (or http-port, forwarded from 80)", endpoint, ex.Message);
        }
    }

    private async Task RunAsync(Func<string, IReadOnlyList<string>> namesFor, Func<CancellationToken, Task<bool>> install, CancellationToken ct)
    {
        // Let the listeners come up first: the first pass may start right away.
        await Task.Yield();
        var failures = 0;
        while (!ct.IsCancellationRequested)
        {
            bool ok;
            try
            {
                ok = await RenewDueAsync(namesFor, install, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }

            failures = ok ? 0 : failures + 1;
            var wait = ok ? _options.CheckInterval : Backoff(_options.RetryDelay, failures, _options.CheckInterval);
            if (!ok)
            {
                _log.Warn("ACME: next attempt in {Delay}", wait);
            }

            try
            {
                await Task.Delay(wait, _time, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>The wait after the n-th failure in a row: the retry delay, doubled each time, at most the check interval.</summary>
    public static TimeSpan Backoff(TimeSpan first, int failures, TimeSpan max)
    {
        var ticks = first.Ticks;
        for (var i = 1; i < failures && ticks < max.Ticks; i++)
        {
            ticks *= 2;
        }

        return TimeSpan.FromTicks(Math.Min(ticks, max.Ticks));
    }

    /// <summary>Why a host needs a certificate now, or null when the one it has is good.</summary>
    internal string? RenewalReason(string host, IReadOnlyList<string> names)
    {
        Issued? issued;
        lock (_gate)
        {
            _issued.TryGetValue(host, out issued);
        }

        if (issued is null)
        {
            return "no certificate from ACME yet";
        }

        if (issued.Directory != _options.Directory.AbsoluteUri)
        {
            return $"it came from {issued.Directory ?? "another ACME server"}, not {_options.Directory.AbsoluteUri}";
        }

        var missing = names.Where(n => !issued.Names.Contains(n, StringComparer.OrdinalIgnoreCase)).ToList();
        if (missing.Count > 0)
        {
            return "it does not name " + string.Join(", ", missing);
        }

        var left = issued.NotAfter - _time.GetUtcNow();
        return left < TimeSpan.FromDays(_options.RenewBeforeDays)
            ? $"it expires on {issued.NotAfter:yyyy-MM-dd HH:mm} UTC, in less than {_options.RenewBeforeDays} days"
            : null;
    }

    /// <summary>One pass: every host whose certificate is missing, incomplete or due is ordered a new one. False when one failed.</summary>
    private async Task<bool> RenewDueAsync(Func<string, IReadOnlyList<string>> namesFor, Func<CancellationToken, Task<bool>> install, CancellationToken ct)
    {
        var allOk = true;
        foreach (var host in _hosts)
        {
            var names = namesFor(host);
            if (RenewalReason(host, names) is not { } reason)
            {
                continue;
            }

            _log.Info("ACME: ordering a certificate for {Host} ({Names}) from {Directory}: {Reason}", host, string.Join(", ", names), _options.Directory, reason);
            try
            {
                var issued = await IssueAsync(host, names, ct).ConfigureAwait(false);
                lock (_gate)
                {
                    _issued[host] = issued;
                }

                if (!await install(ct).ConfigureAwait(false))
                {
                    allOk = false;
                    continue;
                }

                _log.Info(
                    "ACME: certificate for {Host} installed for new connections: serial {Serial}, issuer {Issuer}, valid until {NotAfter:yyyy-MM-dd HH:mm} UTC, names {Names}",
                    host, issued.Serial, issued.Issuer, issued.NotAfter, string.Join(", ", issued.Names));
            }
            catch (AcmeException ex)
            {
                allOk = false;
                LogFailure(host, ex.Doing, ex.Problem.Type, ex.Problem.Detail ?? string.Empty, ex.Problem.Identifier ?? host, ex.Problem.Subproblems);
            }
            catch (Exception ex) when (ex is AcmeFormatException or IOException or CryptographicException or UnauthorizedAccessException)
            {
                allOk = false;
                LogFailure(host, "obtaining the certificate", "(none)", ex.Message, host, []);
            }
        }

        return allOk;
    }

    private void LogFailure(string host, string doing, string type, string detail, string identifier, IReadOnlyList<AcmeProblem> subproblems)
    {
        Issued? current;
        lock (_gate)
        {
            _issued.TryGetValue(host, out current);
        }

        var serving = current is null ? "the self-signed certificate" : $"the current certificate (valid until {current.NotAfter:yyyy-MM-dd HH:mm} UTC)";
        var subs = subproblems.Count == 0 ? string.Empty : " [" + string.Join("; ", subproblems) + "]";

        // An ACME certificate about to expire is an emergency; otherwise the server keeps serving and retries.
        var level = current is not null && current.NotAfter - _time.GetUtcNow() < TimeSpan.FromDays(3) ? LogLevel.Error : LogLevel.Warn;
        _log.Log(level, "ACME: getting a certificate for {Host} failed while {Doing}: identifier {Identifier}: {ProblemType}: {Detail}{Subproblems}; still serving {Serving}", host, doing, identifier, type, detail, subs, serving);
    }

    /// <summary>The whole order for one host (RFC 8555 §7.1 overview): account, order, authorizations, finalize, download, store.</summary>
    private async Task<Issued> IssueAsync(string host, IReadOnlyList<string> names, CancellationToken ct)
    {
        var client = Client();
        await client.EnsureAccountAsync(_options.Contact, ct).ConfigureAwait(false);
        var (order, orderUrl) = await client.NewOrderAsync(names, ct).ConfigureAwait(false);
        foreach (var authzUrl in order.Authorizations)
        {
            var authz = await client.AuthorizationAsync(authzUrl, ct).ConfigureAwait(false);
            if (authz.Status == "valid")
            {
                // §7.1.4: a CA may reuse an authorization that is still valid.
                continue;
            }

            if (authz.Status != "pending")
            {
                throw new AcmeException("authorizing " + authz.Identifier, new AcmeProblem("urn:ietf:params:acme:error:unauthorized", $"the authorization is {authz.Status}", null, authz.Identifier, []));
            }

            var challenge = authz.Challenges.FirstOrDefault(c => c.Type == "http-01" && c.Token is not null)
                ?? throw new AcmeException("authorizing " + authz.Identifier, new AcmeProblem("urn:ietf:params:acme:error:unsupportedIdentifier", "the CA offers no http-01 challenge (offered: " + string.Join(", ", authz.Challenges.Select(c => c.Type)) + ")", null, authz.Identifier, []));
            _responder.Add(challenge.Token!, _account!.KeyAuthorization(challenge.Token!));
            try
            {
                await client.RespondAsync(challenge, ct).ConfigureAwait(false);
                await client.WaitForAuthorizationAsync(authzUrl, ct).ConfigureAwait(false);
                _log.Info("ACME: {Identifier} validated (http-01)", authz.Identifier);
            }
            finally
            {
                _responder.Remove(challenge.Token!);
            }
        }

        // §7.4: the order is "ready" once every authorization is valid; then finalize with a CSR for a new key.
        order = await client.WaitForOrderAsync(orderUrl, ["ready", "valid"], ct).ConfigureAwait(false);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        if (order.Status == "ready")
        {
            await client.FinalizeAsync(order, AcmeClient.CreateCsr(key, names), ct).ConfigureAwait(false);
            order = await client.WaitForOrderAsync(orderUrl, ["valid"], ct).ConfigureAwait(false);
        }

        var certificateUrl = order.Certificate ?? throw new AcmeFormatException("a valid order without a certificate URL");
        var chainPem = await client.DownloadCertificateAsync(certificateUrl, ct).ConfigureAwait(false);
        return Store(host, chainPem, key.ExportPkcs8PrivateKeyPem(), names);
    }

    /// <summary>Checks the chain against the key and the names, then writes the key and the chain (owner-only, each replaced at once).</summary>
    private Issued Store(string host, string chainPem, string keyPem, IReadOnlyList<string> names)
    {
        using (var check = X509Certificate2.CreateFromPem(chainPem, keyPem))
        {
            var issuedNames = DnsNames(check);
            if (names.FirstOrDefault(n => !issuedNames.Contains(n, StringComparer.OrdinalIgnoreCase)) is { } missing)
            {
                throw new AcmeFormatException($"the certificate issued does not name {missing}");
            }
        }

        var certFile = Path.Combine(_dir, host + ".crt");
        var keyFile = Path.Combine(_dir, host + ".key");
        PrivateFiles.WriteAllText(keyFile + ".new", keyPem);
        PrivateFiles.WriteAllText(certFile + ".new", chainPem);
        File.Move(keyFile + ".new", keyFile, overwrite: true);
        File.Move(certFile + ".new", certFile, overwrite: true);
        PrivateFiles.WriteAllText(DirectoryFile, _options.Directory.AbsoluteUri + "\n");
        if (!TryLoad(host, out var issued, out var problem))
        {
            throw new AcmeFormatException($"the certificate stored in {certFile} does not load: {problem}");
        }

        return issued with { Directory = _options.Directory.AbsoluteUri };
    }

    private bool TryLoad(string host, out Issued issued, out string? problem)
    {
        var certFile = Path.Combine(_dir, host + ".crt");
        var keyFile = Path.Combine(_dir, host + ".key");
        issued = null!;
        problem = null;
        if (!File.Exists(certFile) || !File.Exists(keyFile))
        {
            return false;
        }

        try
        {
            using var cert = X509Certificate2.CreateFromPemFile(certFile, keyFile);
            issued = new Issued(new CertificateFiles(certFile, keyFile), DnsNames(cert), new DateTimeOffset(cert.NotAfter.ToUniversalTime(), TimeSpan.Zero), cert.SerialNumber, cert.Issuer, null);
            return true;
        }
        catch (Exception ex) when (ex is CryptographicException or IOException or ArgumentException)
        {
            problem = ex.Message;
            return false;
        }
    }

    internal static string[] DnsNames(X509Certificate2 cert) =>
        cert.Extensions.FirstOrDefault(e => e.Oid?.Value == "2.5.29.17") is { } san
            ? [.. new X509SubjectAlternativeNameExtension(san.RawData, san.Critical).EnumerateDnsNames()]
            : [];

    /// <summary>The client with the account key (created on first use, owner-only, reused across restarts).</summary>
    private AcmeClient Client()
    {
        if (_client is not null)
        {
            return _client;
        }

        if (File.Exists(AccountKeyFile))
        {
            _account = AcmeJws.FromPem(File.ReadAllText(AccountKeyFile));
        }
        else
        {
            _account = AcmeJws.Create();
            PrivateFiles.WriteAllText(AccountKeyFile, _account.ExportPem());
            _log.Info("ACME: new account key in {File}", AccountKeyFile);
        }

        _client = new AcmeClient(_http, _options.Directory, _account, _log, _time);
        return _client;
    }

    /// <summary>HTTPS to the ACME server, with the system's roots and, if given, the ca-file's.</summary>
    internal static HttpClient CreateHttpClient(string? caFile)
    {
        var handler = new SocketsHttpHandler
        {
            ConnectTimeout = TimeSpan.FromSeconds(30),
            PooledConnectionLifetime = TimeSpan.FromMinutes(10),
            AllowAutoRedirect = false,
        };
        if (caFile is not null)
        {
            var roots = new X509Certificate2Collection();
            roots.ImportFromPemFile(caFile);
            handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
            {
                if (errors == SslPolicyErrors.None)
                {
                    return true;
                }

                if (errors != SslPolicyErrors.RemoteCertificateChainErrors || certificate is null)
                {
                    return false;
                }

                using var chain = new X509Chain();
                chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
                chain.ChainPolicy.CustomTrustStore.AddRange(roots);
                chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                using var leaf = new X509Certificate2(certificate);
                return chain.Build(leaf);
            };
        }

        var http = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(60) };

        // RFC 8555 §6.1: clients send a User-Agent.
        http.DefaultRequestHeaders.TryAddWithoutValidation("User-Agent", "xmppserver/" + Modules.Version.VersionModule.ProductVersion);
        return http;
    }

    /// <summary>Stops the loop and the responder, waiting for both.</summary>
    public async Task StopAsync()
    {
        if (_stop is null)
        {
            return;
        }

        await _stop.CancelAsync().ConfigureAwait(false);
        await _loop.ConfigureAwait(false);
        await _listener.ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync().ConfigureAwait(false);
        _stop?.Dispose();
        _http.Dispose();
        _account?.Dispose();
    }

    /// <summary>A certificate from ACME on disk: its files, names, expiry, and the directory it came from.</summary>
    private sealed record Issued(CertificateFiles Files, string[] Names, DateTimeOffset NotAfter, string Serial, string Issuer, string? Directory);
}
