using System.Security.Cryptography;
using Xmpp.Core;
using Xmpp.Core.Addressing;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;
using Xmpp.Server.Accounts;
using Xmpp.Server.Config;
using Xmpp.Server.Modules.AdHoc;
using Xmpp.Server.Modules.Presence;
using Xmpp.Server.Modules.Registration;
using Xmpp.Server.Routing;
using Xmpp.Server.Storage;
using Xmpp.Server.Streams;

namespace Xmpp.Server.Modules.Invites;

/// <summary>
/// Invitations (Prosody's mod_invites, mod_invites_adhoc, mod_invites_register and mod_invites_page in one):
/// tokens made by the invite command or by the XEP-0401 ad-hoc commands; XEP-0445 tokens presented before
/// in-band registration, which then works even with the register module off; XEP-0379 subscription requests
/// carrying a token, approved for the inviter; and the invitation page with its sign-up form
/// (<see cref="InvitePage"/>). Off unless listed.
/// </summary>
[Specification("XEP-0401", "0.6.0", Note = "The urn:xmpp:invite#invite command (a contact invitation for every account; ibr=y for admins, or for everyone with user-registration) and urn:xmpp:invite#create-account (admins; an optional reserved username and roster subscription), with the uri, landing-url and expire result fields; a landing page on the HTTPS listener (clients per platform, the xmpp: link and its QR code, and a web sign-up form); the new account and the inviter are subscribed both ways, with a roster push to the inviter. Tokens: 128 random bits, a number of uses and an expiry; also made with xmppserver invite.")]
[Specification("XEP-0379", "0.3.3", Note = "A subscription request carrying a valid contact invitation's token is approved on the inviter's behalf, and the inviter subscribes back.")]
[Specification("XEP-0445", "0.2.0", Note = "The urn:xmpp:ibr-token:0 stream feature and the preauth request before XEP-0077 registration; item-not-found for unknown, used-up or expired tokens; a use is taken only when the account is created; a reserved username is the only one accepted.")]
public sealed class InvitesModule : IXmppModule, IKeepsStateAcrossReload
{
    /// <summary>What a stream that presented a valid token keeps (XEP-0445 §4: its expiry is not checked again).</summary>
    private const string PresentedKey = "invites.presented";

    private IModuleContext _context = null!;
    private AccountService _accounts = null!;
    private TimeSpan _validity;
    private bool _userRegistration;
    private Uri? _baseUrl;

    /// <summary>The key of the sign-up form's nonces (a new one per server run; kept across reloads).</summary>
    private byte[] _formKey = RandomNumberGenerator.GetBytes(32);

    public string Name => Invitations.ModuleName;

    internal IModuleContext Context => _context;

    internal byte[] FormKey => _formKey;

    public void TakeOver(IXmppModule previous)
    {
        if (previous is InvitesModule old)
        {
            _formKey = old._formKey;
        }
    }

    public void Register(IModuleContext context)
    {
        _context = context;
        _accounts = new AccountService(context.Options, context.Storage);
        _validity = TimeSpan.FromDays(context.Number("expires", Invitations.DefaultDays, min: 1, max: 3650));
        _userRegistration = context.Flag("user-registration", false);
        if (context.Option("url") is { } url)
        {
            _baseUrl = Invitations.ParseBase(url) ?? throw new ConfigException($"module invites: url must be an absolute https URL, not '{url}'");
        }

        // XEP-0445: the token before registration, and registration itself (through the register module when it is on).
        var policy = context.Shared<RegistrationPolicy>();
        policy.Invited = RegisterInvitedAsync;
        policy.InvitationOf = stream => stream.Items.Get<Invite>(PresentedKey) is { } invite ? (true, invite.Username) : (false, null);
        context.AddPreAuthStreamFeature(new Element("register", Invitations.IbrTokenNamespace));
        context.HandlePreAuthIq(Invitations.PreAuthNamespace, PreAuthAsync);
        context.AfterLoad(() =>
        {
            if (!policy.Open)
            {
                // Registration is closed: only invited streams may register, and this module answers them.
                context.AddPreAuthStreamFeature(new Element("register", "http://jabber.org/features/iq-register"));
                context.HandlePreAuthIq(RegistrationModule.Namespace, (request, ct) => ClosedRegistrationAsync(policy, request, ct));
            }
        });

        // XEP-0401: the commands.
        var commands = context.Shared<AdHocCommands>();
        commands.Add(new AdHocCommand("urn:xmpp:invite#invite", "Invite a contact", IsLocalAccount, InviteContactAsync));
        commands.Add(new AdHocCommand("urn:xmpp:invite#create-account", "Create an account invitation", context.Options.IsAdmin, InviteAccountAsync));

        // XEP-0379: subscription requests with a token, before the presence module (priority -1) handles them.
        context.Hook(HookNames.Stanza("presence", Target.Bare), OnSubscriptionRequestAsync, priority: 10);

        var page = new InvitePage(this);
        // The page and its form are this origin's own: no CORS answers (its form checks Origin itself).
        context.HandleSameOriginHttp(Invitations.PagePath, page.HandleAsync, "GET", "POST");
        context.RunInBackground(SweepAsync);
    }

