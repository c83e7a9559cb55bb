using Xmpp.Core.Addressing;
using Xmpp.Core.Stanzas;

namespace Xmpp.Server.Sessions;

/// <summary>
/// How an administrator ends sessions, the one code path of the XEP-0133 commands and the web console: a
/// stream error (not a plain close, so a resumable session (XEP-0198) does not wait to be resumed), then a
/// wait until the sessions have left the registry, so that what the administrator looks at next no longer
/// shows them.
/// </summary>
public static class SessionEnding
{
    /// <summary>The condition and text of "end-user-session".</summary>
    public static StreamError EndedByAdministrator => new(StreamErrorCondition.PolicyViolation, "session ended by an administrator");

    /// <summary>The condition and text of "delete-user".</summary>
    public static StreamError AccountDeleted => new(StreamErrorCondition.NotAuthorized, "the account was deleted");

    /// <summary>The sessions an address names: all of an account's for a bare JID, the one bound to a full JID.</summary>
    public static IReadOnlyList<IClientSession> Named(this ISessionRegistry sessions, Jid jid) =>
        jid.Resource is null ? sessions.Resources(jid) : sessions.Find(jid) is { } one ? [one] : [];

    /// <summary>Closes the sessions with <paramref name="error"/> and waits (a few seconds at most) until they are unbound.</summary>
    public static async Task EndAsync(this ISessionRegistry registry, IReadOnlyList<IClientSession> sessions, StreamError error, CancellationToken cancellationToken)
    {
        foreach (var session in sessions)
        {
            session.Close(error);
        }

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(5);
        while (sessions.Any(s => ReferenceEquals(registry.Find(s.Jid), s)) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20, cancellationToken).ConfigureAwait(false);
        }
    }
}
