namespace Xmpp.Core.Sasl;

/// <summary>Finds the stored SCRAM credential of a user (by prepared localpart) for one hash; null when none.</summary>
public delegate ValueTask<ScramCredential?> CredentialLookup(string username, ScramHash hash, CancellationToken cancellationToken);
