using System.Net.Security;
using System.Security.Authentication;
using Xmpp.Core;
using Xmpp.Core.Addressing;
using Xmpp.Core.Sasl;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;
using Xmpp.Server.Net;
using Xmpp.Server.Tls;

namespace Xmpp.Server.Streams;

// RFC 6120 §4.7 (the stream header), §4.3.2 (features), §5 (STARTTLS), §6 (SASL).
public sealed partial class C2sStateMachine
{
    private IReadOnlyList<string>? _mechanisms;

    public IReadOnlyList<string> Mechanisms => _mechanisms ??= OfferedMechanisms().ToList();

    private void OpenStream(StreamHeader header)
    {
        var requested = header.To is not null && Jid.TryPrepareDomain(header.To, out var d) ? d : null;
        var host = requested is not null && _ctx.Router.IsLocal(requested) ? requested : null;
        var to = header.From is not null && Jid.TryParse(header.From, out var client) ? client.ToString() : null;
        _connection.SendHeader(new OutgoingHeader(host ?? Host ?? _ctx.Options.Hosts[0].Name, to, NewStreamId()));

        // RFC 6120 §4.8/§4.9.3.10: the stream namespace and the content namespace must be the known ones.
        if (header.LocalName != "stream" || header.Namespace != Ns.Stream)
        {
            throw new XmppStreamException(StreamErrorCondition.InvalidNamespace, "the root element must be stream:stream");
        }

        if (header.DefaultNamespace != Ns.Client)
        {
            throw new XmppStreamException(StreamErrorCondition.InvalidNamespace, "the content namespace must be jabber:client");
        }

        // RFC 6120 §4.7.5: no version means 0.9, which lacks SASL and TLS.
        if (header.Version is null || !header.Version.StartsWith("1.", StringComparison.Ordinal))
        {
            throw new XmppStreamException(StreamErrorCondition.UnsupportedVersion, "version 1.0 is required");
        }

        if (host is null || (Host is not null && host != Host))
        {
            throw new XmppStreamException(StreamErrorCondition.HostUnknown, $"this server does not serve '{header.To}'");
        }

        Host = host;
        State = User is null
            ? (IsSecure || !_ctx.Options.Tls.Required ? C2sState.AwaitingAuthentication : C2sState.AwaitingStartTls)
            : Session is null ? C2sState.AwaitingBind : C2sState.Established;
        SendFeatures();
    }

    public void SendFeatures()
    {
        var features = new Element("features", Ns.Stream);
        if (User is null)
        {
            if (!IsSecure)
            {
                var starttls = features.AddChild("starttls", Ns.Tls);
                if (_ctx.Options.Tls.Required)
                {
                    starttls.AddChild("required", Ns.Tls);
                }
            }

            if (State == C2sState.AwaitingAuthentication)
            {
                var mechanisms = features.AddChild("mechanisms", Ns.Sasl);
                foreach (var name in Mechanisms)
                {
                    mechanisms.AddChild("mechanism", Ns.Sasl).AddText(name);
                }

                foreach (var f in Extensions.Features(C2sFeaturePhase.BeforeAuthentication, this))
                {
                    features.Add(f);
                }

                if (_channelBinding is not null)
                {
                    // XEP-0440: which channel binding types the server supports.
                    var cb = features.AddChild("sasl-channel-binding", Ns.SaslChannelBinding);
                    foreach (var type in _channelBinding.SupportedTypes)
                    {
                        cb.AddChild("channel-binding", Ns.SaslChannelBinding).SetAttribute("type", type);
                    }
                }
            }
        }
        else
        {
            if (Session is null)
            {
                features.AddChild("bind", Ns.Bind);

                // RFC 6121 obsoleted the session iq; old clients still send it, so it is offered as optional.
                features.AddChild("session", Ns.Session).AddChild("optional", Ns.Session);
            }

            foreach (var f in Extensions.Features(C2sFeaturePhase.AfterAuthentication, this))
            {
                features.Add(f);
            }
        }

        _connection.SendNonza(features);
    }

    private IEnumerable<string> OfferedMechanisms()
    {
        var scram = _ctx.Options.Auth.Scram;
        foreach (var hash in scram)
        {
            if (_channelBinding is not null)
            {
                yield return hash.MechanismName() + "-PLUS";
            }
        }

        foreach (var hash in scram)
        {
            yield return hash.MechanismName();
        }

        if (IsSecure && _ctx.Options.Auth.AllowPlain)
        {
            yield return "PLAIN";
        }
    }

    // ---- STARTTLS (RFC 6120 §5) ---------------------------------------------------------------------

    private async ValueTask<StreamStep> StartTlsRequestedAsync(CancellationToken ct)
    {
        if (!_connection.Transport.CanStartTls)
        {
            // §5.4.2.2: TLS is up already (or the transport cannot have it): failure, and the stream ends.
            _connection.SendNonza(new Element("failure", Ns.Tls));
            Close(null);
            return StreamStep.Stop;
        }

        _connection.SendNonza(new Element("proceed", Ns.Tls));
        await StartTlsAsync(Host, ct).ConfigureAwait(false);
        State = C2sState.AwaitingHeader;
        return StreamStep.Restart;
    }

