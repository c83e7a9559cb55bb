using System.Security.Cryptography;
using System.Text;
using Xmpp.Core.Xml;

namespace Xmpp.Core.Caps;

/// <summary>XEP-0115 entity capabilities: the verification string of a disco#info result (§5) and the &lt;c/&gt; element.</summary>
[Specification("XEP-0115", "1.6", Note = "The verification string of §5 (identities, features, extended forms), checked against the XEP's examples.")]
public static class EntityCapabilities
{
    public const string Namespace = "http://jabber.org/protocol/caps";

    private const string DataForms = "jabber:x:data";

    /// <summary>
    /// The 'ver' of a disco#info &lt;query/&gt; with SHA-1 (§5.1), or null when the query is one §5.4 says
    /// must not be cached: duplicate identities or features, a form without a hidden FORM_TYPE, or two
    /// forms of one FORM_TYPE.
    /// </summary>
    public static string? Verification(Element query)
    {
        var identities = new List<string>();
        var features = new List<string>();
        var forms = new List<(string FormType, string Text)>();
        foreach (var child in query.Elements())
        {
            if (child.Is("identity", Ns.DiscoInfo))
            {
                identities.Add($"{child.GetAttribute("category")}/{child.GetAttribute("type")}/{child.GetAttribute("lang", Ns.Xml)}/{child.GetAttribute("name")}");
            }
            else if (child.Is("feature", Ns.DiscoInfo))
            {
                features.Add(child.GetAttribute("var") ?? string.Empty);
            }
            else if (child.Is("x", DataForms))
            {
                var form = FormText(child);
                if (form is null)
                {
                    return null;
                }

                forms.Add(form.Value);
            }
        }

        if (identities.Distinct(StringComparer.Ordinal).Count() != identities.Count ||
            features.Distinct(StringComparer.Ordinal).Count() != features.Count ||
            forms.Select(f => f.FormType).Distinct(StringComparer.Ordinal).Count() != forms.Count)
        {
            return null;
        }

        var s = new StringBuilder();
        foreach (var i in identities.Order(StringComparer.Ordinal))
        {
            s.Append(i).Append('<');
        }

        foreach (var f in features.Order(StringComparer.Ordinal))
        {
            s.Append(f).Append('<');
        }

        foreach (var (_, text) in forms.OrderBy(f => f.FormType, StringComparer.Ordinal))
        {
            s.Append(text);
        }

        // XEP-0115 names SHA-1 as the hash every entity supports; it identifies a feature set, it protects nothing.
#pragma warning disable CA5350
        return Convert.ToBase64String(SHA1.HashData(Encoding.UTF8.GetBytes(s.ToString())));
#pragma warning restore CA5350
    }

    /// <summary>The &lt;c/&gt; element for presence or stream features (§4).</summary>
    public static Element Element(string node, string ver) =>
        new Element("c", Namespace).SetAttribute("hash", "sha-1").SetAttribute("node", node).SetAttribute("ver", ver);

    private static (string FormType, string Text)? FormText(Element form)
    {
        string? formType = null;
        var fields = new List<(string Var, List<string> Values)>();
        foreach (var field in form.Elements().Where(e => e.Is("field", DataForms)))
        {
            var name = field.GetAttribute("var");
            var values = field.Elements().Where(e => e.Is("value", DataForms)).Select(e => e.Text).ToList();
            if (name == "FORM_TYPE")
            {
                if (field.GetAttribute("type") != "hidden" || values.Count != 1)
                {
                    return null;
                }

                formType = values[0];
            }
            else if (name is not null)
            {
                fields.Add((name, values));
            }
        }

        if (formType is null)
        {
            return null;
        }

        var s = new StringBuilder().Append(formType).Append('<');
        foreach (var (name, values) in fields.OrderBy(f => f.Var, StringComparer.Ordinal))
        {
            s.Append(name).Append('<');
            foreach (var v in values.Order(StringComparer.Ordinal))
            {
                s.Append(v).Append('<');
            }
        }

        return (formType, s.ToString());
    }
}
