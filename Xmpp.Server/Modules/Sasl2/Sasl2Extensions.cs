using Xmpp.Core.Sasl;
using Xmpp.Core.Xml;
using Xmpp.Server.Sessions;
using Xmpp.Server.Streams;

namespace Xmpp.Server.Modules.Sasl2;

/// <summary>Runs inside a SASL2 success (XEP-0388 §2.6.1): adds to it, writes it, or fails the login.</summary>
public delegate ValueTask Sasl2InlineHandler(Sasl2Success success, CancellationToken cancellationToken);

/// <summary>Mechanisms a module offers in SASL2 only (XEP-0484's tokens).</summary>
public interface ISasl2Mechanisms
{
    /// <summary>The names this stream may use.</summary>
    IEnumerable<string> Offered(IC2sContext stream);

    /// <summary>The mechanism for a request, or the reason it is refused (malformed-request).</summary>
    (ISaslServerMechanism? Mechanism, string? Refusal) Create(IC2sContext stream, string name, Element authenticate);
}

/// <summary>
/// What other modules add to SASL2 (shared through <see cref="IModuleContext.Shared{T}"/>): inline features,
/// advertised in &lt;inline/&gt; and run in their order on success (XEP-0484 tokens, XEP-0198 resumption,
/// XEP-0386 binding), and mechanisms of their own.
/// </summary>
public sealed class Sasl2Extensions
{
    private readonly List<(int Order, Func<IC2sContext, Element?> Advertisement, Sasl2InlineHandler Handler)> _inline = [];
    private readonly List<ISasl2Mechanisms> _mechanisms = [];

    public void AddInline(int order, Func<IC2sContext, Element?> advertisement, Sasl2InlineHandler handler)
    {
        _inline.Add((order, advertisement, handler));
        _inline.Sort((a, b) => a.Order.CompareTo(b.Order));
    }

    public IReadOnlyList<(int Order, Func<IC2sContext, Element?> Advertisement, Sasl2InlineHandler Handler)> Inline => _inline;

    public void AddMechanisms(ISasl2Mechanisms mechanisms) => _mechanisms.Add(mechanisms);

    public IReadOnlyList<ISasl2Mechanisms> Mechanisms => _mechanisms;
}

/// <summary>
/// A SASL2 success in the making: the inline handlers add their answers to <see cref="Inner"/>; one may write it
/// early (resumption must precede the stanzas it sends again) or fail the login; otherwise it is written at the end.
/// </summary>
public sealed class Sasl2Success(IC2sContext stream, Element request, SaslOutcome outcome)
{
    public IC2sContext Stream { get; } = stream;

    /// <summary>The client's &lt;authenticate/&gt;.</summary>
    public Element Request { get; } = request;

    /// <summary>The mechanism that succeeded, and its additional data.</summary>
    public SaslOutcome Outcome { get; } = outcome;

    /// <summary>XEP-0388 §2.4: the client's &lt;user-agent id='…'/&gt;, when it named itself.</summary>
    public string? UserAgent => Request.Child("user-agent", Sasl2Module.Namespace)?.GetAttribute("id") is { Length: > 0 } id ? id : null;

    /// <summary>What goes into the success after the authorization identifier.</summary>
    public List<Element> Inner { get; } = [];

    /// <summary>The authorization identifier: the bare JID, or the full one once a session is bound or resumed.</summary>
    public string Identity { get; set; } = stream.User + "@" + stream.Host;

    /// <summary>A session bound inline, made reachable once the success is out.</summary>
    public ClientSession? NewSession { get; set; }

    /// <summary>The success was written, or the login failed: the handlers after stop.</summary>
    public bool Done { get; private set; }

    /// <summary>Writes the success with what the handlers added, then the stream features (no restart).</summary>
    public void Write()
    {
        var success = new Element("success", Sasl2Module.Namespace);
        if (Outcome.Data is { Length: > 0 } data)
        {
            success.AddChild("additional-data", Sasl2Module.Namespace).AddText(Convert.ToBase64String(data));
        }

        success.AddChild("authorization-identifier", Sasl2Module.Namespace).AddText(Identity);
        foreach (var e in Inner)
        {
            success.Add(e);
        }

        Stream.Send(success);
        Stream.SendFeatures();
        Done = true;
    }

    /// <summary>The login cannot complete after all: a failure, and authentication starts over.</summary>
    public void Fail(SaslOutcome failure)
    {
        Stream.Send(SaslNegotiation.Failure(failure, Sasl2Module.Namespace));
        Stream.ResetAuthentication();
        Done = true;
    }
}