    private async ValueTask StartTlsAsync(string? host, CancellationToken ct)
    {
        HostCertificate? chosen = null;
        await _connection.StartTlsAsServerAsync(
            _ctx.Tls.ServerOptionsCallback(
                sni => _ctx.Certificates.Find(host ?? (Jid.TryPrepareDomain(sni ?? string.Empty, out var name) ? name : null)) ?? _ctx.Certificates.Default,
                _directTls ? [new SslApplicationProtocol("xmpp-client")] : null,
                requestClientCertificate: false,
                c => chosen = c),
            ct).ConfigureAwait(false);
        if (_connection.Transport.Tls is not { } ssl)
        {
            // A transport that secures itself without an SslStream of ours (an in-memory one in tests): no channel binding.
            Log.Info("TLS established");
            return;
        }


        // RFC 9266 defines tls-exporter for TLS 1.3 (and for TLS 1.2 with the extended master secret), so it
        // is offered on TLS 1.3. tls-unique is offered too: it is what Python's ssl module (slixmpp) and pyOpenSSL
        // (aiosasl) compute and what ejabberd answers, and a client that asks for it must not be pushed to
        // the "y" flag, which RFC 5802 §6 makes us refuse once -PLUS was offered (see TlsUnique).
        var exporter = ssl.SslProtocol == SslProtocols.Tls13 ? TlsExporter.ChannelBinding(ssl) : null;
        _channelBinding = new ClientChannelBinding(exporter, TlsUnique.ChannelBinding(ssl), chosen!.EndPointBinding);
        _mechanisms = null;
        Log.Info("TLS established: {Protocol} {Cipher}, channel bindings {Bindings}", ssl.SslProtocol, ssl.NegotiatedCipherSuite, string.Join(' ', _channelBinding.SupportedTypes));
    }

    // ---- SASL (RFC 6120 §6) --------------------------------------------------------------------------

    private async ValueTask<StreamStep> SaslStartAsync(Element auth, CancellationToken ct)
    {
        var mechanism = auth.GetAttribute("mechanism") ?? string.Empty;
        State = C2sState.Authenticating;
        return ApplySasl(await Sasl.StartAsync(mechanism, auth.Text, Mechanisms.Contains(mechanism), null, ct).ConfigureAwait(false));
    }

    private StreamStep ApplySasl(SaslOutcome outcome)
    {
        switch (outcome.Kind)
        {
            case SaslOutcomeKind.Challenge:
                State = C2sState.Authenticating;
                _connection.SendNonza(new Element("challenge", Ns.Sasl).AddText(SaslNegotiation.Encode(outcome.Data)));
                return StreamStep.Continue;
            case SaslOutcomeKind.Success:
                Authenticated(outcome, string.Empty);

                // The new state first, as for bind: the success must not overtake the transition it announces.
                State = C2sState.AwaitingHeader;
                _connection.SendNonza(new Element("success", Ns.Sasl).AddText(outcome.Data is { Length: > 0 } data ? Convert.ToBase64String(data) : string.Empty));
                return StreamStep.Restart;
            default:
                return SaslFailed(outcome);
        }
    }

    private StreamStep SaslFailed(SaslOutcome failure)
    {
        if (State == C2sState.Authenticating)
        {
            State = C2sState.AwaitingAuthentication;
        }

        _connection.SendNonza(SaslNegotiation.Failure(failure, Ns.Sasl));
        return failure.EndsStream ? throw SaslNegotiation.TooManyFailures() : StreamStep.Continue;
    }

    private StreamStep SaslAbort()
    {
        Sasl.Reset();
        if (State == C2sState.Authenticating)
        {
            State = C2sState.AwaitingAuthentication;
        }

        _connection.SendNonza(new Element("failure", Ns.Sasl).Add(new Element("aborted", Ns.Sasl)));
        return StreamStep.Continue;
    }

    public void Authenticated(SaslOutcome success, string profile)
    {
        var mech = success.Mechanism!;
        User = mech.Username;
        var binding = (mech as ScramServerMechanism)?.ChannelBindingType is { } type ? " (" + type + ")" : string.Empty;
        Log.Info("Authenticated {User} with {Mechanism}{Binding}{Profile}", User + "@" + Host, mech.Name, binding, profile);
        if (profile.Length > 0)
        {
            // No restart (XEP-0388): the stream goes straight on to binding.
            State = C2sState.AwaitingBind;
        }
    }

    /// <summary>The mechanisms of RFC 6120 and RFC 7677 by name, on this stream's host and channel binding.</summary>
    internal ISaslServerMechanism CreateMechanism(string name)
    {
        var host = Host!;
        ValueTask<ScramCredential?> Lookup(string user, ScramHash hash, CancellationToken ct) =>
            new(_ctx.Storage.Users.GetCredentialAsync(host, user, hash, ct));
        if (name == "PLAIN")
        {
            return new PlainServerMechanism(Lookup, _ctx.Decoys, UpgradeAsync);
        }

        var plus = name.EndsWith("-PLUS", StringComparison.Ordinal);
        var baseName = plus ? name[..^5] : name;
        var hash = ScramHashes.All.First(h => h.MechanismName() == baseName);

        // XEP-0474: the same mechanisms are offered in every SASL profile, so one list serves them all.
        var advertised = ScramServerMechanism.DowngradeProtection(Mechanisms, _channelBinding?.SupportedTypes);
        return new ScramServerMechanism(hash, plus, Lookup, _channelBinding, decoys: _ctx.Decoys, advertised: advertised);
    }

    /// <summary>
    /// An account with SCRAM-SHA-1 keys only (imported from Prosody or ejabberd) logged in with PLAIN: the
    /// password is known for this moment, so the keys of every hash are stored, and SCRAM-SHA-256 works from now on.
    /// </summary>
    private async ValueTask UpgradeAsync(string user, string preparedPassword, CancellationToken ct)
    {
        var credentials = await ScramCredential.CreateAllAsync(preparedPassword, _ctx.Options.Auth.Iterations).ConfigureAwait(false);
        if (await _ctx.Storage.Users.SetCredentialsAsync(Host!, user, credentials, ct).ConfigureAwait(false))
        {
            Log.Info("Stored SCRAM-SHA-256 and SHA-512 keys for {User}@{Host}, which had SHA-1 keys only", user, Host);
        }
    }
}
