using System.Net;
using System.Net.Http.Headers;
using System.Text;
using NLog;
using Xmpp.Server.Tls.Acme;

namespace Xmpp.Tests.Server.Acme;

/// <summary>
/// The client's badNonce handling (RFC 8555 §6.5) against a scripted CA: the error's Replay-Nonce is used for
/// the retry, a run of rejections is ridden out, and only a run longer than the limit fails the request.
/// </summary>
public sealed class AcmeClientRetryTests
{
    [Test]
    public async Task A_run_of_bad_nonces_up_to_the_limit_is_retried_with_each_errors_nonce()
    {
        var ca = new ScriptedCa(rejections: AcmeClient.BadNonceRetries);
        using var http = new HttpClient(ca);
        var client = new AcmeClient(http, new Uri("https://ca.test/dir"), AcmeJws.Create(), LogManager.CreateNullLogger());

        var account = await client.EnsureAccountAsync(["mailto:admin@example.test"], CancellationToken.None);

        Assert.Multiple(() =>
        {
            Assert.That(account, Is.EqualTo("https://ca.test/acct/1"));
            Assert.That(ca.AccountPosts, Is.EqualTo(AcmeClient.BadNonceRetries + 1));
            Assert.That(ca.NonceRequests, Is.EqualTo(1), "one HEAD newNonce; every retry uses the nonce the error brought");
            Assert.That(ca.NoncesSeen, Is.Unique, "no nonce is sent twice");
        });
    }

    [Test]
    public void A_longer_run_fails_the_request_with_bad_nonce()
    {
        var ca = new ScriptedCa(rejections: AcmeClient.BadNonceRetries + 1);
        using var http = new HttpClient(ca);
        var client = new AcmeClient(http, new Uri("https://ca.test/dir"), AcmeJws.Create(), LogManager.CreateNullLogger());

        var ex = Assert.ThrowsAsync<AcmeException>(() => client.EnsureAccountAsync([], CancellationToken.None));

        Assert.Multiple(() =>
        {
            Assert.That(ex!.Problem.Type, Is.EqualTo(AcmeProblem.BadNonce));
            Assert.That(ex.Doing, Is.EqualTo("creating the account"));
            Assert.That(ca.AccountPosts, Is.EqualTo(AcmeClient.BadNonceRetries + 1));
        });
    }

    /// <summary>A directory, newNonce, and a newAccount that answers badNonce the first <c>rejections</c> times.</summary>
    private sealed class ScriptedCa(int rejections) : HttpMessageHandler
    {
        private int _nonce;

        public int AccountPosts { get; private set; }

        public int NonceRequests { get; private set; }

        public List<string> NoncesSeen { get; } = [];

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            switch (request.Method.Method, request.RequestUri!.AbsolutePath)
            {
                case ("GET", "/dir"):
                    return Json(HttpStatusCode.OK, """{"newNonce":"https://ca.test/nonce","newAccount":"https://ca.test/acct","newOrder":"https://ca.test/order"}""", "application/json");
                case ("HEAD", "/nonce"):
                    NonceRequests++;
                    return WithNonce(new HttpResponseMessage(HttpStatusCode.OK));
                case ("POST", "/acct"):
                    AccountPosts++;
                    using (var jws = System.Text.Json.JsonDocument.Parse(await request.Content!.ReadAsByteArrayAsync(cancellationToken)))
                    {
                        var header = System.Buffers.Text.Base64Url.DecodeFromChars(jws.RootElement.GetProperty("protected").GetString());
                        using var protectedHeader = System.Text.Json.JsonDocument.Parse(header);
                        NoncesSeen.Add(protectedHeader.RootElement.GetProperty("nonce").GetString()!);
                    }

                    if (AccountPosts <= rejections)
                    {
                        return WithNonce(Json(HttpStatusCode.BadRequest, """{"type":"urn:ietf:params:acme:error:badNonce","detail":"JWS has an invalid anti-replay nonce"}""", "application/problem+json"));
                    }

                    var created = WithNonce(Json(HttpStatusCode.Created, """{"status":"valid"}""", "application/json"));
                    created.Headers.Location = new Uri("https://ca.test/acct/1");
                    return created;
                default:
                    return new HttpResponseMessage(HttpStatusCode.NotFound);
            }
        }

        private static HttpResponseMessage Json(HttpStatusCode status, string body, string mediaType)
        {
            var response = new HttpResponseMessage(status) { Content = new StringContent(body, Encoding.UTF8) };
            response.Content.Headers.ContentType = new MediaTypeHeaderValue(mediaType);
            return response;
        }

        private HttpResponseMessage WithNonce(HttpResponseMessage response)
        {
            response.Headers.Add("Replay-Nonce", "nonce-" + (++_nonce).ToString(System.Globalization.CultureInfo.InvariantCulture));
            return response;
        }
    }
}
