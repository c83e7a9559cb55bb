using System.Globalization;
using Xmpp.Core;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;
using Xmpp.Server.Streams;

namespace Xmpp.Server.Modules.StreamManagement;

/// <summary>
/// Stream management (XEP-0198): acknowledgements both ways and resumption of a dropped session within
/// resume-timeout seconds, with what the client had not acknowledged sent again. A session that is not
/// resumed ends then: contacts see it go offline, and every unacknowledged message goes to another
/// resource, to offline storage, or back to its sender, never nowhere. Each managed session's state is its
/// <see cref="ManagedSession"/>, the session's delivery tracker; the stream names none of this.
/// </summary>
[Specification("XEP-0198", "1.6.1", Note = "Acks both ways, resumption within resume-timeout taking over a live or dropped connection, no unavailable presence while resumable; at session end unacknowledged messages go to other resources, offline storage or back to the sender.")]
public sealed class StreamManagementModule : IXmppModule, IKeepsStateAcrossReload
{
    public const string Namespace = "urn:xmpp:sm:3";

    private TimeSpan _resumeTimeout;
    private SessionParking _parking = null!;

    public string Name => "sm";

    internal IModuleContext Context { get; private set; } = null!;

    internal ResumableSessions Resumable { get; private set; } = new();

    /// <summary>Unacknowledged stanzas a session may hold; beyond them it ends.</summary>
    internal int MaxUnacked { get; private set; }

    public void TakeOver(IXmppModule previous)
    {
        if (previous is StreamManagementModule old)
        {
            Resumable = old.Resumable;
        }
    }

    public void Register(IModuleContext context)
    {
        Context = context;
        _resumeTimeout = TimeSpan.FromSeconds(context.Number("resume-timeout", 300, 0, 86_400));
        MaxUnacked = context.Number("max-unacked", 10_000, 1, 1_000_000);

        // Offered until the stream manages itself (after XEP-0386 enabled it inline, it is not offered again).
        context.AddStreamFeature(stream => stream.Session?.Tracker is ManagedSession ? null : new Element("sm", Namespace));
        context.HandleStreamElement(Namespace, OnElementAsync);
        context.Shared<Bind2.Bind2Features>().Add(Namespace, (stream, session, enable) => Enable(stream, enable));
        context.Shared<Sasl2.Sasl2Extensions>().AddInline(20, _ => new Element("sm", Namespace), ResumeInlineAsync);
        context.Metrics.Gauge("xmpp_sessions_resumable", "Sessions that can be resumed (XEP-0198), live or waiting.", () => Resumable.Count);
        context.AtShutdown(() => Resumable.EndAllAsync());
        _parking = new SessionParking(this);
        context.ParksSessions(_parking);
    }

    /// <summary>
    /// Cluster mode: a stanza reached a session just after it was parked for another node; it is sent after the
    /// session, through the account's home (which holds it until the session arrives there).
    /// </summary>
    internal void FollowParked(Core.Addressing.Jid session, Element stanza)
    {
        if (Context.Server.Cluster is not { } cluster)
        {
            return;
        }

        var from = Core.Addressing.Jid.TryParse(stanza.GetAttribute("from"), out var f) ? f : Core.Addressing.Jid.Parse(session.Domain);
        _ = FollowAsync(cluster, stanza, from, session);
    }

