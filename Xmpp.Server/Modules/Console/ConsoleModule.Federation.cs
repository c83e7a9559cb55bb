using System.Globalization;
using System.Text;
using Xmpp.Server.Hosting;
using Xmpp.Server.S2s;
using Xmpp.Server.Streams;
using static Xmpp.Server.Modules.Console.ConsoleHtml;

namespace Xmpp.Server.Modules.Console;

/// <summary>
/// The console's federation page: the server-to-server streams from <see cref="S2sManager.Streams"/> (their peer,
/// authentication, TLS and the peer's certificate) with a button that ends one as the idle timeout does
/// (<see cref="S2sManager.End"/>), and the external components (XEP-0114).
/// </summary>
public sealed partial class ConsoleModule
{
    private async Task FederationAsync(IHttpExchange http, ConsoleSession session)
    {
        var streams = _context.Server.S2s.Streams();
        var outgoing = streams.Where(s => s.Direction == S2sDirection.Outgoing).OrderBy(s => s.Claimed, StringComparer.Ordinal).ThenBy(s => s.Local, StringComparer.Ordinal).ToList();
        var incoming = streams.Where(s => s.Direction == S2sDirection.Incoming).OrderBy(s => s.Claimed, StringComparer.Ordinal).ThenBy(s => s.ConnectionId).ToList();
        var sb = new StringBuilder();
        sb.Append(Note(http));
        var s2s = _context.Options.S2s;
        sb.Append(CultureInfo.InvariantCulture, $"<p>{N(outgoing.Count)} outgoing and {N(incoming.Count)} incoming server-to-server streams. Dialback {(s2s.AllowDialback ? "allowed" : "not allowed (certificates required)")}; TLS {(s2s.RequireEncryption ? "required" : "optional")}.</p>");

        sb.Append("<h2>Outgoing</h2><p class=\"muted\">Opened by this server to send its stanzas; the authentication is how this server proved its domain.</p>");
        StreamTable(sb, outgoing, session, "stanzas sent");
        sb.Append("<h2>Incoming</h2><p class=\"muted\">Opened by other servers to send theirs; each domain they send from is authenticated on its own.</p>");
        StreamTable(sb, incoming, session, "stanzas received");

        sb.Append("<h2>Components</h2>");
        ComponentTable(sb);
        await ConsoleHtml.PageAsync(http, 200, "Federation", sb.ToString(), session, "federation").ConfigureAwait(false);
    }

    private static void StreamTable(StringBuilder sb, List<S2sStreamInfo> streams, ConsoleSession session, string counted)
    {
        if (streams.Count == 0)
        {
            sb.Append("<p class=\"muted\">None.</p>");
            return;
        }

        sb.Append(CultureInfo.InvariantCulture, $"<table><thead><tr><th>our domain</th><th>peer</th><th>remote address</th><th>state</th><th>authentication</th><th>TLS</th><th>peer's certificate</th><th>since</th><th class=\"num\">{H(counted)}</th><th></th></tr></thead><tbody>");
        foreach (var s in streams)
        {
            string Lines(Func<S2sPeer, string> text) => s.Peers.Count == 0 ? "—" : string.Join("<br>", s.Peers.Select(p => H(text(p))));
            var peer = s.Peers.Count > 0 ? Lines(p => p.Domain) : $"{H(s.Claimed ?? "?")} <span class=\"muted\">(not authenticated)</span>";
            var tls = s.Tls is null ? "none" : s.DirectTls ? s.Tls + " (direct TLS)" : s.Tls;
            sb.Append(CultureInfo.InvariantCulture, $"<tr><td>{H(s.Local)}</td><td>{peer}</td><td>{H(s.Remote ?? "—")}</td><td>{H(s.State)}</td><td>{Lines(p => Method(p.Authentication))}</td>");
            sb.Append(CultureInfo.InvariantCulture, $"<td>{H(tls)}</td><td>{Lines(p => Certificate(p, s.Direction))}</td><td>{H(When(s.Since))}</td><td class=\"num\">{N(s.Stanzas)}</td><td>");
            if (s.ConnectionId is { } id && s.State != "Closing")
            {
                sb.Append(CultureInfo.InvariantCulture, $"<form class=\"inline\" method=\"post\" action=\"{Prefix}federation/end\">{Csrf(session)}<input type=\"hidden\" name=\"id\" value=\"{id.ToString(CultureInfo.InvariantCulture)}\"><button type=\"submit\" class=\"danger\">End</button></form>");
            }

            sb.Append("</td></tr>");
        }

        sb.Append("</tbody></table>");
    }

