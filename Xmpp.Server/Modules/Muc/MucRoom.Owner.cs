using Xmpp.Core;
using Xmpp.Core.Addressing;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;
using Xmpp.Server.Routing;

namespace Xmpp.Server.Modules.Muc;

/// <summary>
/// XEP-0045 §10 owner use cases: §10.1 creating (the locked room), §10.2 configuring (with the owner and admin
/// lists of the form, §10.5 and §10.8), §10.9 destroying the room.
/// </summary>
internal sealed partial class MucRoom
{
    private async ValueTask<Element?> OwnerAsync(StanzaContext ctx, Element query, bool set, List<Element> outbox, CancellationToken ct)
    {
        if (AffiliationOf(ctx.From) != Affiliation.Owner)
        {
            throw new StanzaErrorException(StanzaErrorCondition.Forbidden, "only owners may configure the room");
        }

        if (!set)
        {
            return new Element("query", MucOwner).Add(Config.ToForm(AffiliatedJids(Affiliation.Owner), AffiliatedJids(Affiliation.Admin), Service.Settings.MaxHistory));
        }

        if (query.Child("destroy", MucOwner) is { } destroy)
        {
            await DestroyAsync(destroy, outbox, ct).ConfigureAwait(false);
            return null;
        }

        var form = query.Child("x", DataForm.Namespace) ?? throw new StanzaErrorException(StanzaErrorCondition.BadRequest, "a configuration form or destroy is needed");
        if (form.GetAttribute("type") == "cancel")
        {
            if (Locked)
            {
                // §10.1.3: the owner gave up creating the room.
                await DestroyAsync(null, outbox, ct).ConfigureAwait(false);
            }

            return null;
        }

        if (form.GetAttribute("type") != "submit")
        {
            throw new StanzaErrorException(StanzaErrorCondition.BadRequest, "the form must be submitted or cancelled");
        }

        await ConfigureAsync(ctx.From, DataForm.Values(form)!, outbox, ct).ConfigureAwait(false);
        return null;
    }

    /// <summary>§10.2: the submitted configuration form takes effect, and the occupants feel its changes.</summary>
    private async ValueTask ConfigureAsync(Jid owner, Dictionary<string, List<string>> values, List<Element> outbox, CancellationToken ct)
    {
        var (config, owners, admins) = Config.Apply(values, Service.Settings.MaxHistory);
        if (owners is not null && owners.Count == 0)
        {
            // §10.2, §10.6: the last owner may not give up ownership; the service returns conflict.
            throw new StanzaErrorException(StanzaErrorCondition.Conflict, "a room keeps at least one owner");
        }

        var before = Config;
        var wasLocked = Locked;
        Config = config;
        Locked = false;
        ReplaceList(Affiliation.Owner, owners, outbox);
        ReplaceList(Affiliation.Admin, admins, outbox);
        TrimHistory();
        if (Config.MembersOnly && !before.MembersOnly)
        {
            RemoveNonMembers(outbox);
        }

        if (Config.Moderated != before.Moderated)
        {
            ApplyModeration(outbox);
        }

        if (!wasLocked)
        {
            AnnounceConfigurationChange(before, outbox);
        }

        Service.Log.Info("Room {Room} configured by {Owner}: persistent={Persistent} public={Public} members-only={MembersOnly} moderated={Moderated} password={Password} whois={Whois}",
            Jid, owner.Bare, Config.Persistent, Config.Public, Config.MembersOnly, Config.Moderated, Config.Password is not null, Config.NonAnonymous ? "anyone" : "moderators");
        await KeepOrForgetAsync(before, ct).ConfigureAwait(false);
    }

    /// <summary>§10.2: non-members leave a room that becomes members-only, with status 322.</summary>
    private void RemoveNonMembers(List<Element> outbox)
    {
        foreach (var o in _byNick.Values.Where(o => AffiliationOf(o.Bare) < Affiliation.Member).ToList())
        {
            Remove(o, null, outbox, [322], item: null);
        }
    }

    /// <summary>A room that becomes moderated makes visitors of its unaffiliated occupants; one that no longer is gives them voice (§5.1).</summary>
    private void ApplyModeration(List<Element> outbox)
    {
        foreach (var o in _byNick.Values.Where(o => AffiliationOf(o.Bare) == Affiliation.None && o.Role != Role.Moderator).ToList())
        {
            var role = Config.Moderated ? Role.Visitor : Role.Participant;
            if (o.Role != role)
            {
                o.Role = role;
                BroadcastPresence(o, null, [], outbox);
            }
        }
    }

