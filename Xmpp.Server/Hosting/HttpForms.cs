using System.Buffers;
using System.Net;
using System.Text;

namespace Xmpp.Server.Hosting;

/// <summary>What the server's own HTML forms (the invitation page, the admin console) need from a request.</summary>
public static class HttpForms
{
    /// <summary>The largest form body read: a form of a few fields.</summary>
    public const int MaxBody = 16 * 1024;

    /// <summary>An Origin header naming this very host (scheme https, the port the Host header has).</summary>
    public static bool SameOrigin(string origin, string? host) =>
        host is not null && Uri.TryCreate(origin, UriKind.Absolute, out var o) && o.Scheme == "https"
        && string.Equals(o.Authority, host, StringComparison.OrdinalIgnoreCase);

    /// <summary>An application/x-www-form-urlencoded body of at most <see cref="MaxBody"/> bytes; null when larger. The first value of a repeated name wins.</summary>
    public static async Task<Dictionary<string, string>?> ReadAsync(IHttpExchange http)
    {
        if (http.ContentLength > MaxBody)
        {
            return null;
        }

        var buffer = ArrayPool<byte>.Shared.Rent(MaxBody + 1);
        try
        {
            var read = 0;
            int n;
            while (read <= MaxBody && (n = await http.RequestBody.ReadAsync(buffer.AsMemory(read, MaxBody + 1 - read), http.Aborted).ConfigureAwait(false)) > 0)
            {
                read += n;
            }

            if (read > MaxBody)
            {
                return null;
            }

            var values = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var pair in Encoding.UTF8.GetString(buffer, 0, read).Split('&', StringSplitOptions.RemoveEmptyEntries))
            {
                var eq = pair.IndexOf('=', StringComparison.Ordinal);
                var name = WebUtility.UrlDecode(eq < 0 ? pair : pair[..eq]);
                var value = eq < 0 ? string.Empty : WebUtility.UrlDecode(pair[(eq + 1)..]);
                values.TryAdd(name, value);
            }

            return values;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