    /// <summary>Where the invitation page of a host is: the url option, else the HTTPS listener; null without either.</summary>
    internal Uri? BaseUrl(string host) => _baseUrl ?? _context.HttpsBase(host);

    internal Task<Invite?> FindAsync(string token, CancellationToken ct) =>
        Invitations.LooksLikeToken(token) ? _context.Storage.Invites.GetAsync(token, ct) : Task.FromResult<Invite?>(null);

    // ---- XEP-0445: the token before registration ---------------------------------------------------

    private async ValueTask<Element> PreAuthAsync(PreAuthRequest request, CancellationToken ct)
    {
        var iq = request.Iq;
        if (iq.GetAttribute("type") != "set" || request.Payload.Name != "preauth")
        {
            return Stanza.ErrorReply(iq, StanzaError.BadRequest("a preauth element in an iq of type set"));
        }

        var token = request.Payload.GetAttribute("token");
        var invite = token is null ? null : await FindAsync(token, ct).ConfigureAwait(false);
        if (invite is null || !invite.CreatesAccounts || invite.Host != request.Host || !invite.IsValid(DateTimeOffset.UtcNow))
        {
            _context.Log.Info("An invitation token from {Remote} was refused (unknown, used up, expired or for another host)", request.Remote);
            return Stanza.ErrorReply(iq, new StanzaError(StanzaErrorCondition.ItemNotFound, "The provided token is invalid or expired"));
        }

        // §4: the token is used only when the account is created; its expiry is not checked again on this stream.
        request.Stream.Items.Set(PresentedKey, invite);
        _context.Log.Info("{Remote} presented a valid invitation for {Host}", request.Remote, request.Host);
        return Stanza.IqResult(iq);
    }

    /// <summary>jabber:iq:register while the register module is off: only for a stream that presented an invitation.</summary>
    private async ValueTask<Element> ClosedRegistrationAsync(RegistrationPolicy policy, PreAuthRequest request, CancellationToken ct)
    {
        var iq = request.Iq;
        var invited = request.Stream.Items.Get<Invite>(PresentedKey) is not null;
        switch (iq.GetAttribute("type"))
        {
            case "get":
                // The form for anyone: clients (slixmpp's XEP-0077 plugin) fetch it before they present the token.
                return Stanza.IqResult(iq, policy.Form(request));
            case "set" when invited && request.Payload.Child("remove", RegistrationModule.Namespace) is null:
                var username = request.Payload.ChildText("username", RegistrationModule.Namespace);
                var password = request.Payload.ChildText("password", RegistrationModule.Namespace);
                return await RegisterInvitedAsync(request, username ?? string.Empty, password ?? string.Empty, ct).ConfigureAwait(false);
            case "set":
                return Stanza.ErrorReply(iq, new StanzaError(StanzaErrorCondition.NotAllowed, "registration on this server needs an invitation (XEP-0445)"));
            default:
                return Stanza.ErrorReply(iq, StanzaError.BadRequest("get or set"));
        }
    }

