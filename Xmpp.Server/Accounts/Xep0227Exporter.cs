using System.Globalization;
using System.Text;
using System.Xml;
using System.Xml.Linq;
using Xmpp.Core.Sasl;
using Xmpp.Server.Cli;
using Xmpp.Server.Config;
using Xmpp.Server.Storage;
using static Xmpp.Server.Accounts.Xep0227;

namespace Xmpp.Server.Accounts;

/// <summary>What an export wrote.</summary>
public sealed record ExportSummary(int Users, int RosterItems, int OfflineMessages, int ArchivedMessages, int Files);

/// <summary>
/// Writes accounts in the XEP-0227 format, one user at a time (streaming, so a large archive is never
/// held in memory): SCRAM credentials of every hash (the password itself is never known to the server),
/// the roster with its version and pending subscription requests (as Prosody writes them, presence
/// stanzas next to the roster), vCard, private XML, offline messages, PEP nodes (configuration as a
/// submitted node_config form) with their items, and the message archive (as Prosody writes it).
/// Either one file for everything, or one file per account named user@host.xml, the layout Prosody's
/// mod_storage_xep0227 and prosody-migrator read.
/// </summary>
public sealed class Xep0227Exporter(ServerOptions options, IStorage storage)
{
    private const int ArchivePage = 500;

    /// <summary>
    /// COMPAT: write what ejabberd 23's import_piefxis reads: SCRAM-SHA-1 keys only (ejabberd keeps one hash,
    /// SHA-1 by default), each value base64-encoded twice, as its own export writes them (standard keys make
    /// its SCRAM code crash at the next login).
    /// </summary>
    public bool ForEjabberd { get; init; }

    /// <summary>Where to report the accounts written, of how many ("exporting"); none by default.</summary>
    public IProgress<WorkProgress>? Progress { get; init; }

    public async Task<ExportSummary> ExportAsync(string path, string? onlyHost, bool perUser, CancellationToken cancellationToken)
    {
        var hosts = options.Hosts.Select(h => h.Name).Where(h => onlyHost is null || h == onlyHost).ToList();
        if (hosts.Count == 0)
        {
            throw new ConfigException($"host '{onlyHost}' is not served by this server");
        }

        // The accounts of every host first: how many there are to write is known from the start.
        var accounts = new List<(string Host, IReadOnlyList<(string Host, string Username)> Users)>();
        foreach (var host in hosts)
        {
            accounts.Add((host, await storage.Users.ListAsync(host, cancellationToken).ConfigureAwait(false)));
        }

        var total = accounts.Sum(a => (long)a.Users.Count);
        int users = 0, roster = 0, offline = 0, archived = 0, files = 0;
        var settings = new XmlWriterSettings { Async = true, Encoding = new UTF8Encoding(false), Indent = false, CloseOutput = true };
        XmlWriter? single = null;
        if (!perUser)
        {
            if (Path.GetDirectoryName(Path.GetFullPath(path)) is { Length: > 0 } parent)
            {
                Hosting.PrivateFiles.EnsureDirectory(parent);
            }

            single = XmlWriter.Create(Hosting.PrivateFiles.CreateFile(path), settings);
            await single.WriteStartDocumentAsync().ConfigureAwait(false);
            await single.WriteStartElementAsync(null, "server-data", Pie).ConfigureAwait(false);
            files = 1;
        }
        else
        {
            Hosting.PrivateFiles.EnsureDirectory(path);
        }

        try
        {
            foreach (var (host, hostUsers) in accounts)
            {
                if (single is not null)
                {
                    await single.WriteStartElementAsync(null, "host", Pie).ConfigureAwait(false);
                    await single.WriteAttributeStringAsync(null, "jid", null, host).ConfigureAwait(false);
                }

                foreach (var (_, username) in hostUsers)
                {
                    var (user, counts) = await UserAsync(host, username, cancellationToken).ConfigureAwait(false);
                    users++;
                    roster += counts.Roster;
                    offline += counts.Offline;
                    archived += counts.Archived;
                    if (single is not null)
                    {
                        user.WriteTo(single);
                        Progress?.Report(new WorkProgress("exporting", "accounts", users, total));
                        continue;
                    }

                    // Prosody's layout: DATA/user@host.xml, each a whole server-data document.
                    var doc = new XElement(PieX + "server-data", new XElement(PieX + "host", new XAttribute("jid", host), user));
                    await using var file = Hosting.PrivateFiles.CreateFile(Path.Combine(path, username + "@" + host + ".xml"));
                    await using var w = XmlWriter.Create(file, settings);
                    await w.WriteStartDocumentAsync().ConfigureAwait(false);
                    doc.WriteTo(w);
                    await w.FlushAsync().ConfigureAwait(false);
                    files++;
                    Progress?.Report(new WorkProgress("exporting", "accounts", users, total));
                }

                if (single is not null)
                {
                    await single.WriteEndElementAsync().ConfigureAwait(false);
                }
            }

            if (single is not null)
            {
                await single.WriteEndElementAsync().ConfigureAwait(false);
                await single.WriteEndDocumentAsync().ConfigureAwait(false);
                await single.FlushAsync().ConfigureAwait(false);
            }
        }
        finally
        {
            single?.Dispose();
        }

        return new ExportSummary(users, roster, offline, archived, files);
    }