    private static string Method(S2sAuthentication method) => method switch
    {
        S2sAuthentication.SaslExternal => "SASL EXTERNAL (certificate, XEP-0178)",
        S2sAuthentication.DialbackOnCertificate => "dialback, accepted on the certificate (XEP-0344)",
        _ => "dialback (XEP-0220)",
    };

    /// <summary>What the peer's certificate proved for the domain, and what that meant for the stream.</summary>
    private static string Certificate(S2sPeer peer, S2sDirection direction) => peer.CertificateProblem switch
    {
        null => "verified (trusted chain, name matches)",
        var problem when peer.Authentication == S2sAuthentication.Dialback =>
            direction == S2sDirection.Incoming ? $"not verified ({problem}): the domain was proved by dialback" : $"not verified ({problem}): accepted for dialback",
        var problem => $"not verified ({problem})",
    };

    /// <summary>The configured external components (XEP-0114) and the streams connected for them.</summary>
    private void ComponentTable(StringBuilder sb)
    {
        var streams = _context.Server.Connections.All.OfType<StreamConnection>()
            .Select(c => (Connection: c, Component: c.Protocol as ComponentStateMachine))
            .Where(c => c.Component is not null)
            .ToList();
        var domains = _context.Options.Components.Select(c => c.Domain)
            .Union(streams.Where(s => s.Component!.State == ComponentState.Established).Select(s => s.Component!.Domain))
            .Order(StringComparer.Ordinal)
            .ToList();
        if (domains.Count == 0)
        {
            sb.Append("<p class=\"muted\">None configured.</p>");
            return;
        }

        sb.Append("<table><thead><tr><th>domain</th><th>state</th><th>remote address</th><th>TLS</th></tr></thead><tbody>");
        foreach (var domain in domains)
        {
            var stream = streams.FirstOrDefault(s => s.Component!.Domain == domain && s.Component.State == ComponentState.Established).Connection;
            var state = stream is not null ? "connected" : "not connected";
            if (_context.Options.Components.All(c => c.Domain != domain))
            {
                state += " (no longer configured)";
            }

            var tls = stream?.Transport.Tls?.SslProtocol.ToString() ?? (stream is null ? "—" : "none");
            sb.Append(CultureInfo.InvariantCulture, $"<tr><td>{H(domain)}</td><td>{H(state)}</td><td>{H(stream?.Transport.Remote.ToString() ?? "—")}</td><td>{H(tls)}</td></tr>");
        }

        sb.Append("</tbody></table>");
    }

    /// <summary>Ends one server-to-server stream as the idle timeout does (<see cref="S2sManager.End"/>).</summary>
    private async Task EndS2sAsync(IHttpExchange http, ConsoleSession session, Dictionary<string, string> form)
    {
        var text = form.GetValueOrDefault("id") ?? string.Empty;
        if (!long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var id))
        {
            await ProblemAsync(http, session, 400, $"'{text}' is not a stream's id.", "federation").ConfigureAwait(false);
            return;
        }

        var ended = _context.Server.S2s.End(id, $"ended by {session.Admin} in the console");
        _context.Log.Info("Console: {Admin} ended the s2s stream c{Id} from {Remote}: {Result}", session.Admin, id, http.RemoteAddress, ended ? "closing" : "no such stream");
        await RedirectAsync(http, $"{Prefix}federation?done={(ended ? "s2s-ended" : "s2s-none")}").ConfigureAwait(false);
    }
}
