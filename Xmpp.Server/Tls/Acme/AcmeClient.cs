using System.Buffers;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using NLog;

namespace Xmpp.Server.Tls.Acme;

/// <summary>
/// The client side of RFC 8555 over one <see cref="HttpClient"/> and one account key: directory, nonces,
/// account, orders, authorizations, challenges, finalization and the certificate download. One caller at
/// a time (the renewal loop).
/// </summary>
internal sealed class AcmeClient
{
    private const string JoseJson = "application/jose+json";
    private const string ProblemJson = "application/problem+json";

    /// <summary>
    /// How often one request is retried after badNonce. Each retry is one round trip with the nonce the error
    /// brought, so being generous costs nothing, while giving up fails the whole order and waits out the retry
    /// delay. Against a CA that rejects half of all good nonces (pebble's PEBBLE_WFE_NONCEREJECT=50), four
    /// retries gave up on one request in 32, about one order in three; ten give up on one in 2,048.
    /// </summary>
    internal const int BadNonceRetries = 10;

    private readonly HttpClient _http;
    private readonly Uri _directoryUrl;
    private readonly AcmeJws _key;
    private readonly Logger _log;
    private readonly TimeProvider _time;
    private AcmeDirectory? _directory;
    private string? _nonce;
    private string? _kid;

    public AcmeClient(HttpClient http, Uri directoryUrl, AcmeJws key, Logger log, TimeProvider? time = null)
    {
        _http = http;
        _directoryUrl = directoryUrl;
        _key = key;
        _log = log;
        _time = time ?? TimeProvider.System;
    }

