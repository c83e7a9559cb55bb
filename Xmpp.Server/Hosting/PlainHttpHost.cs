using System.Net;
using System.Runtime.CompilerServices;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Xmpp.Server.Hosting;

/// <summary>
/// A plain-HTTP (HTTP/1.1) Kestrel listener of a module's own, on one address and port apart from the
/// HTTPS listener (the metrics endpoint): every request goes to the module's handler as an
/// <see cref="IHttpExchange"/>. Its signature names no ASP.NET Core type, so that only a server that
/// serves one loads ASP.NET Core.
/// </summary>
public static class PlainHttpHost
{
    /// <summary>
    /// Listens on <paramref name="endpoint"/> and answers with <paramref name="handler"/> until
    /// <paramref name="stopping"/> is cancelled; then stops listening, lets requests under way finish
    /// and returns. <paramref name="listening"/> is told each bound address (http://IP:port). A port
    /// that cannot be bound throws <see cref="IOException"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static async Task ServeAsync(IPEndPoint endpoint, HttpHandler handler, Action<string> listening, CancellationToken stopping)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ApplicationName = "xmppserver", ContentRootPath = AppContext.BaseDirectory });
        builder.Logging.ClearProviders();
        builder.Services.Configure<HostOptions>(host => host.ShutdownTimeout = TimeSpan.FromSeconds(10));
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Limits.MaxRequestHeadersTotalSize = 8192;
            kestrel.Limits.RequestHeadersTimeout = TimeSpan.FromSeconds(10);
            kestrel.Listen(endpoint, listen => listen.Protocols = HttpProtocols.Http1);
        });
        var app = builder.Build();
        await using (app.ConfigureAwait(false))
        {
            app.Run(http => handler(new AspNetExchange(http)));
            await app.StartAsync(stopping).ConfigureAwait(false);
            foreach (var address in app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses ?? [])
            {
                listening(address);
            }

            // Cancelling the token stops the application: no new connections, requests under way finish.
            await app.WaitForShutdownAsync(stopping).ConfigureAwait(false);
        }
    }
}
