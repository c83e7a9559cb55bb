using Xmpp.Server.Modules;

namespace Xmpp.Tests.Server;

/// <summary>README's compliance table is the generated one (regenerate with <c>xmppserver compliance</c>).</summary>
public sealed class ComplianceTests
{
    [Test]
    public void Readme_table_is_the_generated_one()
    {
        var dir = TestContext.CurrentContext.TestDirectory;
        var readme = File.ReadAllText(Path.GetFullPath(Path.Combine(dir, "..", "..", "..", "..", "README.md")));
        const string Start = "<!-- compliance:start -->\n", End = "<!-- compliance:end -->";
        var from = readme.IndexOf(Start, StringComparison.Ordinal) + Start.Length;
        var copy = readme[from..readme.IndexOf(End, StringComparison.Ordinal)];
        Assert.That(copy, Is.EqualTo(Compliance.Markdown()), "run: dotnet run --project Xmpp.Server -- compliance, and paste it between the markers");
    }

    [Test]
    public void Every_module_declares_what_it_implements()
    {
        foreach (var (name, factory) in ModuleHost.Available)
        {
            var type = factory().GetType();
            Assert.That(type.GetCustomAttributes(typeof(Xmpp.Core.SpecificationAttribute), false), Is.Not.Empty, name);
            foreach (Xmpp.Core.SpecificationAttribute spec in type.GetCustomAttributes(typeof(Xmpp.Core.SpecificationAttribute), false))
            {
                Assert.That(spec.Note, Is.Not.Empty, $"{name}: {spec.Name} needs a note");
            }
        }
    }
}
