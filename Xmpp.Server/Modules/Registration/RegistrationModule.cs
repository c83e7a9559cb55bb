using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using Xmpp.Core;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;
using Xmpp.Server.Accounts;
using Xmpp.Server.Net;
using Xmpp.Server.Streams;

namespace Xmpp.Server.Modules.Registration;

/// <summary>
/// In-band registration (XEP-0077), off unless listed in &lt;modules&gt;: before authentication a client
/// may create an account with a username and a password (at most per-ip accounts per address every
/// window seconds); afterwards it may change its password or remove its account, which ends its sessions.
/// </summary>
[Specification("XEP-0077", "2.4", Note = "Account creation before authentication (over TLS when TLS is required) with the legacy username and password fields, limited per address; password change and account removal afterwards. No data form or CAPTCHA.")]
public sealed class RegistrationModule : IXmppModule, IKeepsStateAcrossReload
{
    public const string Namespace = "jabber:iq:register";

    private ConcurrentDictionary<IPAddress, List<long>> _recent = new();
    private int _perIp;
    private TimeSpan _window;

    public string Name => "register";

    public void TakeOver(IXmppModule previous)
    {
        if (previous is RegistrationModule old)
        {
            _recent = old._recent;
        }
    }

    public void Register(IModuleContext context)
    {
        _perIp = context.Number("per-ip", 1, min: 1);
        _window = TimeSpan.FromSeconds(context.Number("window", 600, min: 1));
        var accounts = new AccountService(context.Options, context.Storage);
        var policy = context.Shared<RegistrationPolicy>();
        policy.Open = true;

        context.AddPreAuthStreamFeature(new Element("register", "http://jabber.org/features/iq-register"));
        context.HandlePreAuthIq(Namespace, (request, ct) => RegisterAccountAsync(context, accounts, policy, request, ct));

        // After authentication: the account's own registration.
        context.HandleIq("get", Namespace, "query", IqTarget.Bare | IqTarget.Host, (ctx, _, _) =>
        {
            var user = Own(ctx);
            var query = new Element("query", Namespace);
            query.AddChild("registered");
            query.AddChild("username").AddText(user.Local!);
            return ValueTask.FromResult<Element?>(query);
        });
        context.HandleIq("set", Namespace, "query", IqTarget.Bare | IqTarget.Host, async (ctx, query, ct) =>
        {
            var user = Own(ctx);
            if (query.Child("remove", Namespace) is not null)
            {
                return await RemoveAccountAsync(context, accounts, ctx, user, ct).ConfigureAwait(false);
            }

            return await ChangePasswordAsync(context, accounts, user, query, ct).ConfigureAwait(false);
        });
    }

    /// <summary>
    /// §3.1: before authentication, the registration form (get) and a new account (set), at most per-ip accounts
    /// per address every window; a stream that presented an invitation (XEP-0445) registers through the invites
    /// module instead, without the limit.
    /// </summary>
    private async ValueTask<Element> RegisterAccountAsync(IModuleContext context, AccountService accounts, RegistrationPolicy policy, PreAuthRequest request, CancellationToken ct)
    {
        var iq = request.Iq;
        var type = iq.GetAttribute("type");
        if (type == "get")
        {
            return Stanza.IqResult(iq, policy.Form(request));
        }

        if (type != "set")
        {
            return Stanza.ErrorReply(iq, StanzaError.BadRequest("get or set"));
        }

        if (request.Payload.Child("remove", Namespace) is not null)
        {
            // §3.2: removing an account needs a session of it.
            return Stanza.ErrorReply(iq, new StanzaError(StanzaErrorCondition.NotAuthorized, "log in to remove your account"));
        }

        var username = request.Payload.ChildText("username", Namespace);
        var password = request.Payload.ChildText("password", Namespace);
        if (string.IsNullOrEmpty(username) || string.IsNullOrEmpty(password))
        {
            return Stanza.ErrorReply(iq, new StanzaError(StanzaErrorCondition.NotAcceptable, "a username and a password are required"));
        }

        if (policy.Invited is { } invited && policy.InvitationOf?.Invoke(request.Stream).Invited == true)
        {
            return await invited(request, username, password, ct).ConfigureAwait(false);
        }

        if (!TryAdmit(request.Remote))
        {
            context.Log.Warn("Registration from {Remote} refused: more than {Count} accounts in {Window} s", request.Remote, _perIp, (int)_window.TotalSeconds);
            return Stanza.ErrorReply(iq, new StanzaError(StanzaErrorCondition.ResourceConstraint, "too many registrations from your address; try again later"));
        }

        var result = await accounts.AddAsync(username + "@" + request.Host, password, ct).ConfigureAwait(false);
        switch (result)
        {
            case AccountResult.Ok:
                context.Log.Info("Registered {User}@{Host} from {Remote}", username, request.Host, request.Remote);
                return Stanza.IqResult(iq);
            case AccountResult.Exists:
                Release(request.Remote);
                return Stanza.ErrorReply(iq, new StanzaError(StanzaErrorCondition.Conflict, "that username is taken"));
            default:
                Release(request.Remote);
                return Stanza.ErrorReply(iq, new StanzaError(StanzaErrorCondition.NotAcceptable, result == AccountResult.InvalidPassword ? "the password cannot be used" : "the username cannot be used"));
        }
    }

