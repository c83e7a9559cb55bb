using Xmpp.Core;
using Xmpp.Core.Sasl;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;
using Xmpp.Server.Streams;

namespace Xmpp.Server.Modules.Sasl2;

/// <summary>
/// Extensible SASL profile (XEP-0388): the same mechanisms as RFC 6120's SASL, and on success no stream restart,
/// with what other modules do inline in the same round trip (XEP-0484 tokens, XEP-0198 resumption, XEP-0386
/// binding), then the stream features. The exchange itself (checks, steps, failures and their accounting) is
/// the stream's <see cref="SaslNegotiation"/>, shared with RFC 6120 SASL; this profile only wraps it.
/// </summary>
[Specification("XEP-0388", "1.0.4", Note = "SASL2 with every SCRAM mechanism and PLAIN, success without a stream restart followed by the stream features, failures in the SASL2 form; no upgrade or second-factor tasks (continue).")]
public sealed class Sasl2Module : IXmppModule
{
    public const string Namespace = "urn:xmpp:sasl:2";
    private const string Request = "sasl2-request";

    private Sasl2Extensions _extensions = null!;

    public string Name => "sasl2";

    public void Register(IModuleContext context)
    {
        _extensions = context.Shared<Sasl2Extensions>();
        context.AddPreAuthStreamFeature(Feature);
        context.HandleStreamElement(Namespace, OnElementAsync);
    }

    /// <summary>§2.1: the offer: the stream's mechanisms, and what may be done inline.</summary>
    private Element Feature(IC2sContext stream)
    {
        var authentication = new Element("authentication", Namespace);
        foreach (var name in stream.Mechanisms)
        {
            authentication.AddChild("mechanism", Namespace).AddText(name);
        }

        var inline = authentication.AddChild("inline", Namespace);
        foreach (var (_, advertisement, _) in _extensions.Inline)
        {
            if (advertisement(stream) is { } feature)
            {
                inline.Add(feature);
            }
        }

        return authentication;
    }

    private async ValueTask OnElementAsync(IC2sContext stream, Element e, CancellationToken ct)
    {
        if (stream.User is not null)
        {
            throw new XmppStreamException(StreamErrorCondition.PolicyViolation, "the stream is already authenticated");
        }

        var outcome = e.Name switch
        {
            "authenticate" => await AuthenticateAsync(stream, e, ct).ConfigureAwait(false),
            "response" when stream.Items.Has(Request) && stream.Sasl.Current is not null => await stream.Sasl.StepAsync(e.Text, ct).ConfigureAwait(false),
            "abort" => await stream.Sasl.AbortAsync(ct).ConfigureAwait(false),
            _ => await stream.Sasl.FailAsync(SaslFailure.MalformedRequest, $"unexpected <{e.Name}/>", stream.Sasl.Current?.Name, ct).ConfigureAwait(false),
        };
        await ApplyAsync(stream, outcome, ct).ConfigureAwait(false);
    }

    private async ValueTask<SaslOutcome> AuthenticateAsync(IC2sContext stream, Element authenticate, CancellationToken ct)
    {
        var mechanism = authenticate.GetAttribute("mechanism") ?? string.Empty;
        stream.Items.Set(Request, authenticate);
        var initial = authenticate.ChildText("initial-response", Namespace) ?? string.Empty;
        foreach (var extra in _extensions.Mechanisms)
        {
            if (extra.Offered(stream).Contains(mechanism))
            {
                var (created, refusal) = extra.Create(stream, mechanism, authenticate);
                return created is null
                    ? await stream.Sasl.FailAsync(SaslFailure.MalformedRequest, refusal ?? "refused", mechanism, ct).ConfigureAwait(false)
                    : await stream.Sasl.StartAsync(mechanism, initial, offered: true, () => created, ct).ConfigureAwait(false);
            }
        }

        return await stream.Sasl.StartAsync(mechanism, initial, stream.Mechanisms.Contains(mechanism), null, ct).ConfigureAwait(false);
    }

    private async ValueTask ApplyAsync(IC2sContext stream, SaslOutcome outcome, CancellationToken ct)
    {
        switch (outcome.Kind)
        {
            case SaslOutcomeKind.Challenge:
                stream.Send(new Element("challenge", Namespace).AddText(SaslNegotiation.Encode(outcome.Data)));
                return;
            case SaslOutcomeKind.Failure:
                // §2.6.2: the RFC 6120 condition, in its own namespace, inside the SASL2 failure.
                stream.Items.Set(Request, null);
                stream.Send(SaslNegotiation.Failure(outcome, Namespace));
                if (outcome.EndsStream)
                {
                    throw SaslNegotiation.TooManyFailures();
                }

                return;
        }

        var request = stream.Items.Get<Element>(Request)!;
        stream.Items.Set(Request, null);
        stream.Authenticated(outcome, " (SASL2)");
        var success = new Sasl2Success(stream, request, outcome);
        foreach (var (_, _, handler) in _extensions.Inline)
        {
            await handler(success, ct).ConfigureAwait(false);
            if (success.Done)
            {
                break;
            }
        }

        if (!success.Done)
        {
            success.Write();
        }

        if (success.NewSession is not null && stream.Session == success.NewSession)
        {
            // The session becomes reachable only after the success is out: nothing (a carbon, a message to this
            // resource) may reach the client before it.
            await stream.PublishAsync(request, " (Bind2)", ct).ConfigureAwait(false);
        }
    }
}
