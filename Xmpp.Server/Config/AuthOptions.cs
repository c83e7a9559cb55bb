namespace Xmpp.Server.Config;

public sealed record AuthOptions
{
    /// <summary>PBKDF2 iterations for newly stored SCRAM credentials (at least 4096).</summary>
    public int Iterations { get; init; } = 4096;

    /// <summary>Offer SASL PLAIN (only ever over TLS).</summary>
    public bool AllowPlain { get; init; } = true;

    /// <summary>
    /// The SCRAM hashes offered, strongest first. Accounts imported from Prosody or ejabberd have SHA-1 keys
    /// only: while they are many, offering fewer (or only PLAIN, which stores the stronger keys at the
    /// next login) lets clients that pick the strongest mechanism log in to them.
    /// </summary>
    public IReadOnlyList<Xmpp.Core.Sasl.ScramHash> Scram { get; init; } = [Xmpp.Core.Sasl.ScramHash.Sha512, Xmpp.Core.Sasl.ScramHash.Sha256, Xmpp.Core.Sasl.ScramHash.Sha1];

    /// <summary>
    /// Failed attempts allowed on one stream before it is closed: RFC 6120 §6.4.5 asks for 2 to 5 retries,
    /// so 3 to 6 attempts. 6 lets libpurple try each of its SCRAM mechanisms twice and then tell the user
    /// the password is wrong.
    /// </summary>
    public int MaxFailuresPerStream { get; init; } = 6;

    /// <summary>Base delay before answering a failed attempt beyond the first three from one address, doubling with each further one.</summary>
    public TimeSpan FailureDelay { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Upper bound of that delay.</summary>
    public TimeSpan MaxFailureDelay { get; init; } = TimeSpan.FromSeconds(16);

    /// <summary>
    /// Failed attempts from one address within 10 minutes after which that address may not try again for
    /// <see cref="BlockTime"/>; 0: never blocked.
    /// </summary>
    public int FailuresPerIp { get; init; } = 30;

    /// <summary>
    /// Failed attempts for one username (whether the account exists or not) within 10 minutes after which
    /// that username may not try again for <see cref="BlockTime"/>, from anywhere; 0: never blocked.
    /// </summary>
    public int FailuresPerAccount { get; init; } = 10;

    /// <summary>How long a blocked address or username is refused.</summary>
    public TimeSpan BlockTime { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>Equal settings, the SCRAM list compared by its hashes (a record compares lists by reference).</summary>
    public bool Equals(AuthOptions? other) =>
        other is not null && Iterations == other.Iterations && AllowPlain == other.AllowPlain && Scram.SequenceEqual(other.Scram)
        && MaxFailuresPerStream == other.MaxFailuresPerStream && FailureDelay == other.FailureDelay && MaxFailureDelay == other.MaxFailureDelay
        && FailuresPerIp == other.FailuresPerIp && FailuresPerAccount == other.FailuresPerAccount && BlockTime == other.BlockTime;

    public override int GetHashCode() => HashCode.Combine(Iterations, AllowPlain, Scram.Count, MaxFailuresPerStream, FailuresPerIp, FailuresPerAccount, BlockTime);
}