    /// <summary>§3.2: the account cancels its registration: it is removed, and its sessions end.</summary>
    private static async ValueTask<Element?> RemoveAccountAsync(IModuleContext context, AccountService accounts, Routing.StanzaContext ctx, Xmpp.Core.Addressing.Jid user, CancellationToken ct)
    {
        await accounts.DeleteAsync(user.ToString(), ct).ConfigureAwait(false);
        context.Log.Info("{User} removed the account", user);

        // §3.2: the result first, then every session of the account ends.
        var reply = Stanza.IqResult(ctx.Stanza).SetAttribute("from", null);
        ctx.Origin!.TrySend(reply);
        foreach (var session in context.Sessions.Resources(user))
        {
            session.Close(new StreamError(StreamErrorCondition.NotAuthorized, "the account was removed"));
        }

        return IqReply.Answered;
    }

    /// <summary>§3.3: the account's own username and a new password.</summary>
    private static async ValueTask<Element?> ChangePasswordAsync(IModuleContext context, AccountService accounts, Xmpp.Core.Addressing.Jid user, Element query, CancellationToken ct)
    {
        var username = query.ChildText("username", Namespace);
        var password = query.ChildText("password", Namespace);
        if (username != user.Local || string.IsNullOrEmpty(password))
        {
            throw new StanzaErrorException(StanzaErrorCondition.BadRequest, "give your own username and the new password");
        }

        if (await accounts.SetPasswordAsync(user.ToString(), password, ct).ConfigureAwait(false) != AccountResult.Ok)
        {
            throw new StanzaErrorException(StanzaErrorCondition.NotAcceptable, "the password cannot be used");
        }

        context.Log.Info("{User} changed the password", user);
        return null;
    }

    private static Xmpp.Core.Addressing.Jid Own(Routing.StanzaContext ctx)
    {
        if (ctx.Origin is null || (ctx.To!.Local is not null && ctx.To.Bare != ctx.From.Bare))
        {
            throw new StanzaErrorException(StanzaErrorCondition.Forbidden, "only for the account itself");
        }

        return ctx.From.Bare;
    }

    /// <summary>A sliding window of registration times per address; a place is taken before the account is created.</summary>
    private bool TryAdmit(IPAddress address)
    {
        var now = Environment.TickCount64;
        var times = _recent.GetOrAdd(address, _ => []);
        lock (times)
        {
            times.RemoveAll(t => now - t > _window.TotalMilliseconds);
            if (times.Count >= _perIp)
            {
                return false;
            }

            times.Add(now);
            return true;
        }
    }

    /// <summary>An attempt that created nothing gives its place back.</summary>
    private void Release(IPAddress address)
    {
        if (_recent.TryGetValue(address, out var times))
        {
            lock (times)
            {
                if (times.Count > 0)
                {
                    times.RemoveAt(times.Count - 1);
                }
            }
        }
    }
}
