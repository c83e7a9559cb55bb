namespace Xmpp.Core;

/// <summary>XML namespace names used by the protocol. Never repeat these literals elsewhere.</summary>
public static class Ns
{
    public const string Stream = "http://etherx.jabber.org/streams";

    /// <summary>RFC 7395 §3.3: the &lt;open/&gt; and &lt;close/&gt; framing elements of XMPP over WebSocket.</summary>
    public const string Framing = "urn:ietf:params:xml:ns:xmpp-framing";
    public const string Client = "jabber:client";
    public const string Server = "jabber:server";
    public const string Xml = "http://www.w3.org/XML/1998/namespace";
    public const string Xmlns = "http://www.w3.org/2000/xmlns/";
    public const string Streams = "urn:ietf:params:xml:ns:xmpp-streams";
    public const string Stanzas = "urn:ietf:params:xml:ns:xmpp-stanzas";
    public const string Tls = "urn:ietf:params:xml:ns:xmpp-tls";
    public const string Sasl = "urn:ietf:params:xml:ns:xmpp-sasl";
    public const string Bind = "urn:ietf:params:xml:ns:xmpp-bind";
    public const string Session = "urn:ietf:params:xml:ns:xmpp-session";
    public const string SaslChannelBinding = "urn:xmpp:sasl-cb:0";
    public const string DiscoInfo = "http://jabber.org/protocol/disco#info";
    public const string DiscoItems = "http://jabber.org/protocol/disco#items";
    public const string Ping = "urn:xmpp:ping";
    public const string Version = "jabber:iq:version";
    public const string Roster = "jabber:iq:roster";
    public const string Dialback = "jabber:server:dialback";
    public const string DialbackFeature = "urn:xmpp:features:dialback";
}
