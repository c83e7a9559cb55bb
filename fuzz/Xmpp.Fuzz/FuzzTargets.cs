namespace Xmpp.Fuzz;

/// <summary>
/// The fuzz targets, by name. Each takes one input and returns normally when the code under test behaved
/// (including rejecting the input with the error the RFC names); anything else (an unexpected exception,
/// a broken invariant, a hang, an error logged by the server) escapes as an exception, which afl-fuzz
/// records as a crash. The regression test in Xmpp.Tests replays every committed input through these.
/// </summary>
public static class FuzzTargets
{
    private static readonly Dictionary<string, Action<byte[]>> Targets = new(StringComparer.Ordinal)
    {
        ["xml"] = XmlTarget.Run,
        ["jid"] = JidTarget.Run,
        ["sasl"] = SaslTarget.Run,
        ["stream"] = StreamTarget.Run,
    };

    public static IReadOnlyCollection<string> Names => Targets.Keys;

    public static Action<byte[]> Get(string name) => Targets[name];
}

/// <summary>An invariant of the code under test does not hold for this input.</summary>
public sealed class FuzzFindingException(string message) : Exception(message);