    /// <summary>XEP-0077 registration on a stream that presented an invitation (XEP-0445).</summary>
    private async ValueTask<Element> RegisterInvitedAsync(PreAuthRequest request, string username, string password, CancellationToken ct)
    {
        var iq = request.Iq;
        var presented = request.Stream.Items.Get<Invite>(PresentedKey)!;
        if (string.IsNullOrEmpty(username) && presented.Username is not null)
        {
            username = presented.Username;
        }

        if (string.IsNullOrEmpty(username) || string.IsNullOrEmpty(password))
        {
            return Stanza.ErrorReply(iq, new StanzaError(StanzaErrorCondition.NotAcceptable, "a username and a password are required"));
        }

        var (outcome, _) = await RedeemAsync(presented.Token, request.Host, username, password, checkExpiry: false, ct).ConfigureAwait(false);
        if (outcome == RedeemOutcome.Ok)
        {
            request.Stream.Items.Set(PresentedKey, null);
            return Stanza.IqResult(iq);
        }

        var error = outcome switch
        {
            RedeemOutcome.Gone => new StanzaError(StanzaErrorCondition.ItemNotFound, "The provided token is invalid or expired"),
            RedeemOutcome.Exists => new StanzaError(StanzaErrorCondition.Conflict, "that username is taken"),
            RedeemOutcome.WrongUsername => new StanzaError(StanzaErrorCondition.NotAcceptable, $"this invitation is for the username {presented.Username}"),
            RedeemOutcome.InvalidPassword => new StanzaError(StanzaErrorCondition.NotAcceptable, "the password cannot be used"),
            _ => new StanzaError(StanzaErrorCondition.NotAcceptable, "the username cannot be used"),
        };
        return Stanza.ErrorReply(iq, error);
    }

    /// <summary>
    /// Creates the account of an invitation (in band, or from the page's form): takes a use (atomically, so the
    /// last use goes to one person), creates the account (giving the use back if it cannot), and subscribes the
    /// new account and the inviter to each other when the invitation says so.
    /// </summary>
    internal async Task<(RedeemOutcome Outcome, Jid? Account)> RedeemAsync(string token, string host, string username, string password, bool checkExpiry, CancellationToken ct)
    {
        var invites = _context.Storage.Invites;
        var invite = await FindAsync(token, ct).ConfigureAwait(false);
        if (invite is null || !invite.CreatesAccounts || invite.Host != host || invite.UsesLeft <= 0 || (checkExpiry && invite.Expires <= DateTimeOffset.UtcNow))
        {
            return (RedeemOutcome.Gone, null);
        }

        if (username.Contains('@', StringComparison.Ordinal) || username.Contains('/', StringComparison.Ordinal)
            || !Jid.TryParse(username + "@" + host, out var account) || account.Local is null)
        {
            return (RedeemOutcome.InvalidUsername, null);
        }

        if (invite.Username is not null && account.Local != invite.Username)
        {
            return (RedeemOutcome.WrongUsername, null);
        }

        if (!await invites.TryUseAsync(token, ct).ConfigureAwait(false))
        {
            return (RedeemOutcome.Gone, null);
        }

        var result = await _accounts.AddAsync(account.ToString(), password, ct).ConfigureAwait(false);
        if (result != AccountResult.Ok)
        {
            await invites.ReturnUseAsync(token, CancellationToken.None).ConfigureAwait(false);
            return (result switch
            {
                AccountResult.Exists => RedeemOutcome.Exists,
                AccountResult.InvalidPassword => RedeemOutcome.InvalidPassword,
                _ => RedeemOutcome.InvalidUsername,
            }, null);
        }

        _context.Log.Info("{Account} was created with an invitation from {Inviter}", account, invite.Inviter ?? "the operator");
        if (invite.Subscribe && invite.Inviter is not null && Jid.TryParse(invite.Inviter, out var inviter))
        {
            await SubscribeBothWaysAsync(inviter, account, ct).ConfigureAwait(false);
        }

        return (RedeemOutcome.Ok, account);
    }

