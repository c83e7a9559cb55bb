using System.Globalization;
using Xmpp.Core;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;
using Xmpp.Server.Routing;

namespace Xmpp.Server.Modules.Offline;

/// <summary>
/// Offline message storage (XEP-0160): normal and chat messages for an account with no available
/// resource are stored with a XEP-0203 delay stamp, up to a per-account limit (beyond it the sender gets
/// service-unavailable), and delivered then removed when the account next becomes available with
/// non-negative priority. Chat-state-only messages and those with a XEP-0334 no-store hint are not kept.
/// Option: max-per-user (default 1000).
/// </summary>
[Specification("XEP-0160", "1.0.1", Note = "Offline messages with a per-account limit (max-per-user), delivered on initial presence and deleted only once written to the client.")]
[Specification("XEP-0203", "2.0", Note = "Delay stamps on offline messages.")]
public sealed class OfflineModule : IXmppModule, IKeepsStateAcrossReload
{
    private const string Delay = "urn:xmpp:delay";
    private const string Hints = "urn:xmpp:hints";
    private const string ChatStates = "http://jabber.org/protocol/chatstates";
    private static readonly TimeSpan FlushTimeout = TimeSpan.FromSeconds(30);
    private SemaphoreSlim[] _locks = Enumerable.Range(0, 64).Select(_ => new SemaphoreSlim(1, 1)).ToArray();

    public string Name => "offline";

    public void TakeOver(IXmppModule previous)
    {
        if (previous is OfflineModule old)
        {
            _locks = old._locks;
        }
    }

    public void Register(IModuleContext context)
    {
        var limit = 1000;
        if (context.Option("max-per-user") is { } text &&
            !int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out limit))
        {
            throw new Config.ConfigException($"{context.Options.SourceFile ?? "configuration"}: <offline max-per-user='{text}'/> must be a whole number (0 disables storage)");
        }

        var store = context.Storage.Offline;
        context.Disco.AddFeature("msgoffline", IqTarget.Host);

        context.Hook(HookNames.MessageOffline, async (ctx, ct) =>
        {
            var message = ctx.Stanza;
            if (!ShouldStore(message))
            {
                context.Log.Debug("Not storing a message without storable content for {User}", ctx.To);
                return true;
            }

            var owner = ctx.To!.Bare;
            var copy = message.Clone();
            copy.Add(Forwarded.Delay(DateTimeOffset.UtcNow, owner.Domain).AddText("Offline Storage"));
            if (!await store.StoreAsync(owner.Domain, owner.Local!, copy.ToString(), limit, ct).ConfigureAwait(false))
            {
                context.Log.Warn("Offline storage of {User} is full ({Limit} messages): bouncing a message from {Sender}", owner, limit, ctx.From);
                await ctx.Router.BounceAsync(message, new StanzaError(StanzaErrorCondition.ServiceUnavailable, "the recipient's offline storage is full"), ct).ConfigureAwait(false);
                return true;
            }

            context.Log.Info("Stored an offline message for {User} from {Sender}", owner, ctx.From);
            return true;
        });

        context.Hook(HookNames.PresenceInitial, async (ctx, ct) =>
        {
            var session = ctx.Origin!;
            var owner = session.Jid.Bare;
            var gate = _locks[(owner.GetHashCode() & int.MaxValue) % _locks.Length];
            await gate.WaitAsync(ct).ConfigureAwait(false);
            try
            {
                var messages = await store.LoadAsync(owner.Domain, owner.Local!, ct).ConfigureAwait(false);
                if (messages.Count == 0)
                {
                    return false;
                }

                var sent = new List<long>(messages.Count);
                foreach (var m in messages)
                {
                    Element stanza;
                    try
                    {
                        stanza = ElementParser.Parse(m.Xml);
                    }
                    catch (System.Xml.XmlException ex)
                    {
                        context.Log.Error("Dropping unreadable offline message {Id} of {User}: {Reason}", m.Id, owner, ex.Message);
                        sent.Add(m.Id);
                        continue;
                    }

                    if (!session.TrySend(stanza))
                    {
                        break;
                    }

                    sent.Add(m.Id);
                }

                // Deleted only once written to the socket: if the server dies or the connection drops before
                // that, the messages stay stored and come again at the next login (at least once, never lost).
                try
                {
                    await session.FlushAsync().WaitAsync(FlushTimeout, ct).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is TimeoutException or TaskCanceledException)
                {
                    context.Log.Info("Keeping {Count} offline messages of {Jid}: the connection did not take them", sent.Count, session.Jid);
                    return false;
                }

                await store.DeleteAsync(owner.Domain, owner.Local!, sent, ct).ConfigureAwait(false);
                context.Log.Info("Delivered {Count} offline messages to {Jid}", sent.Count, session.Jid);
            }
            finally
            {
                gate.Release();
            }

            return false;
        });
    }

    /// <summary>Whether a message has content worth keeping (not only chat states, no no-store hint).</summary>
    public static bool ShouldStore(Element message)
    {
        if (message.GetAttribute("type") is "groupchat" or "headline" or "error")
        {
            return false;
        }

        var content = false;
        foreach (var child in message.Elements())
        {
            if (child.Namespace == Hints)
            {
                switch (child.Name)
                {
                    case "no-store" or "no-permanent-store":
                        return false;
                    case "store":
                        return true;
                    default:
                        continue;
                }
            }

            if (child.Namespace == ChatStates || child.Is("thread", message.Namespace))
            {
                continue;
            }

            content = true;
        }

        return content;
    }
}
