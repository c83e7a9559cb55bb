using Xmpp.Core.Addressing;
using Xmpp.Core.Sasl;
using Xmpp.Server.Config;
using Xmpp.Server.Storage;

namespace Xmpp.Server.Accounts;

public enum AccountResult
{
    Ok,
    InvalidJid,
    UnknownHost,
    InvalidPassword,
    Exists,
    NotFound,
}

/// <summary>Account management shared by the command line, in-band registration (XEP-0077) and service administration (XEP-0133).</summary>
public sealed class AccountService(ServerOptions options, IStorage storage)
{
    public async Task<AccountResult> AddAsync(string jidText, string password, CancellationToken cancellationToken)
    {
        var check = Validate(jidText, out var jid);
        if (check != AccountResult.Ok)
        {
            return check;
        }

        if (await CredentialsAsync(password).ConfigureAwait(false) is not { } creds)
        {
            return AccountResult.InvalidPassword;
        }

        return await storage.Users.CreateAsync(jid!.Domain, jid.Local!, creds, cancellationToken).ConfigureAwait(false)
            ? AccountResult.Ok
            : AccountResult.Exists;
    }

    public async Task<AccountResult> SetPasswordAsync(string jidText, string password, CancellationToken cancellationToken)
    {
        var check = Validate(jidText, out var jid);
        if (check != AccountResult.Ok)
        {
            return check;
        }

        if (await CredentialsAsync(password).ConfigureAwait(false) is not { } creds)
        {
            return AccountResult.InvalidPassword;
        }

        if (!await storage.Users.SetCredentialsAsync(jid!.Domain, jid.Local!, creds, cancellationToken).ConfigureAwait(false))
        {
            return AccountResult.NotFound;
        }

        // A new password is often a reaction to a stolen one: the XEP-0484 FAST tokens that the old
        // password's logins obtained stop working too.
        var tokens = await storage.Documents.ListAsync(jid.Domain, jid.Local!, "fast", cancellationToken).ConfigureAwait(false);
        foreach (var agent in tokens.Keys)
        {
            await storage.Documents.SetAsync(jid.Domain, jid.Local!, "fast", agent, null, cancellationToken).ConfigureAwait(false);
        }

        return AccountResult.Ok;
    }

    public async Task<AccountResult> DeleteAsync(string jidText, CancellationToken cancellationToken)
    {
        var check = Validate(jidText, out var jid);
        if (check != AccountResult.Ok)
        {
            return check;
        }

        return await storage.Users.DeleteAsync(jid!.Domain, jid.Local!, cancellationToken).ConfigureAwait(false)
            ? AccountResult.Ok
            : AccountResult.NotFound;
    }

    private AccountResult Validate(string jidText, out Jid? jid)
    {
        if (!Jid.TryParse(jidText, out jid) || jid.Local is null || jid.Resource is not null)
        {
            return AccountResult.InvalidJid;
        }

        var domain = jid.Domain;
        return options.Hosts.Any(h => h.Name == domain) ? AccountResult.Ok : AccountResult.UnknownHost;
    }

    /// <summary>SCRAM credentials for every supported hash; the password is prepared as an OpaqueString (RFC 8265 §4.2).</summary>
    private async ValueTask<List<ScramCredential>?> CredentialsAsync(string password) =>
        Precis.TryPrepareOpaqueString(password, out var prepared)
            ? await ScramCredential.CreateAllAsync(prepared, options.Auth.Iterations).ConfigureAwait(false)
            : null;
}