    /// <summary>
    /// XEP-0401 §3.6: the inviter and the new account are subscribed to each other (subscription both in both
    /// rosters, pushed to the inviter's resources). The new account has no session yet: at its first initial
    /// presence it probes the inviter and the inviter gets its presence, as between any two subscribed contacts.
    /// </summary>
    private async Task SubscribeBothWaysAsync(Jid inviter, Jid account, CancellationToken ct)
    {
        static RosterItem Both(RosterItem? item, Jid contact) =>
            (item ?? RosterItem.Empty(contact.ToString())) with
            {
                Subscription = Subscription.Both,
                PendingIn = false,
                PendingInRequest = null,
                PendingOut = false,
                Approved = false,
                InRoster = true,
            };

        try
        {
            await _context.Rosters.ChangeAsync(inviter, account, item => Both(item, account), ct).ConfigureAwait(false);
            await _context.Rosters.ChangeAsync(account, inviter, item => Both(item, inviter), ct).ConfigureAwait(false);
        }
        catch (Roster.RosterFullException)
        {
            _context.Log.Warn("{Inviter}'s roster is full: {Account} was not added to it", inviter, account);
            return;
        }

        // The inviter's available resources: their presence for the new contact, who gets it when online.
        foreach (var r in _context.Sessions.Resources(inviter))
        {
            if (r.IsAvailable && r.LastPresence is { } last)
            {
                await _context.Router.RouteParsedAsync(last.Copy().SetAttribute("to", account.ToString()), r.Jid, account, ct).ConfigureAwait(false);
            }
        }
    }

    // ---- XEP-0379: a subscription request with a token ---------------------------------------------

    private async ValueTask<bool> OnSubscriptionRequestAsync(StanzaContext ctx, CancellationToken ct)
    {
        if (ctx.Type != "subscribe" || ctx.Stanza.Child("preauth", Invitations.PreAuthNamespace)?.GetAttribute("token") is not { } token)
        {
            return false;
        }

        var user = ctx.To!.Bare;
        var contact = ctx.From.Bare;
        if (user.Local is null || contact == user)
        {
            return false;
        }

        var invite = await FindAsync(token, ct).ConfigureAwait(false);
        if (invite is not { Kind: InviteKind.Roster } || invite.Inviter != user.ToString() || !invite.IsValid(DateTimeOffset.UtcNow)
            || !await _context.Storage.Invites.TryUseAsync(token, ct).ConfigureAwait(false))
        {
            // Left to the user, as any request.
            _context.Log.Info("A subscription request from {Contact} to {User} carried an invalid invitation token", contact, user);
            return false;
        }

        // The inviter pre-approves the request (RFC 6121 §3.4), which the presence module then answers for them,
        // and asks for the contact's presence in return.
        var key = contact.ToString();
        RosterItem? before;
        try
        {
            (before, _) = await _context.Rosters.ChangeAsync(
                user,
                contact,
                item => SubscriptionRules.OutboundSubscribed(SubscriptionRules.OutboundSubscribe(item, key).Item, key).Item,
                ct).ConfigureAwait(false);
        }
        catch (Roster.RosterFullException)
        {
            await _context.Storage.Invites.ReturnUseAsync(token, CancellationToken.None).ConfigureAwait(false);
            return false;
        }

        if (before is not { HasTo: true } and not { PendingOut: true })
        {
            var subscribe = new Element("presence", Ns.Client).SetAttribute("type", "subscribe").SetAttribute("from", user.ToString()).SetAttribute("to", key);
            await _context.Router.RouteAsync(subscribe, null, ct).ConfigureAwait(false);
        }

        _context.Log.Info("{Contact} used {User}'s invitation: the subscription request is approved", contact, user);
        return false;
    }

    // ---- XEP-0401: the commands ---------------------------------------------------------------------

    private bool IsLocalAccount(Jid jid) => jid.Local is not null && _context.Options.Hosts.Any(h => h.Name == jid.Domain);

    /// <summary>§3.1: a contact invitation at once, no form; ibr=y for admins, and for everyone with user-registration.</summary>
    private async ValueTask<AdHocResult> InviteContactAsync(AdHocRequest request, CancellationToken ct)
    {
        var inviter = request.Requester.Bare;
        var allowRegistration = _userRegistration || _context.Options.IsAdmin(inviter);
        var invite = await Invitations.CreateAsync(_context.Storage, InviteKind.Roster, inviter.Domain, inviter, null, allowRegistration, subscribe: true, uses: 1, _validity, ct).ConfigureAwait(false);
        _context.Log.Info("{Inviter} created a contact invitation (account creation {Registration})", inviter, allowRegistration ? "allowed" : "not allowed");
        return AdHocResult.Done("Share this invitation link with the person you want to invite.", ResultForm(invite));
    }

