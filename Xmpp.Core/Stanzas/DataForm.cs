using Xmpp.Core.Xml;

namespace Xmpp.Core.Stanzas;

/// <summary>XEP-0004 data forms: building result/form forms and reading submitted values.</summary>
[Specification("XEP-0004", "2.13.1", Note = "Data forms for node configuration, publish-options, archive queries and server information.")]
public static class DataForm
{
    public const string Namespace = "jabber:x:data";

    /// <summary>An empty form of a type ("form", "result", "submit") with its hidden FORM_TYPE.</summary>
    public static Element Create(string type, string formType)
    {
        var form = new Element("x", Namespace).SetAttribute("type", type);
        AddField(form, "FORM_TYPE", "hidden", formType);
        return form;
    }

    /// <summary>Adds a field with its values; returns the field (for options or labels).</summary>
    public static Element AddField(Element form, string var, string? type, params string[] values)
    {
        var field = form.AddChild("field", Namespace).SetAttribute("var", var).SetAttribute("type", type);
        foreach (var v in values)
        {
            field.AddChild("value", Namespace).AddText(v);
        }

        return field;
    }

    /// <summary>The values of a submitted form by field, FORM_TYPE included; null when the element is not a form.</summary>
    public static Dictionary<string, List<string>>? Values(Element? form)
    {
        if (form is null || !form.Is("x", Namespace))
        {
            return null;
        }

        var values = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        foreach (var field in form.Elements().Where(e => e.Is("field", Namespace)))
        {
            if (field.GetAttribute("var") is { } var)
            {
                values[var] = field.Elements().Where(e => e.Is("value", Namespace)).Select(e => e.Text).ToList();
            }
        }

        return values;
    }

    /// <summary>The form's FORM_TYPE, if it has one.</summary>
    public static string? FormType(Dictionary<string, List<string>> values) =>
        values.TryGetValue("FORM_TYPE", out var v) && v.Count > 0 ? v[0] : null;

    /// <summary>XEP-0004 §3.3 boolean: "1"/"true" or "0"/"false"; null for anything else.</summary>
    public static bool? ParseBoolean(string value) => value switch
    {
        "1" or "true" => true,
        "0" or "false" => false,
        _ => null,
    };
}
