using System.Net;

namespace Xmpp.Server.Hosting;

/// <summary>
/// One HTTP request as a module sees it, without ASP.NET Core's types (so that a server without an HTTPS
/// listener never loads them): the HTTPS listener, and a module's own plain-HTTP listener
/// (<see cref="PlainHttpHost"/>), adapt their requests to this.
/// </summary>
public interface IHttpExchange
{
    string Method { get; }

    /// <summary>The decoded path, starting with the module's prefix.</summary>
    string Path { get; }

    string? Query(string name);

    string? Header(string name);

    /// <summary>The request's Content-Length, when it gave one.</summary>
    long? ContentLength { get; }

    Stream RequestBody { get; }

    IPAddress RemoteAddress { get; }

    /// <summary>Aborted when the client goes away (and at shutdown).</summary>
    CancellationToken Aborted { get; }

    int StatusCode { set; }

    void SetHeader(string name, string value);

    Stream ResponseBody { get; }

    /// <summary>Sends a file with its type, honouring Range, If-Range and HEAD (the framework's file result).</summary>
    Task SendFileAsync(string path, string contentType, DateTimeOffset lastModified);

    /// <summary>A short plain-text answer (errors).</summary>
    Task SendTextAsync(int statusCode, string text);
}

/// <summary>Handles a request under a module's path prefix.</summary>
public delegate Task HttpHandler(IHttpExchange exchange);

/// <summary>The HTTP paths modules serve on the HTTPS listener (one registry per module generation).</summary>
public sealed class HttpRoutes
{
    private readonly List<(string Prefix, HttpHandler Handler, string[] Methods, bool Cors)> _routes = [];

    /// <summary>A path for scripts of the configured CORS origins too (file upload).</summary>
    public void Add(string prefix, HttpHandler handler, params string[] methods) => Add(prefix, handler, cors: true, methods);

    /// <summary>
    /// A path; with <paramref name="cors"/> false, one for this origin's own pages only (the admin console, the invitation page): no
    /// CORS answers at all, so no other origin's script may read it, and preflights are refused.
    /// </summary>
    public void Add(string prefix, HttpHandler handler, bool cors, params string[] methods)
    {
        if (!prefix.StartsWith('/') || !prefix.EndsWith('/'))
        {
            throw new ArgumentException("an HTTP prefix starts and ends with '/'", nameof(prefix));
        }

        _routes.Add((prefix, handler, methods, cors));
    }

    /// <summary>The handler for a path, the methods it accepts (for CORS preflight) and whether CORS applies; null when no module serves it.</summary>
    public (HttpHandler Handler, string[] Methods, bool Cors)? Find(string path)
    {
        foreach (var (prefix, handler, methods, cors) in _routes)
        {
            if (path.StartsWith(prefix, StringComparison.Ordinal))
            {
                return (handler, methods, cors);
            }
        }

        return null;
    }
}
