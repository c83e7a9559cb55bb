using Xmpp.Core.Xml;
using Xmpp.Server.Streams;

namespace Xmpp.Server.Modules.Registration;

/// <summary>
/// Who may create an account in band (XEP-0077), shared by the modules that decide it
/// (<c>context.Shared&lt;RegistrationPolicy&gt;()</c>): the register module opens registration to anyone; the
/// invites module lets a stream that presented a valid invitation token (XEP-0445) register even when it is
/// closed. Whichever of the two is loaded answers jabber:iq:register before authentication, and an invited
/// stream's registration always goes to the invites module.
/// </summary>
public sealed class RegistrationPolicy
{
    /// <summary>The register module is loaded: anyone may create an account (within its per-address limit).</summary>
    public bool Open { get; set; }

    /// <summary>
    /// Set by the invites module: creates the account of a registration request (type set) on a stream that
    /// presented an invitation, and answers it; null when that stream presented none.
    /// </summary>
    public Func<PreAuthRequest, string, string, CancellationToken, ValueTask<Element>>? Invited { get; set; }

    /// <summary>Set by the invites module: the username an invited stream must register (reserved by the invitation), if any.</summary>
    public Func<IC2sContext, (bool Invited, string? Username)>? InvitationOf { get; set; }

    /// <summary>XEP-0077 §3.1: the registration form (the legacy fields), with a reserved username filled in.</summary>
    public Element Form(PreAuthRequest request)
    {
        var form = new Element("query", RegistrationModule.Namespace);
        var username = InvitationOf?.Invoke(request.Stream).Username;
        form.AddChild("instructions").AddText(username is null ? "Choose a username and a password." : "Choose a password.");
        var field = form.AddChild("username");
        if (username is not null)
        {
            field.AddText(username);
        }

        form.AddChild("password");
        return form;
    }
}