    private async Task<(XElement User, (int Roster, int Offline, int Archived) Counts)> UserAsync(string host, string username, CancellationToken ct)
    {
        var user = new XElement(PieX + "user", new XAttribute("name", username));
        await AddCredentialsAsync(user, host, username, ct).ConfigureAwait(false);
        var rosterCount = await AddRosterAsync(user, host, username, ct).ConfigureAwait(false);
        if (await storage.Documents.GetAsync(host, username, Modules.VCard.VCardModule.Kind, string.Empty, ct).ConfigureAwait(false) is { } vcard)
        {
            user.Add(XElement.Parse(vcard));
        }

        var privateXml = await storage.Documents.ListAsync(host, username, Modules.PrivateStorage.PrivateStorageModule.Kind, ct).ConfigureAwait(false);
        if (privateXml.Count > 0)
        {
            user.Add(new XElement(XName.Get("query", PrivateNs), privateXml.Values.Select(XElement.Parse)));
        }

        var messages = await storage.Offline.LoadAsync(host, username, ct).ConfigureAwait(false);
        if (messages.Count > 0)
        {
            user.Add(new XElement(PieX + "offline-messages", messages.Select(m => XElement.Parse(m.Xml))));
        }

        await AddPepNodesAsync(user, host, username, ct).ConfigureAwait(false);
        var archived = await AddArchiveAsync(user, host, username, ct).ConfigureAwait(false);
        return (user, (rosterCount, messages.Count, archived));
    }

    /// <summary>The account's SCRAM credentials, one scram-credentials element per hash (XEP-0227 §4).</summary>
    private async Task AddCredentialsAsync(XElement user, string host, string username, CancellationToken ct)
    {
        foreach (var hash in ForEjabberd ? [ScramHash.Sha1] : ScramHashes.All)
        {
            if (await storage.Users.GetCredentialAsync(host, username, hash, ct).ConfigureAwait(false) is { } c)
            {
                // XEP-0227 §4 (1.1): every value base64, the iteration count in decimal.
                string B64(byte[] value) => ForEjabberd
                    ? Convert.ToBase64String(Encoding.ASCII.GetBytes(Convert.ToBase64String(value)))
                    : Convert.ToBase64String(value);
                user.Add(new XElement(
                    ScramX + "scram-credentials",
                    new XAttribute("mechanism", hash.MechanismName()),
                    new XElement(ScramX + "iter-count", c.Iterations.ToString(CultureInfo.InvariantCulture)),
                    new XElement(ScramX + "salt", B64(c.Salt)),
                    new XElement(ScramX + "server-key", B64(c.ServerKey)),
                    new XElement(ScramX + "stored-key", B64(c.StoredKey))));
            }
        }
    }