    /// <summary>§10.2.1: occupants hear of the change (172/173 when real JIDs become visible or hidden, 104 otherwise).</summary>
    private void AnnounceConfigurationChange(RoomConfig before, List<Element> outbox)
    {
        var codes = new List<int> { 104 };
        if (Config.NonAnonymous != before.NonAnonymous)
        {
            codes.Add(Config.NonAnonymous ? 172 : 173);
        }

        if (Config.Archived != before.Archived)
        {
            codes.Add(Config.Archived ? 170 : 171);
        }

        BroadcastStatus(codes, outbox);
    }

    /// <summary>A persistent room is saved; one that stops being persistent is forgotten, with its archive, and ends if empty.</summary>
    private async ValueTask KeepOrForgetAsync(RoomConfig before, CancellationToken ct)
    {
        if (Config.Persistent)
        {
            await Service.SaveAsync(this, ct).ConfigureAwait(false);
        }
        else if (before.Persistent)
        {
            // No longer kept: neither is its archive (a later room of the same name must not inherit it).
            await Service.UnsaveAsync(this, ct).ConfigureAwait(false);
            await Service.Storage.RoomArchive.ClearAsync(Jid.Domain, Jid.Local!, ct).ConfigureAwait(false);
            if (_byNick.Count == 0)
            {
                await EndAsync(ct).ConfigureAwait(false);
            }
        }
    }

    private IEnumerable<string> AffiliatedJids(Affiliation affiliation) =>
        _affiliations.Where(p => p.Value.Affiliation == affiliation).Select(p => p.Key.ToString()).Order(StringComparer.Ordinal);

    /// <summary>The owner or admin list from the configuration form: those listed gain it, those left out lose it.</summary>
    private void ReplaceList(Affiliation affiliation, List<Jid>? jids, List<Element> outbox)
    {
        if (jids is null)
        {
            return;
        }

        foreach (var jid in _affiliations.Where(p => p.Value.Affiliation == affiliation && !jids.Contains(p.Key)).Select(p => p.Key).ToList())
        {
            SetAffiliation(jid, Affiliation.None, null, null, null, outbox);
        }

        foreach (var jid in jids.Where(j => AffiliationOf(j) != affiliation))
        {
            SetAffiliation(jid, affiliation, null, null, null, outbox);
        }
    }

    /// <summary>§10.9: everyone leaves with the destroy element (an alternative venue and a reason), and the room is gone.</summary>
    public async ValueTask DestroyAsync(Element? destroy, List<Element> outbox, CancellationToken ct)
    {
        foreach (var o in _byNick.Values)
        {
            foreach (var (jid, presence) in o.Sessions)
            {
                var p = new Element("presence", Ns.Client).SetAttribute("from", Jid.WithResource(o.Nick).ToString())
                    .SetAttribute("to", jid.ToString()).SetAttribute("type", "unavailable");
                var x = p.AddChild("x", MucUser);
                x.AddChild("item").SetAttribute("affiliation", "none").SetAttribute("role", "none");
                var d = x.AddChild("destroy");
                if (destroy?.GetAttribute("jid") is { } alternative && Jid.TryParse(alternative, out var venue))
                {
                    d.SetAttribute("jid", venue.ToString());
                }

                if (destroy?.ChildText("reason", MucOwner) is { Length: > 0 } reason)
                {
                    d.AddChild("reason").AddText(reason);
                }

                if (destroy?.ChildText("password", MucOwner) is { Length: > 0 } venuePassword)
                {
                    // §10.9: the alternate venue's password, as the owner gave it, goes to each occupant.
                    d.AddChild("password").AddText(venuePassword);
                }

                x.AddChild("status").SetAttribute("code", "110");
                outbox.Add(p);
            }
        }

        _byNick.Clear();
        _bySession.Clear();
        await Service.UnsaveAsync(this, ct).ConfigureAwait(false);
        await Service.Storage.RoomArchive.ClearAsync(Jid.Domain, Jid.Local!, ct).ConfigureAwait(false);
        await EndAsync(ct).ConfigureAwait(false);
        Service.Log.Info("Room {Room} destroyed", Jid);
    }
}
