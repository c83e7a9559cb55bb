using System.Globalization;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;

namespace Xmpp.Server.Modules.LastActivity;

/// <summary>
/// Last Activity (XEP-0012): for an account, 0 while it has an available resource, else the seconds since
/// its last logout with the status it left with, to the account itself and its presence subscribers only
/// (others get forbidden); for the server, its uptime. Queries to a full JID go to that client.
/// </summary>
[Specification("XEP-0012", "2.0", Note = "Last activity of accounts (to the account and its presence subscribers) and the server's uptime.")]
public sealed class LastActivityModule : IXmppModule
{
    private const string Ns = "jabber:iq:last";

    public string Name => "last";

    public void Register(IModuleContext context)
    {
        var started = DateTimeOffset.UtcNow;
        context.Disco.AddFeature(Ns, IqTarget.Host | IqTarget.Bare);
        context.HandleIq("get", Ns, "query", IqTarget.Host, (_, _, _) =>
            ValueTask.FromResult<Element?>(Result(DateTimeOffset.UtcNow - started, null)));

        context.HandleIq("get", Ns, "query", IqTarget.Bare, async (ctx, _, ct) =>
        {
            var user = ctx.To!.Bare;
            var resources = context.Sessions.Resources(user);

            if (ctx.From.Bare != user)
            {
                var roster = await context.Rosters.GetAsync(user, ct).ConfigureAwait(false);
                if (roster.Find(ctx.From) is not { HasFrom: true })
                {
                    throw new StanzaErrorException(StanzaErrorCondition.Forbidden);
                }
            }

            if (resources.Any(r => r.IsAvailable))
            {
                return Result(TimeSpan.Zero, null);
            }

            var last = await context.Storage.LastActivity.GetAsync(user.Domain, user.Local!, ct).ConfigureAwait(false)
                ?? throw new StanzaErrorException(StanzaErrorCondition.ItemNotFound, "never logged in");
            var elapsed = DateTimeOffset.UtcNow - last.When;
            return Result(elapsed < TimeSpan.Zero ? TimeSpan.Zero : elapsed, last.Status);
        });
    }

    private static Element Result(TimeSpan elapsed, string? status)
    {
        var query = new Element("query", Ns).SetAttribute("seconds", ((long)elapsed.TotalSeconds).ToString(CultureInfo.InvariantCulture));
        if (!string.IsNullOrEmpty(status))
        {
            query.AddText(status);
        }

        return query;
    }
}
