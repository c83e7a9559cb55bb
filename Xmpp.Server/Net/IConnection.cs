using Xmpp.Core.Stanzas;

namespace Xmpp.Server.Net;

/// <summary>A stream the connection manager owns: client or server-to-server, incoming or outgoing.</summary>
public interface IConnection
{
    long ConnectionId { get; }

    /// <summary>Runs the stream until it ends, and tears it down.</summary>
    Task RunAsync();

    /// <summary>Ends the stream, with a stream error when given.</summary>
    void Close(StreamError? streamError);

    /// <summary>Called periodically with Environment.TickCount64 to enforce idle limits.</summary>
    void CheckIdle(long now);
}
