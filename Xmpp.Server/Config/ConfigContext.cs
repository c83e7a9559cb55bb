using System.Globalization;
using System.Numerics;
using System.Xml;
using System.Xml.Linq;

namespace Xmpp.Server.Config;

/// <summary>
/// The configuration file being read: errors that name its file, line and element, and the typed readers
/// of attributes (with their range checks). Relative paths resolve against the file's folder.
/// </summary>
internal sealed class ConfigContext(string file, string baseDir)
{
    public string File => file;

    public string BaseDirectory => baseDir;

    public ConfigException Error(XElement e, string message)
    {
        var line = ((IXmlLineInfo)e).HasLineInfo() ? ((IXmlLineInfo)e).LineNumber : 0;
        return new ConfigException($"{file}:{line}: <{e.Name.LocalName}>: {message}");
    }

    public void CheckAttributes(XElement e, params string[] allowed)
    {
        foreach (var a in e.Attributes())
        {
            if (a.IsNamespaceDeclaration)
            {
                continue;
            }

            if (Array.IndexOf(allowed, a.Name.LocalName) < 0 || a.Name.NamespaceName.Length != 0)
            {
                throw Error(e, $"unknown attribute '{a.Name.LocalName}'" +
                    (allowed.Length > 0 ? $" (allowed: {string.Join(", ", allowed)})" : string.Empty));
            }
        }
    }

    public string Required(XElement e, string name) =>
        (string?)e.Attribute(name) is { Length: > 0 } v ? v : throw Error(e, $"attribute '{name}' is required");

    public string? PathAttr(XElement e, string name, bool required)
    {
        var v = required ? Required(e, name) : (string?)e.Attribute(name);
        return string.IsNullOrEmpty(v) ? null : Path.GetFullPath(Path.Combine(baseDir, v));
    }

    public int Int(XElement e, string name, int fallback, int min, int max) =>
        Number(e, name, fallback, min, max, "a whole number");

    public double Double(XElement e, string name, double fallback, double min, double max) =>
        Number(e, name, fallback, min, max, "a number");

    /// <summary>A duration in seconds (a number, fractions allowed).</summary>
    public TimeSpan Seconds(XElement e, string name, double fallback, double min, double max) =>
        TimeSpan.FromSeconds(Double(e, name, fallback, min, max));

    private T Number<T>(XElement e, string name, T fallback, T min, T max, string kind)
        where T : struct, INumber<T>
    {
        var v = (string?)e.Attribute(name);
        if (v is null)
        {
            return fallback;
        }

        if (!T.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out var n) || n < min || n > max)
        {
            throw Error(e, $"attribute '{name}' must be {kind} from {min} to {max}, not '{v}'");
        }

        return n;
    }

    public bool Bool(XElement e, string name, bool fallback)
    {
        var v = (string?)e.Attribute(name);
        return v switch
        {
            null => fallback,
            "true" or "1" or "yes" => true,
            "false" or "0" or "no" => false,
            _ => throw Error(e, $"attribute '{name}' must be true or false, not '{v}'"),
        };
    }
}
