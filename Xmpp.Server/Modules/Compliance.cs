using System.Reflection;
using System.Text;
using Xmpp.Core;

namespace Xmpp.Server.Modules;

/// <summary>
/// The compliance table (README, <c>xmppserver compliance</c>), built from the [Specification] declarations
/// of the protocol library and the server: one row per specification, with the versions, where it lives
/// (a module's configuration name, or "core" for what is always on), and what is implemented.
/// </summary>
public static class Compliance
{
    public sealed record Row(string Specification, string Version, string Where, string Note);

    [System.Diagnostics.CodeAnalysis.UnconditionalSuppressMessage("Trimming", "IL2026", Justification = "Xmpp.Core and xmppserver are TrimmerRootAssembly items (Xmpp.Server.csproj): every type keeps its metadata and attributes.")]
    public static IReadOnlyList<Row> Rows()
    {
        var modules = ModuleHost.Available.ToDictionary(kv => kv.Value().GetType(), kv => kv.Key);
        var found = new List<(SpecificationAttribute Spec, string Where)>();
        foreach (var assembly in new[] { typeof(Compliance).Assembly, typeof(Ns).Assembly })
        {
            foreach (var type in assembly.GetTypes().OrderBy(t => t.FullName, StringComparer.Ordinal))
            {
                foreach (var spec in type.GetCustomAttributes<SpecificationAttribute>())
                {
                    var where = modules.TryGetValue(type, out var name)
                        ? ServerOptionsDefaults.Contains(name) ? $"`{name}`" : $"`{name}` (off by default)"
                        : "core";
                    found.Add((spec, where));
                }
            }
        }

        return found
            .GroupBy(f => f.Spec.Name, StringComparer.Ordinal)
            .OrderBy(g => SortKey(g.Key), StringComparer.Ordinal)
            .Select(g => g.OrderBy(f => f.Spec.Version, StringComparer.Ordinal).ToList())
            .Select(g => new Row(
                g[0].Spec.Name,
                string.Join(", ", g.Select(f => f.Spec.Version).Where(v => v.Length > 0).Distinct(StringComparer.Ordinal)),
                string.Join(", ", g.Select(f => f.Where).Distinct(StringComparer.Ordinal)),
                string.Join(" ", g.Select(f => f.Spec.Note).Where(n => n.Length > 0).Distinct(StringComparer.Ordinal))))
            .ToList();
    }

    /// <summary>The table in Markdown, as README carries it between its compliance markers.</summary>
    public static string Markdown()
    {
        var sb = new StringBuilder();
        sb.Append("| specification | version or sections | module | what is implemented |\n");
        sb.Append("|---|---|---|---|\n");
        foreach (var r in Rows())
        {
            sb.Append("| ").Append(r.Specification).Append(" | ").Append(r.Version).Append(" | ").Append(r.Where).Append(" | ")
              .Append(r.Note.Replace("|", "\\|", StringComparison.Ordinal).Replace("<", "&lt;", StringComparison.Ordinal)).Append(" |\n");
        }

        return sb.ToString();
    }

    private static HashSet<string> ServerOptionsDefaults => [.. Config.ServerOptions.DefaultModules.Keys];

    /// <summary>RFCs by number, then XEPs by number, then anything else.</summary>
    private static string SortKey(string name)
    {
        var digits = new string(name.Where(char.IsAsciiDigit).ToArray()).PadLeft(6, '0');
        var kind = name.StartsWith("RFC", StringComparison.Ordinal) ? "1" : name.StartsWith("XEP", StringComparison.Ordinal) ? "2" : "3";
        return kind + digits + name;
    }
}
