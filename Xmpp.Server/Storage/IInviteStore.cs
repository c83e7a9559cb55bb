namespace Xmpp.Server.Storage;

/// <summary>What an invitation lets its holder do (XEP-0401).</summary>
public enum InviteKind
{
    /// <summary>Create an account on the host (xmpp:HOST?register;preauth=TOKEN), optionally with a reserved username.</summary>
    Register,

    /// <summary>Become the inviter's contact (XEP-0379), and create an account first when <see cref="Invite.AllowRegistration"/> (ibr=y).</summary>
    Roster,
}

/// <summary>
/// An invitation token (XEP-0401, XEP-0379, XEP-0445). The token is a credential: whoever holds it may use it.
/// </summary>
/// <param name="Token">128 random bits, base64url without padding (22 characters).</param>
/// <param name="Kind">An account invitation or a contact invitation.</param>
/// <param name="Host">The host the account is created on.</param>
/// <param name="Inviter">The bare JID of the account that invited (a contact invitation's contact, and who is subscribed both ways with the new account); null for an account invitation an operator made without one.</param>
/// <param name="Username">The localpart reserved for the new account (XEP-0401 §3.5, XEP-0445 §5), or null for the invitee's choice.</param>
/// <param name="AllowRegistration">A contact invitation that also lets the invitee create an account on the host (ibr=y).</param>
/// <param name="Subscribe">The new account and the inviter are subscribed to each other (always for a contact invitation).</param>
/// <param name="UsesLeft">Accounts (or subscriptions) it may still create.</param>
/// <param name="Expires">After this, it is refused.</param>
/// <param name="Created">When it was made.</param>
public sealed record Invite(
    string Token,
    InviteKind Kind,
    string Host,
    string? Inviter,
    string? Username,
    bool AllowRegistration,
    bool Subscribe,
    int UsesLeft,
    DateTimeOffset Expires,
    DateTimeOffset Created)
{
    /// <summary>Whether an account may be created with it: an account invitation, or a contact invitation with ibr=y.</summary>
    public bool CreatesAccounts => Kind == InviteKind.Register || AllowRegistration;

    /// <summary>Unused uses left and not expired at <paramref name="now"/>.</summary>
    public bool IsValid(DateTimeOffset now) => UsesLeft > 0 && Expires > now;
}

/// <summary>Invitation tokens (the invites module and the invite command).</summary>
public interface IInviteStore
{
    Task CreateAsync(Invite invite, CancellationToken cancellationToken);

    Task<Invite?> GetAsync(string token, CancellationToken cancellationToken);

    /// <summary>
    /// Takes one use, atomically: false when none is left (two people cannot both use the last one). Expiry is
    /// not checked here: XEP-0445 §4 checks it when the token is presented, not when the account is created.
    /// </summary>
    Task<bool> TryUseAsync(string token, CancellationToken cancellationToken);

    /// <summary>Gives a use back (the account it was taken for could not be created).</summary>
    Task ReturnUseAsync(string token, CancellationToken cancellationToken);

    /// <summary>Removes an invitation; false when there was none.</summary>
    Task<bool> DeleteAsync(string token, CancellationToken cancellationToken);

    /// <summary>The invitations of a host (all hosts with null), newest first.</summary>
    Task<IReadOnlyList<Invite>> ListAsync(string? host, CancellationToken cancellationToken);

    /// <summary>Removes the invitations that expired before <paramref name="cutoff"/>; returns how many.</summary>
    Task<int> DeleteExpiredAsync(DateTimeOffset cutoff, CancellationToken cancellationToken);
}
