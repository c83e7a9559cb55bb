namespace Xmpp.Server.Config;

public enum ListenerKind
{
    /// <summary>Client-to-server with STARTTLS (RFC 6120), default port 5222.</summary>
    C2s,

    /// <summary>Client-to-server with TLS from the first byte (XEP-0368), default port 5223.</summary>
    C2sDirectTls,

    /// <summary>Server-to-server with STARTTLS (RFC 6120), default port 5269.</summary>
    S2s,

    /// <summary>Server-to-server with TLS from the first byte (XEP-0368), default port 5270.</summary>
    S2sDirectTls,

    /// <summary>External components (XEP-0114, jabber:component:accept), default port 5347.</summary>
    Component,

    /// <summary>HTTPS with the hosts' certificates (Kestrel): XMPP over WebSocket (RFC 7395) and host-meta (XEP-0156), default port 5443.</summary>
    Https,
}