    /// <summary>§3.5: an account invitation with an optional reserved username and roster subscription.</summary>
    private async ValueTask<AdHocResult> InviteAccountAsync(AdHocRequest request, CancellationToken ct)
    {
        if (request.Values is null)
        {
            var form = DataForm.Create("form", Invitations.FormType);
            form.AddChild("title", DataForm.Namespace).AddText("Create an account invitation");
            form.AddChild("instructions", DataForm.Namespace).AddText("Optionally reserve the username; leave it empty to let the invited person choose.");
            DataForm.AddField(form, "username", "text-single").SetAttribute("label", "Username");
            DataForm.AddField(form, "roster-subscription", "boolean", "0").SetAttribute("label", "Add the new account to my contacts");
            return AdHocResult.Ask(form);
        }

        var host = request.Host;
        string? username = null;
        if (request.Value("username") is { } wanted)
        {
            if (wanted.Contains('@', StringComparison.Ordinal) || wanted.Contains('/', StringComparison.Ordinal) || !Jid.TryParse(wanted + "@" + host, out var reserved) || reserved.Local is null)
            {
                return AdHocResult.Failed($"'{wanted}' cannot be a username.");
            }

            if (await _context.Storage.Users.ExistsAsync(host, reserved.Local, ct).ConfigureAwait(false))
            {
                return AdHocResult.Failed($"The account {reserved} exists already.");
            }

            username = reserved.Local;
        }

        var subscribe = request.Value("roster-subscription") is { } flag && DataForm.ParseBoolean(flag) == true;
        var inviter = request.Requester.Bare;
        var invite = await Invitations.CreateAsync(_context.Storage, InviteKind.Register, host, inviter, username, allowRegistration: false, subscribe, uses: 1, _validity, ct).ConfigureAwait(false);
        _context.Log.Info("{Inviter} created an account invitation for {Host}", inviter, host);
        return AdHocResult.Done("Share this invitation link with the person who is to have the account.", ResultForm(invite));
    }

    /// <summary>XEP-0401 §3.1: the uri, landing-url and expire fields.</summary>
    private Element ResultForm(Invite invite)
    {
        var form = DataForm.Create("result", Invitations.FormType);
        DataForm.AddField(form, "uri", "text-single", Invitations.XmppUri(invite)).SetAttribute("label", "Invitation URI");
        if (BaseUrl(invite.Host) is { } baseUrl)
        {
            DataForm.AddField(form, "landing-url", "text-single", Invitations.LandingUrl(baseUrl, invite.Token).AbsoluteUri).SetAttribute("label", "Invitation web page");
        }

        DataForm.AddField(form, "expire", "text-single", Invitations.DateTime(invite.Expires)).SetAttribute("label", "Valid until");
        return form;
    }

    /// <summary>Expired invitations are kept 30 days (the page says they expired), then removed; once an hour.</summary>
    private async Task SweepAsync(CancellationToken ct)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromHours(1));
        try
        {
            do
            {
                var removed = await _context.Storage.Invites.DeleteExpiredAsync(DateTimeOffset.UtcNow - TimeSpan.FromDays(30), ct).ConfigureAwait(false);
                if (removed > 0)
                {
                    _context.Log.Info("Removed {Count} invitations that expired more than 30 days ago", removed);
                }
            }
            while (await timer.WaitForNextTickAsync(ct).ConfigureAwait(false));
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // Shutdown.
        }
    }
}

/// <summary>What came of using an invitation to create an account.</summary>
internal enum RedeemOutcome
{
    Ok,

    /// <summary>Unknown, used up, expired, for another host, or not for creating accounts.</summary>
    Gone,
    InvalidUsername,
    WrongUsername,
    InvalidPassword,
    Exists,
}
