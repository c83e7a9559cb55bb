using System.Collections.Concurrent;
using System.Text;
using Xmpp.Server.Hosting;

namespace Xmpp.Server.Tls.Acme;

/// <summary>
/// The HTTP-01 challenge responder (RFC 8555 §8.3): GET /.well-known/acme-challenge/TOKEN answers the key
/// authorization of a challenge under way, anything else 404. Served on a plain-HTTP listener of its own
/// (<see cref="PlainHttpHost"/>), since the CA connects to port 80 of each name.
/// </summary>
internal sealed class Http01Responder
{
    public const string PathPrefix = "/.well-known/acme-challenge/";

    private readonly ConcurrentDictionary<string, string> _keyAuthorizations = new(StringComparer.Ordinal);

    /// <summary>Set for each request that got a key authorization (for the logs).</summary>
    public Action<string, string>? Answered { get; init; }

    public void Add(string token, string keyAuthorization) => _keyAuthorizations[token] = keyAuthorization;

    public void Remove(string token) => _keyAuthorizations.TryRemove(token, out _);

    public async Task HandleAsync(IHttpExchange http)
    {
        if (http.Method is "GET" or "HEAD"
            && http.Path.StartsWith(PathPrefix, StringComparison.Ordinal)
            && _keyAuthorizations.TryGetValue(http.Path[PathPrefix.Length..], out var keyAuthorization))
        {
            http.StatusCode = 200;
            http.SetHeader("Content-Type", "application/octet-stream");
            Answered?.Invoke(http.Path[PathPrefix.Length..], http.RemoteAddress.ToString());
            if (http.Method == "GET")
            {
                await http.ResponseBody.WriteAsync(Encoding.ASCII.GetBytes(keyAuthorization), http.Aborted).ConfigureAwait(false);
            }

            return;
        }

        http.StatusCode = 404;
    }
}