    /// <summary>The longest the client waits for a challenge, an order or a certificate to be ready.</summary>
    public TimeSpan PollTimeout { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>The account URL, once <see cref="EnsureAccountAsync"/> has run.</summary>
    public string? AccountUrl => _kid;

    public async Task<AcmeDirectory> DirectoryAsync(CancellationToken ct)
    {
        if (_directory is not null)
        {
            return _directory;
        }

        using var response = await SendAsync(new HttpRequestMessage(HttpMethod.Get, _directoryUrl), "reading the directory", ct).ConfigureAwait(false);
        var body = await response.Content.ReadAsByteArrayAsync(ct).ConfigureAwait(false);
        _directory = Parse(() => AcmeDirectory.Parse(body, _directoryUrl));
        return _directory;
    }

    /// <summary>
    /// newAccount (RFC 8555 §7.3): with the same key an existing account is found again (200 and its URL in
    /// Location), so the account URL is not stored; the terms of service are agreed to.
    /// </summary>
    public async Task<string> EnsureAccountAsync(IReadOnlyList<string> contact, CancellationToken ct)
    {
        if (_kid is not null)
        {
            return _kid;
        }

        var dir = await DirectoryAsync(ct).ConfigureAwait(false);
        var payload = Json(w =>
        {
            w.WriteStartObject();
            w.WriteBoolean("termsOfServiceAgreed", true);
            w.WriteStartArray("contact");
            foreach (var c in contact)
            {
                w.WriteStringValue(c);
            }

            w.WriteEndArray();
            w.WriteEndObject();
        });
        using var response = await PostAsync(dir.NewAccount, payload, useJwk: true, "creating the account", ct).ConfigureAwait(false);
        _kid = response.Headers.Location?.AbsoluteUri ?? throw new AcmeFormatException("newAccount answered without a Location");
        _log.Info("ACME account {Account} at {Directory} ({Status})", _kid, _directoryUrl, response.StatusCode == HttpStatusCode.Created ? "new" : "existing");
        return _kid;
    }

    /// <summary>newOrder with one dns identifier per name (RFC 8555 §7.4); the order and its URL.</summary>
    public async Task<(AcmeOrder Order, Uri Url)> NewOrderAsync(IReadOnlyList<string> names, CancellationToken ct)
    {
        var dir = await DirectoryAsync(ct).ConfigureAwait(false);
        var payload = Json(w =>
        {
            w.WriteStartObject();
            w.WriteStartArray("identifiers");
            foreach (var n in names)
            {
                w.WriteStartObject();
                w.WriteString("type", "dns");
                w.WriteString("value", n);
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteEndObject();
        });
        using var response = await PostAsync(dir.NewOrder, payload, useJwk: false, "creating an order for " + string.Join(", ", names), ct).ConfigureAwait(false);
        var url = response.Headers.Location ?? throw new AcmeFormatException("newOrder answered without a Location");
        var body = await response.Content.ReadAsByteArrayAsync(ct).ConfigureAwait(false);
        return (Parse(() => AcmeOrder.Parse(body, url)), url);
    }

    public async Task<AcmeAuthorization> AuthorizationAsync(Uri url, CancellationToken ct)
    {
        using var response = await PostAsGetAsync(url, "reading an authorization", ct).ConfigureAwait(false);
        var body = await response.Content.ReadAsByteArrayAsync(ct).ConfigureAwait(false);
        return Parse(() => AcmeAuthorization.Parse(body, url));
    }

    public async Task<(AcmeOrder Order, TimeSpan? RetryAfter)> OrderAsync(Uri url, CancellationToken ct)
    {
        using var response = await PostAsGetAsync(url, "reading the order", ct).ConfigureAwait(false);
        var body = await response.Content.ReadAsByteArrayAsync(ct).ConfigureAwait(false);
        return (Parse(() => AcmeOrder.Parse(body, url)), RetryAfter(response));
    }

    /// <summary>Tells the server the challenge is ready to be validated (RFC 8555 §7.5.1: the payload is an empty object).</summary>
    public async Task RespondAsync(AcmeChallenge challenge, CancellationToken ct)
    {
        using var response = await PostAsync(challenge.Url, "{}"u8.ToArray(), useJwk: false, "answering the challenge " + challenge.Url, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Polls an authorization until it is no longer pending (RFC 8555 §7.5.1), waiting as Retry-After
    /// says. Returns it valid, or throws with the failed challenge's problem and the identifier.
    /// </summary>
    public async Task<AcmeAuthorization> WaitForAuthorizationAsync(Uri url, CancellationToken ct)
    {
        var deadline = _time.GetUtcNow() + PollTimeout;
        var delay = TimeSpan.FromMilliseconds(250);
        while (true)
        {
            using var response = await PostAsGetAsync(url, "reading an authorization", ct).ConfigureAwait(false);
            var body = await response.Content.ReadAsByteArrayAsync(ct).ConfigureAwait(false);
            var authz = Parse(() => AcmeAuthorization.Parse(body, url));
            switch (authz.Status)
            {
                case "valid":
                    return authz;
                case "pending" or "processing":
                    break;
                default:
                    // §7.1.6: invalid (a challenge failed), deactivated, expired or revoked. The failed
                    // challenge carries the reason (§8.2).
                    var failed = authz.Challenges.FirstOrDefault(c => c.Error is not null);
                    var problem = failed?.Error ?? new AcmeProblem("urn:ietf:params:acme:error:unauthorized", $"authorization is {authz.Status}", null, null, []);
                    throw new AcmeException($"validating {authz.Identifier}" + (failed is null ? string.Empty : $" ({failed.Type})"), problem with { Identifier = problem.Identifier ?? authz.Identifier });
            }

            delay = await PollDelayAsync(RetryAfter(response), delay, deadline, "authorization for " + authz.Identifier, ct).ConfigureAwait(false);
        }
    }

    /// <summary>Polls an order until its status is one of <paramref name="wanted"/>; throws when it became invalid.</summary>
    public async Task<AcmeOrder> WaitForOrderAsync(Uri url, string[] wanted, CancellationToken ct)
    {
        var deadline = _time.GetUtcNow() + PollTimeout;
        var delay = TimeSpan.FromMilliseconds(250);
        while (true)
        {
            var (order, retryAfter) = await OrderAsync(url, ct).ConfigureAwait(false);
            if (Array.IndexOf(wanted, order.Status) >= 0)
            {
                return order;
            }

            if (order.Status == "invalid")
            {
                throw new AcmeException("the order " + url + " became invalid", order.Error ?? new AcmeProblem("urn:ietf:params:acme:error:orderNotReady", "order is invalid", null, null, []));
            }

            delay = await PollDelayAsync(retryAfter, delay, deadline, "order " + url, ct).ConfigureAwait(false);
        }
    }

    /// <summary>Sends the CSR (RFC 8555 §7.4: DER, base64url) to the order's finalize URL.</summary>
    public async Task FinalizeAsync(AcmeOrder order, byte[] csrDer, CancellationToken ct)
    {
        var payload = Json(w =>
        {
            w.WriteStartObject();
            w.WriteString("csr", System.Buffers.Text.Base64Url.EncodeToString(csrDer));
            w.WriteEndObject();
        });
        using var response = await PostAsync(order.Finalize, payload, useJwk: false, "finalizing the order", ct).ConfigureAwait(false);
    }

    /// <summary>Downloads the certificate chain (RFC 8555 §7.4.2: application/pem-certificate-chain).</summary>
    public async Task<string> DownloadCertificateAsync(Uri url, CancellationToken ct)
    {
        using var response = await PostAsGetAsync(url, "downloading the certificate", ct, "application/pem-certificate-chain").ConfigureAwait(false);
        return await response.Content.ReadAsStringAsync(ct).ConfigureAwait(false);
    }

    /// <summary>
    /// A CSR for the names (RFC 8555 §7.4, RFC 2986): the first as CN when it fits the 64 characters
    /// X.520 allows (the CA copies the names from the SANs anyway), all of them as DNS SANs.
    /// </summary>
    public static byte[] CreateCsr(ECDsa certificateKey, IReadOnlyList<string> names)
    {
        var subject = names[0].Length <= 64 ? new X500DistinguishedName("CN=" + names[0]) : new X500DistinguishedName(string.Empty);
        var request = new CertificateRequest(subject, certificateKey, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        foreach (var n in names)
        {
            san.AddDnsName(n);
        }

        request.CertificateExtensions.Add(san.Build());
        return request.CreateSigningRequest();
    }

    private async Task<TimeSpan> PollDelayAsync(TimeSpan? retryAfter, TimeSpan delay, DateTimeOffset deadline, string what, CancellationToken ct)
    {
        var wait = retryAfter ?? delay;
        if (wait > TimeSpan.FromMinutes(1))
        {
            wait = TimeSpan.FromMinutes(1);
        }

        if (_time.GetUtcNow() + wait > deadline)
        {
            throw new AcmeException("waiting for the " + what, new AcmeProblem("urn:ietf:params:acme:error:serverInternal", $"still not done after {PollTimeout.TotalSeconds:0} s", null, null, []));
        }

        await Task.Delay(wait, _time, ct).ConfigureAwait(false);
        return TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(10).Ticks));
    }

    private Task<HttpResponseMessage> PostAsGetAsync(Uri url, string doing, CancellationToken ct, string? accept = null) =>
        PostAsync(url, null, useJwk: false, doing, ct, accept);

    /// <summary>
    /// A signed POST (RFC 8555 §6.2), with a fresh nonce (§7.2). A badNonce error is retried with the nonce
    /// that came with it (§6.5: clients should retry, the error carries a new nonce), up to
    /// <see cref="BadNonceRetries"/> times, since a CA may reject a share of good nonces on purpose (pebble
    /// does, to test exactly this).
    /// </summary>
    private async Task<HttpResponseMessage> PostAsync(Uri url, byte[]? payload, bool useJwk, string doing, CancellationToken ct, string? accept = null)
    {
        for (var attempt = 0; ; attempt++)
        {
            var nonce = await TakeNonceAsync(ct).ConfigureAwait(false);
            var kid = useJwk ? null : _kid ?? throw new InvalidOperationException("no ACME account yet");
            var body = _key.Sign(url, nonce, kid, payload ?? [], postAsGet: payload is null);
            var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = new ByteArrayContent(body) };
            request.Content.Headers.ContentType = new MediaTypeHeaderValue(JoseJson);
            if (accept is not null)
            {
                request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(accept));
            }

            try
            {
                return await SendAsync(request, doing, ct).ConfigureAwait(false);
            }
            catch (AcmeException ex) when (ex.Problem.Type == AcmeProblem.BadNonce && attempt < BadNonceRetries)
            {
                _log.Debug("ACME: badNonce while {Doing}; retrying with the fresh nonce", doing);
            }
        }
    }

    private async Task<string> TakeNonceAsync(CancellationToken ct)
    {
        if (Interlocked.Exchange(ref _nonce, null) is { } nonce)
        {
            return nonce;
        }

        var dir = await DirectoryAsync(ct).ConfigureAwait(false);
        using var response = await SendAsync(new HttpRequestMessage(HttpMethod.Head, dir.NewNonce), "getting a nonce", ct).ConfigureAwait(false);
        return Interlocked.Exchange(ref _nonce, null) ?? throw new AcmeFormatException("newNonce answered without a Replay-Nonce");
    }

    /// <summary>Sends; keeps the Replay-Nonce; turns a problem document (or any failure) into an <see cref="AcmeException"/>.</summary>
    private async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, string doing, CancellationToken ct)
    {
        HttpResponseMessage response;
        try
        {
            using (request)
            {
                response = await _http.SendAsync(request, ct).ConfigureAwait(false);
            }
        }
        catch (HttpRequestException ex)
        {
            throw new AcmeException(doing, new AcmeProblem("urn:ietf:params:acme:error:connection", $"{request.RequestUri}: {ex.Message}", null, null, []));
        }
        catch (TaskCanceledException ex) when (!ct.IsCancellationRequested)
        {
            throw new AcmeException(doing, new AcmeProblem("urn:ietf:params:acme:error:connection", $"{request.RequestUri}: timed out ({ex.Message})", null, null, []));
        }

        if (response.Headers.TryGetValues("Replay-Nonce", out var nonces) && nonces.FirstOrDefault() is { Length: > 0 } nonce)
        {
            _nonce = nonce;
        }

        if (response.IsSuccessStatusCode)
        {
            return response;
        }

        using (response)
        {
            var body = await response.Content.ReadAsByteArrayAsync(ct).ConfigureAwait(false);
            AcmeProblem problem;
            if (response.Content.Headers.ContentType?.MediaType == ProblemJson)
            {
                try
                {
                    problem = AcmeProblem.Parse(body);
                }
                catch (JsonException)
                {
                    problem = new AcmeProblem("about:blank", "an unreadable problem document", (int)response.StatusCode, null, []);
                }
            }
            else
            {
                problem = new AcmeProblem("about:blank", $"HTTP {(int)response.StatusCode} {response.ReasonPhrase}", (int)response.StatusCode, null, []);
            }

            throw new AcmeException(doing, problem);
        }
    }

    /// <summary>Retry-After in seconds or as an HTTP date (RFC 8555 §7.5.1, §8.2).</summary>
    private TimeSpan? RetryAfter(HttpResponseMessage response)
    {
        var header = response.Headers.RetryAfter;
        if (header?.Delta is { } delta)
        {
            return delta;
        }

        return header?.Date is { } date ? (date - _time.GetUtcNow()) is var d && d > TimeSpan.Zero ? d : TimeSpan.Zero : null;
    }

    private static T Parse<T>(Func<T> parse)
    {
        try
        {
            return parse();
        }
        catch (JsonException ex)
        {
            throw new AcmeFormatException(ex.Message);
        }
    }

    private static byte[] Json(Action<Utf8JsonWriter> write)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer))
        {
            write(w);
        }

        return buffer.WrittenSpan.ToArray();
    }
}
