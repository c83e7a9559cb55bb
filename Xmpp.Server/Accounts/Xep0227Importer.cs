using System.Xml;
using System.Xml.Linq;
using Xmpp.Core.Addressing;
using Xmpp.Server.Config;
using Xmpp.Server.Storage;

namespace Xmpp.Server.Accounts;

/// <summary>What an import did.</summary>
public sealed record ImportSummary(int Users, int Updated, int RosterItems, int OfflineMessages, IReadOnlyList<string> Problems);

/// <summary>
/// Imports accounts from a XEP-0227 (Portable Import/Export Format) file: users with their plaintext
/// passwords (stored as SCRAM keys), roster items and offline messages. Hosts this server does not serve
/// are skipped with a message. Existing accounts get the file's password and roster items.
/// </summary>
public sealed class Xep0227Importer(ServerOptions options, IStorage storage)
{
    private const string Pie = "urn:xmpp:pie:0";
    private static readonly XNamespace RosterNs = "jabber:iq:roster";

    public async Task<ImportSummary> ImportAsync(Stream input, CancellationToken cancellationToken)
    {
        var settings = new XmlReaderSettings { DtdProcessing = DtdProcessing.Prohibit, XmlResolver = null, Async = true };
        using var reader = XmlReader.Create(input, settings);
        var doc = await XDocument.LoadAsync(reader, LoadOptions.None, cancellationToken).ConfigureAwait(false);
        if (doc.Root is null || doc.Root.Name != XName.Get("server-data", Pie))
        {
            throw new FormatException("not a XEP-0227 file: the root must be <server-data xmlns='urn:xmpp:pie:0'>");
        }

        var accounts = new AccountService(options, storage);
        var problems = new List<string>();
        int users = 0, updated = 0, items = 0, offline = 0;
        var work = new List<(string Jid, XElement User)>();
        foreach (var host in doc.Root.Elements(XName.Get("host", Pie)))
        {
            var hostName = (string?)host.Attribute("jid") ?? string.Empty;
            if (!Jid.TryPrepareDomain(hostName, out var domain) || !options.Hosts.Any(h => h.Name == domain))
            {
                problems.Add($"host '{hostName}' is not served by this server: skipped");
                continue;
            }

            foreach (var user in host.Elements(XName.Get("user", Pie)))
            {
                work.Add(((string?)user.Attribute("name") + "@" + domain, user));
            }
        }

        var gate = new object();
        await Parallel.ForEachAsync(work, new ParallelOptions { CancellationToken = cancellationToken, MaxDegreeOfParallelism = Environment.ProcessorCount }, async (entry, ct) =>
        {
            var (jidText, user) = entry;
            var password = (string?)user.Attribute("password");
            if (password is null)
            {
                lock (gate)
                {
                    problems.Add($"{jidText}: no password (only plaintext passwords can be imported): skipped");
                }

                return;
            }

            var result = await accounts.AddAsync(jidText, password, ct).ConfigureAwait(false);
            var isUpdate = false;
            if (result == AccountResult.Exists)
            {
                result = await accounts.SetPasswordAsync(jidText, password, ct).ConfigureAwait(false);
                isUpdate = true;
            }

            if (result != AccountResult.Ok)
            {
                lock (gate)
                {
                    problems.Add($"{jidText}: {result}");
                }

                return;
            }

            var jid = Jid.Parse(jidText);
            var (rosterCount, offlineCount) = await ImportUserDataAsync(jid, user, ct).ConfigureAwait(false);
            lock (gate)
            {
                if (isUpdate)
                {
                    updated++;
                }
                else
                {
                    users++;
                }

                items += rosterCount;
                offline += offlineCount;
            }
        }).ConfigureAwait(false);

        return new ImportSummary(users, updated, items, offline, problems);
    }

    private async Task<(int Roster, int Offline)> ImportUserDataAsync(Jid jid, XElement user, CancellationToken ct)
    {
        var roster = 0;
        long version = 1;
        foreach (var item in user.Elements(RosterNs + "query").Elements(RosterNs + "item"))
        {
            if (!Jid.TryParse((string?)item.Attribute("jid"), out var contact) || contact.Resource is not null || contact.Bare == jid.Bare)
            {
                continue;
            }

            var subscription = (string?)item.Attribute("subscription") switch
            {
                "to" => Subscription.To,
                "from" => Subscription.From,
                "both" => Subscription.Both,
                _ => Subscription.None,
            };
            var groups = item.Elements(RosterNs + "group").Select(g => g.Value).Where(g => g.Length > 0).Distinct(StringComparer.Ordinal).ToList();
            var entry = new RosterItem(contact.ToString(), (string?)item.Attribute("name"), subscription, (string?)item.Attribute("ask") == "subscribe", false, false, groups);
            await storage.Roster.SaveAsync(jid.Domain, jid.Local!, entry, version++, ct).ConfigureAwait(false);
            roster++;
        }

        var offline = 0;
        foreach (var message in user.Elements(XName.Get("offline-messages", Pie)).Elements())
        {
            var xml = message.ToString(SaveOptions.DisableFormatting);
            if (await storage.Offline.StoreAsync(jid.Domain, jid.Local!, xml, int.MaxValue, ct).ConfigureAwait(false))
            {
                offline++;
            }
        }

        return (roster, offline);
    }
}
