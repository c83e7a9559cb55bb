namespace Xmpp.Core;

/// <summary>
/// Declares a specification a class implements: the README's compliance table is generated from these
/// (<c>xmppserver compliance</c>), so what the table claims is what the code says of itself.
/// </summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true)]
public sealed class SpecificationAttribute(string name, string version) : Attribute
{
    /// <summary>"RFC 6120" or "XEP-0198".</summary>
    public string Name { get; } = name;

    /// <summary>The version implemented (for RFCs, the sections).</summary>
    public string Version { get; } = version;

    /// <summary>What is implemented, and what is not, in a sentence or two.</summary>
    public string Note { get; init; } = string.Empty;
}
