using Orleans.Runtime;

namespace Xmpp.Server.Cluster.Orleans;

/// <summary>What a grain call to another node throws when that node (or the directory entry leading to it) is not there.</summary>
internal static class Unreachable
{
    /// <summary>
    /// Orleans' own failures (a silo gone or unreachable, a call timed out), and a cancellation that is not the
    /// caller's: Orleans cancels the addressing of a message whose directory lookup a membership change interrupted
    /// ("Failed to address message"), and that reaches the caller as an <see cref="OperationCanceledException"/>. The
    /// caller's own cancellation (<paramref name="ct"/>) is not one of these: it goes on up.
    /// </summary>
    public static bool Is(Exception ex, CancellationToken ct) =>
        ex is OrleansException or TimeoutException || (ex is OperationCanceledException && !ct.IsCancellationRequested);
}