    /// <summary>The roster with its version, then the pending subscription requests as presence stanzas (as Prosody writes them).</summary>
    private async Task<int> AddRosterAsync(XElement user, string host, string username, CancellationToken ct)
    {
        XNamespace rosterNs = RosterNs;
        var stored = await storage.Roster.LoadAsync(host, username, ct).ConfigureAwait(false);
        var query = new XElement(rosterNs + "query", new XAttribute("version", stored.Version.ToString(CultureInfo.InvariantCulture)));
        var rosterCount = 0;
        foreach (var item in stored.Items.Where(i => i.InRoster))
        {
            var e = new XElement(rosterNs + "item", new XAttribute("jid", item.Jid), new XAttribute("subscription", item.Subscription.Name()));
            if (item.Name is not null)
            {
                e.Add(new XAttribute("name", item.Name));
            }

            if (item.PendingOut)
            {
                e.Add(new XAttribute("ask", "subscribe"));
            }

            e.Add(item.Groups.Select(g => new XElement(rosterNs + "group", g)));
            query.Add(e);
            rosterCount++;
        }

        user.Add(query);
        foreach (var pending in stored.Items.Where(i => i.PendingIn))
        {
            user.Add(new XElement(XName.Get("presence", Client), new XAttribute("from", pending.Jid), new XAttribute("type", "subscribe")));
        }

        return rosterCount;
    }

    /// <summary>PEP nodes: each node's configuration as a submitted node_config form, then the items of every node.</summary>
    private async Task AddPepNodesAsync(XElement user, string host, string username, CancellationToken ct)
    {
        var nodes = await storage.PubSub.ListNodesAsync(host, username, ct).ConfigureAwait(false);
        if (nodes.Count > 0)
        {
            XNamespace owner = PubSubOwner, pubsub = PubSub;
            var ownerEl = new XElement(owner + "pubsub");
            var itemsEl = new XElement(pubsub + "pubsub");
            foreach (var node in nodes)
            {
                var form = Modules.Pep.NodeConfig.Parse(node.Config, int.MaxValue).ToForm().SetAttribute("type", "submit");
                ownerEl.Add(new XElement(owner + "configure", new XAttribute("node", node.Node), XElement.Parse(form.ToString())));
                var items = await storage.PubSub.GetItemsAsync(host, username, node.Node, null, null, ct).ConfigureAwait(false);
                if (items.Count > 0)
                {
                    itemsEl.Add(new XElement(pubsub + "items", new XAttribute("node", node.Node), items.Select(i => new XElement(pubsub + "item", new XAttribute("id", i.Id), XElement.Parse(i.Xml)))));
                }
            }

            user.Add(ownerEl, itemsEl);
        }
    }

    /// <summary>The message archive, read a page at a time, each message as a forwarded MAM result (as Prosody writes it).</summary>
    private async Task<int> AddArchiveAsync(XElement user, string host, string username, CancellationToken ct)
    {
        var archived = 0;
        XElement? archive = null;
        string? after = null;
        while (true)
        {
            var page = await storage.Archive.QueryAsync(host, username, new ArchiveQuery { AfterId = after, Max = ArchivePage }, ct).ConfigureAwait(false);
            if (page is null || page.Messages.Count == 0)
            {
                break;
            }

            archive ??= new XElement(XName.Get("archive", Mam));
            foreach (var m in page.Messages)
            {
                var stanza = XElement.Parse(m.Xml);
                archive.Add(new XElement(
                    XName.Get("result", MamNs),
                    new XAttribute("id", m.Id),
                    new XElement(
                        XName.Get("forwarded", Forward),
                        new XElement(XName.Get("delay", Delay), new XAttribute("stamp", m.At.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture))),
                        stanza)));
                archived++;
            }

            if (page.Complete)
            {
                break;
            }

            after = page.Messages[^1].Id;
        }

        if (archive is not null)
        {
            user.Add(archive);
        }

        return archived;
    }
}
