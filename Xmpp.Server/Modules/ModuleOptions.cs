using System.Globalization;
using Xmpp.Server.Config;

namespace Xmpp.Server.Modules;

/// <summary>Typed reading of a module's attributes, with one wording for every module's errors.</summary>
public static class ModuleOptions
{
    /// <summary>A whole number from <paramref name="min"/> to <paramref name="max"/>, or <paramref name="fallback"/> when not given.</summary>
    public static int Number(this IModuleContext context, string name, int fallback, int min = 0, int max = int.MaxValue)
    {
        var text = context.Option(name);
        if (text is null)
        {
            return fallback;
        }

        return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value >= min && value <= max
            ? value
            : throw new ConfigException($"module {context.ModuleName}: {name} must be a whole number {Range(min, max)}, not '{text}'");
    }

    /// <summary>"true" or "false", or <paramref name="fallback"/> when not given.</summary>
    public static bool Flag(this IModuleContext context, string name, bool fallback) => context.Option(name) switch
    {
        null => fallback,
        "true" => true,
        "false" => false,
        var other => throw new ConfigException($"module {context.ModuleName}: {name} must be true or false, not '{other}'"),
    };

    private static string Range(int min, int max) => max == int.MaxValue ? $"from {min}" : $"from {min} to {max}";
}
