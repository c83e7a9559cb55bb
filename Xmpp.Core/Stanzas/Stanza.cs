using Xmpp.Core.Xml;

namespace Xmpp.Core.Stanzas;

/// <summary>Helpers over stanza elements (message, presence, iq), in the spirit of Prosody's st.reply/st.error_reply.</summary>
public static class Stanza
{
    public static bool IsStanza(Element e) =>
        (e.Namespace == Ns.Client || e.Namespace == Ns.Server) &&
        (e.Name == "message" || e.Name == "presence" || e.Name == "iq");

    /// <summary>An empty iq result addressed back to the sender.</summary>
    public static Element IqResult(Element iq, Element? payload = null)
    {
        var reply = new Element("iq", iq.Namespace).SetAttribute("type", "result");
        SwapAddresses(iq, reply);
        if (payload is not null)
        {
            reply.Add(payload);
        }

        return reply;
    }

    /// <summary>
    /// The error reply of RFC 6120 §8.3.1: same kind and id, addresses swapped, type="error".
    /// Callers must not reply to a stanza that is itself of type error or an iq result.
    /// </summary>
    public static Element ErrorReply(Element stanza, StanzaError error, bool includeOriginal = false)
    {
        var reply = new Element(stanza.Name, stanza.Namespace).SetAttribute("type", "error");
        SwapAddresses(stanza, reply);
        if (includeOriginal)
        {
            foreach (var child in stanza.Elements())
            {
                reply.Add(child.Clone());
            }
        }

        var err = error.ToElement();
        reply.Add(RetargetNamespace(err, stanza.Namespace));
        return reply;
    }

    /// <summary>Whether an error may be sent in reply (never to errors, never to iq results: RFC 6120 §8.3.1).</summary>
    public static bool MayReplyWithError(Element stanza)
    {
        var type = stanza.GetAttribute("type");
        return type != "error" && !(stanza.Name == "iq" && type == "result");
    }

    private static void SwapAddresses(Element from, Element to)
    {
        var id = from.GetAttribute("id");
        if (id is not null)
        {
            to.SetAttribute("id", id);
        }

        var sender = from.GetAttribute("from");
        var recipient = from.GetAttribute("to");
        if (recipient is not null)
        {
            to.SetAttribute("from", recipient);
        }

        if (sender is not null)
        {
            to.SetAttribute("to", sender);
        }
    }

    private static Element RetargetNamespace(Element error, string ns)
    {
        if (error.Namespace == ns)
        {
            return error;
        }

        var copy = new Element(error.Name, ns);
        foreach (var a in error.Attributes)
        {
            copy.SetAttribute(a.LocalName, a.Namespace, a.Value);
        }

        foreach (var n in error.Nodes)
        {
            if (n is Element e)
            {
                copy.Add(e);
            }
            else
            {
                copy.AddText((string)n);
            }
        }

        return copy;
    }
}
