namespace Xmpp.Server.Config;

public static class ListenerKinds
{
    public static string Name(this ListenerKind kind) => kind switch
    {
        ListenerKind.C2s => "c2s (STARTTLS)",
        ListenerKind.C2sDirectTls => "c2s (direct TLS)",
        ListenerKind.S2s => "s2s (STARTTLS)",
        ListenerKind.Component => "components (XEP-0114)",
        ListenerKind.Https => "https (WebSocket, host-meta)",
        _ => "s2s (direct TLS)",
    };

    public static bool IsDirectTls(this ListenerKind kind) => kind is ListenerKind.C2sDirectTls or ListenerKind.S2sDirectTls;

    public static bool IsServer(this ListenerKind kind) => kind is ListenerKind.S2s or ListenerKind.S2sDirectTls;
}
