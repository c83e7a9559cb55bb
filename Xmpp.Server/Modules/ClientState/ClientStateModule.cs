using Xmpp.Core.Xml;
using Xmpp.Server.Sessions;

namespace Xmpp.Server.Modules.ClientState;

/// <summary>
/// Client state indication (XEP-0352): while a client says it is inactive (a phone in a pocket), what can
/// wait is held and collapsed, so the radio wakes for what matters only. Presence updates keep the latest
/// per sender; chat states the latest per conversation; PEP notifications and other noise wait in order.
/// A message with a body (or an encrypted one), an error, a subscription request or any iq sends
/// everything held first and then itself; so does &lt;active/&gt;, and so does holding more than max-held.
/// </summary>
[Specification("XEP-0352", "1.0.0", Note = "Inactive clients get presence collapsed to the latest per sender, chat states to the latest per conversation, notifications held; anything important flushes, in order.")]
public sealed class ClientStateModule : IXmppModule
{
    public const string Namespace = "urn:xmpp:csi:0";

    public string Name => "csi";

    public void Register(IModuleContext context)
    {
        var max = context.Number("max-held", 100, min: 1);

        context.AddStreamFeature(new Element("csi", Namespace));
        context.Shared<Bind2.Bind2Features>().Add(Namespace, (_, session, e) =>
        {
            OnState(session, e, max);
            return null;
        });
        context.HandleStreamElement(Namespace, (stream, e, _) =>
        {
            if (stream.State != Streams.C2sState.Established || stream.Session is not { } session)
            {
                // Before a session is bound there is nothing to indicate the state of (RFC 6120 §7.1 for what is not a stanza).
                throw new Xmpp.Core.Stanzas.XmppStreamException(
                    stream.User is null ? Xmpp.Core.Stanzas.StreamErrorCondition.NotAuthorized : Xmpp.Core.Stanzas.StreamErrorCondition.UnsupportedStanzaType,
                    $"<{e.Name}/> before a resource is bound");
            }

            OnState(session, e, max);
            return ValueTask.CompletedTask;
        });
    }

    private static void OnState(ClientSession session, Element e, int max)
    {
        switch (e.Name)
        {
            case "inactive":
                var filter = session.SendFilter as Holder ?? new Holder(max);
                filter.Inactive = true;
                session.SendFilter = filter;
                break;
            case "active":
                (session.SendFilter as Holder)?.Release(session);
                break;
        }
    }

    /// <summary>Whether the client said it is inactive (and non-urgent stanzas are held for it).</summary>
    public static bool IsInactive(IClientSession session) => session.SendFilter is Holder { Inactive: true };

    /// <summary>Whether a stanza must reach an inactive client now.</summary>
    public static bool IsImportant(Element stanza)
    {
        var type = stanza.GetAttribute("type");
        switch (stanza.Name)
        {
            case "iq":
                return true;
            case "presence":
                return type is "subscribe" or "subscribed" or "unsubscribe" or "unsubscribed" or "error";
            default:
                if (type == "error")
                {
                    return true;
                }

                // A carbon or an archive result is as important as what it carries.
                var inner = stanza.Elements()
                    .Select(e => e.Child("forwarded", "urn:xmpp:forward:0")?.Child("message", stanza.Namespace))
                    .FirstOrDefault(m => m is not null) ?? stanza;
                return inner.Child("body", inner.Namespace) is not null ||
                    inner.Elements().Any(e => e.Namespace is "eu.siacs.conversations.axolotl" or "urn:xmpp:omemo:2" or "urn:xmpp:openpgp:0" or "urn:xmpp:jingle-message:0");
        }
    }

    /// <summary>The per-session holding area.</summary>
    private sealed class Holder(int max) : ISendFilter
    {
        private readonly Lock _gate = new();
        private readonly List<(string? Key, Element Stanza)> _held = [];

        public bool Inactive { get; set; }

        public bool Hold(IClientSession session, Element stanza)
        {
            List<Element>? flush = null;
            lock (_gate)
            {
                if (!Inactive)
                {
                    return false;
                }

                if (IsImportant(stanza) || _held.Count >= max)
                {
                    flush = Take();
                }
                else
                {
                    var key = CollapseKey(stanza);
                    if (key is not null)
                    {
                        _held.RemoveAll(h => h.Key == key);
                    }

                    _held.Add((key, stanza));
                    return true;
                }
            }

            foreach (var held in flush)
            {
                session.SendUnfiltered(held);
            }

            return false;
        }

        public void Release(IClientSession session)
        {
            List<Element> flush;
            lock (_gate)
            {
                Inactive = false;
                flush = Take();
            }

            foreach (var held in flush)
            {
                session.SendUnfiltered(held);
            }
        }

        private List<Element> Take()
        {
            var all = _held.Select(h => h.Stanza).ToList();
            _held.Clear();
            return all;
        }

        /// <summary>Stanzas with the same key replace each other: presence per sender, a chat state per conversation.</summary>
        private static string? CollapseKey(Element stanza)
        {
            if (stanza.Name == "presence")
            {
                return "p " + stanza.GetAttribute("from");
            }

            if (stanza.Name == "message" && stanza.Elements().All(e => e.Namespace == "http://jabber.org/protocol/chatstates"))
            {
                return "c " + stanza.GetAttribute("from");
            }

            return null;
        }
    }
}
