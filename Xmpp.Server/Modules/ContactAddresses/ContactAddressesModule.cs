using Xmpp.Core.Xml;

namespace Xmpp.Server.Modules.ContactAddresses;

/// <summary>
/// XEP-0157 Contact Addresses for XMPP Services: who to reach about abuse, administration, security and
/// so on, as a XEP-0128 form in the server's disco#info. Configured per kind as a list of URIs
/// (mailto:, xmpp:, https:, tel: ...), separated by spaces or commas:
/// &lt;contact abuse="mailto:abuse@example.org xmpp:abuse@example.org" admin="xmpp:admin@example.org"/&gt;.
/// </summary>
[Specification("XEP-0157", "1.1.1", Note = "Contact addresses (abuse, admin, feedback, sales, security, status, support) as a XEP-0128 form in the server's disco#info.")]
public sealed class ContactAddressesModule : IXmppModule
{
    public const string FormType = "http://jabber.org/network/serverinfo";
    private const string DataForms = "jabber:x:data";

    /// <summary>Configuration attribute to form field (XEP-0157 §4), in the XEP's order.</summary>
    public static readonly IReadOnlyList<(string Option, string Field)> Kinds =
    [
        ("abuse", "abuse-addresses"),
        ("admin", "admin-addresses"),
        ("feedback", "feedback-addresses"),
        ("sales", "sales-addresses"),
        ("security", "security-addresses"),
        ("status", "status-addresses"),
        ("support", "support-addresses"),
    ];

    public string Name => "contact";

    public void Register(IModuleContext context)
    {
        var form = new Element("x", DataForms).SetAttribute("type", "result");
        form.AddChild("field").SetAttribute("var", "FORM_TYPE").SetAttribute("type", "hidden").AddChild("value").AddText(FormType);
        var any = false;
        foreach (var (option, field) in Kinds)
        {
            if (context.Option(option) is not { } value)
            {
                continue;
            }

            var f = form.AddChild("field").SetAttribute("var", field).SetAttribute("type", "list-multi");
            foreach (var uri in value.Split([' ', ',', '\t', '\n'], StringSplitOptions.RemoveEmptyEntries))
            {
                // §3: each value is a URI; a bare address is a configuration mistake, not something to guess at.
                if (!Uri.TryCreate(uri, UriKind.Absolute, out var parsed) || parsed.Scheme.Length < 2 ||
                    !uri.StartsWith(parsed.Scheme + ":", StringComparison.OrdinalIgnoreCase))
                {
                    throw new Config.ConfigException($"module contact: '{uri}' in {option} is not a URI (write mailto:, xmpp:, https: ...)");
                }

                f.AddChild("value").AddText(uri);
                any = true;
            }
        }

        if (!any)
        {
            throw new Config.ConfigException("module contact: give at least one address, e.g. <contact admin=\"xmpp:admin@example.org\"/>");
        }

        context.Disco.AddHostExtension(form);
    }
}