    private async Task FollowAsync(Cluster.ICluster cluster, Element stanza, Core.Addressing.Jid from, Core.Addressing.Jid to)
    {
        try
        {
            await cluster.ForwardAsync(stanza, from, to, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            Context.Log.Warn("A {Stanza} for the parked session {Jid} could not follow it: {Reason}", stanza.Name, to, ex.Message);
        }
    }

    private ValueTask OnElementAsync(IC2sContext stream, Element e, CancellationToken ct)
    {
        var managed = stream.Session?.Tracker as ManagedSession;
        switch (e.Name)
        {
            case "enable" when stream.State == C2sState.Established && managed is null:
                stream.Send(Enable(stream, e));
                break;
            case "r" when managed is not null:
                stream.Send(new Element("a", Namespace).SetAttribute("h", managed.HandledCount.ToString(CultureInfo.InvariantCulture)));
                break;
            case "a" when managed is not null:
                Acknowledge(managed, e);
                break;
            case "resume" when stream.State == C2sState.AwaitingBind:
                return ResumeAsync(stream, e, stream.Send, ct);
            default:
                // §3: enabling before authentication or binding, or twice; r/a before enabling; resuming after
                // binding. "The server SHALL enforce this order and return a <failed/> element".
                stream.Send(new Element("failed", Namespace).Add(new Element("unexpected-request", Ns.Stanzas)));
                break;
        }

        return ValueTask.CompletedTask;
    }

    private static void Acknowledge(ManagedSession managed, Element a)
    {
        if (!long.TryParse(a.GetAttribute("h"), NumberStyles.None, CultureInfo.InvariantCulture, out var acked))
        {
            throw new XmppStreamException(StreamErrorCondition.BadFormat, "an <a/> needs a numeric 'h'");
        }

        if (!managed.Acknowledge(acked))
        {
            // §4: the client claims to have handled more than was sent.
            throw new XmppStreamException(StreamErrorCondition.UndefinedCondition, $"acknowledged {acked} stanzas, more than were sent");
        }
    }

    /// <summary>§3: turns stream management on for the stream's session; returns the &lt;enabled/&gt; (alone, or for XEP-0386's &lt;bound/&gt;).</summary>
    private Element Enable(IC2sContext stream, Element enable)
    {
        var session = stream.Session!;
        var resume = enable.GetAttribute("resume") is "true" or "1" && _resumeTimeout > TimeSpan.Zero;
        var timeout = _resumeTimeout;
        if (resume && long.TryParse(enable.GetAttribute("max"), NumberStyles.None, CultureInfo.InvariantCulture, out var max) && max > 0 && max < timeout.TotalSeconds)
        {
            timeout = TimeSpan.FromSeconds(max);
        }

        var id = resume ? Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(18)).Replace('+', '-').Replace('/', '_') : null;
        var managed = new ManagedSession(this, session, id, timeout);
        session.Tracker = managed;
        var enabled = new Element("enabled", Namespace);
        if (id is not null)
        {
            Resumable.Add(id, managed);
            enabled.SetAttribute("id", id).SetAttribute("resume", "true").SetAttribute("max", ((int)timeout.TotalSeconds).ToString(CultureInfo.InvariantCulture));
        }

        stream.Log.Info("Stream management enabled{Resume}", resume ? $", resumable for {(int)timeout.TotalSeconds} s" : string.Empty);
        return enabled;
    }

    /// <summary>
    /// §5: this stream takes over a session of the same account that lost its connection (or is about to). The
    /// answer goes to <paramref name="reply"/>, before the unacknowledged stanzas are sent again. True when resumed.
    /// </summary>
    private async ValueTask ResumeAsync(IC2sContext stream, Element resume, Action<Element> reply, CancellationToken ct)
    {
        var previd = resume.GetAttribute("previd");
        var managed = previd is null ? null : Resumable.Find(previd);
        if (managed is null && previd is not null && Context.Server.Cluster is { } cluster && stream.User is { } user &&
            Core.Addressing.Jid.TryParse(user + "@" + stream.Host, out var bare))
        {
            // Cluster mode: a session parked by a drain that did not arrive with its account's home.
            if (await cluster.TakeParkedAsync(bare, previd, ct).ConfigureAwait(false) is { } snapshot)
            {
                await _parking.RestoreTakenAsync(bare, snapshot, ct).ConfigureAwait(false);
                managed = Resumable.Find(previd);
            }
        }

        Resume(stream, managed, previd, resume, reply);
    }

    private static void Resume(IC2sContext stream, ManagedSession? managed, string? previd, Element resume, Action<Element> reply)
    {
        if (managed is null || managed.Session.Jid.Bare.ToString() != stream.User + "@" + stream.Host ||
            !long.TryParse(resume.GetAttribute("h"), NumberStyles.None, CultureInfo.InvariantCulture, out var h) ||
            !managed.Resume(stream, h, previd!, reply))
        {
            stream.Log.Info("Resumption of {Id} refused: unknown, expired, not this account's, or a wrong count", previd);
            reply(new Element("failed", Namespace).Add(new Element("item-not-found", Ns.Stanzas)));
        }
    }

    /// <summary>XEP-0388 inline resumption: the answer goes inside the SASL2 success, which is written right then.</summary>
    private async ValueTask ResumeInlineAsync(Sasl2.Sasl2Success success, CancellationToken ct)
    {
        if (success.Request.Child("resume", Namespace) is { } resume)
        {
            await ResumeAsync(success.Stream, resume, answer =>
            {
                success.Inner.Add(answer);
                if (answer.Name == "resumed")
                {
                    success.Identity = success.Stream.Session!.Jid.ToString();
                    success.Write();
                }
            }, ct).ConfigureAwait(false);
        }
    }
}
