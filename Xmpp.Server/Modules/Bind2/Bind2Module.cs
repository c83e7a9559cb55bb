using System.Text;
using Xmpp.Core;
using Xmpp.Core.Addressing;
using Xmpp.Core.Sasl;
using Xmpp.Core.Xml;
using Xmpp.Server.Modules.Sasl2;
using Xmpp.Server.Streams;

namespace Xmpp.Server.Modules.Bind2;

/// <summary>
/// Resource binding inside the SASL2 success (XEP-0386): the server picks the resource from the client's tag
/// and its user agent, and switches on what the request names inline (carbons, client state, stream
/// management) before the session is reachable.
/// </summary>
[Specification("XEP-0386", "1.0.0", Note = "Bind2 inside SASL2: a resource from the client's tag, the same for the same user agent; carbons, client state and stream management enabled inline; resumption inline first, binding if it fails.")]
public sealed class Bind2Module : IXmppModule
{
    public const string Namespace = "urn:xmpp:bind:0";

    private Bind2Features _features = null!;

    public string Name => "bind2";

    public void Register(IModuleContext context)
    {
        _features = context.Shared<Bind2Features>();
        context.Shared<Sasl2Extensions>().AddInline(30, Advertisement, BindAsync);
    }

    private Element Advertisement(IC2sContext stream)
    {
        var bind = new Element("bind", Namespace);
        var inline = bind.AddChild("inline", Namespace);
        foreach (var ns in _features.Namespaces.Order(StringComparer.Ordinal))
        {
            inline.AddChild("feature", Namespace).SetAttribute("var", ns);
        }

        return bind;
    }

    private ValueTask BindAsync(Sasl2Success success, CancellationToken ct)
    {
        if (success.Request.Child("bind", Namespace) is not { } bind)
        {
            return ValueTask.CompletedTask;
        }

        // §4: the server chooses the resource: the client's tag and a part that stays the same for one user agent
        // (so a device keeps its resource across logins) or is random.
        var stream = success.Stream;
        var tag = Jid.TryPrepareResource(bind.ChildText("tag", Namespace) ?? string.Empty, out var t) && t.Length <= 32 ? t : "xmpp";
        var suffix = success.UserAgent is { } agent
            ? Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes(stream.User + "\n" + agent)))[..8]
            : Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(4));
        if (stream.Reserve(tag + "." + suffix) is { } error)
        {
            success.Fail(new SaslOutcome(SaslOutcomeKind.Failure, Failure: SaslFailure.TemporaryAuthFailure, Text: error.Text ?? "cannot bind"));
            return ValueTask.CompletedTask;
        }

        var session = stream.CreateSession();
        var bound = new Element("bound", Namespace);
        foreach (var child in bind.Elements())
        {
            if (_features.TryGet(child.Namespace, out var handler) && handler(stream, session, child) is { } answer)
            {
                bound.Add(answer);
            }
        }

        success.Inner.Add(bound);
        success.Identity = session.Jid.ToString();
        success.NewSession = session;
        return ValueTask.CompletedTask;
    }
}
