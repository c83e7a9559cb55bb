using System.Net;
using Microsoft.AspNetCore.Http;

namespace Xmpp.Server.Hosting;

/// <summary>A module's view (<see cref="IHttpExchange"/>) of an ASP.NET Core request, on the HTTPS listener or a module's own plain-HTTP one.</summary>
internal sealed class AspNetExchange(HttpContext http) : IHttpExchange
{
    public string Method => http.Request.Method;

    public string Path => http.Request.Path.Value ?? "/";

    public string? Query(string name) => http.Request.Query.TryGetValue(name, out var v) ? v.ToString() : null;

    public string? Header(string name) => http.Request.Headers.TryGetValue(name, out var v) ? v.ToString() : null;

    public long? ContentLength => http.Request.ContentLength;

    public Stream RequestBody => http.Request.Body;

    public IPAddress RemoteAddress => http.Connection.RemoteIpAddress ?? IPAddress.Loopback;

    public CancellationToken Aborted => http.RequestAborted;

    public int StatusCode
    {
        set => http.Response.StatusCode = value;
    }

    public void SetHeader(string name, string value) => http.Response.Headers[name] = value;

    public Stream ResponseBody => http.Response.Body;

    public Task SendFileAsync(string path, string contentType, DateTimeOffset lastModified) =>
        TypedResults.PhysicalFile(path, contentType, lastModified: lastModified, enableRangeProcessing: true).ExecuteAsync(http);

    public Task SendTextAsync(int statusCode, string text)
    {
        http.Response.StatusCode = statusCode;
        http.Response.ContentType = "text/plain; charset=utf-8";
        return http.Response.WriteAsync(text + "\n", http.RequestAborted);
    }
}
