using System.Globalization;
using System.Runtime.CompilerServices;
using System.Xml;
using System.Xml.Linq;
using Xmpp.Core.Addressing;
using Xmpp.Core.Sasl;
using Xmpp.Server.Cli;
using Xmpp.Server.Config;
using Xmpp.Server.Storage;
using static Xmpp.Server.Accounts.Xep0227;

namespace Xmpp.Server.Accounts;

/// <summary>What an import did.</summary>
public sealed record ImportSummary(int Users, int Updated, int RosterItems, int OfflineMessages, IReadOnlyList<string> Problems)
{
    public int VCards { get; init; }

    public int PrivateDocuments { get; init; }

    public int PepItems { get; init; }

    public int ArchivedMessages { get; init; }

    /// <summary>Accounts imported with SCRAM-SHA-1 keys only (no password, no stronger keys).</summary>
    public int Sha1Only { get; init; }
}

/// <summary>
/// Imports accounts from XEP-0227 files: one file, ejabberd's export_piefxis folder (a main file that
/// XIncludes one file per host) or Prosody's (one user@host.xml per account). Users are read one at a
/// time, never the whole file at once. Credentials: SCRAM keys of each hash as written (SHA-1 from
/// Prosody and ejabberd), or a plaintext password, turned into keys of every hash. Existing accounts are
/// updated; hosts this server does not serve are skipped and reported.
/// </summary>
public sealed class Xep0227Importer(ServerOptions options, IStorage storage)
{
    private const int MaxIncludeDepth = 4;
    private static readonly XNamespace RosterX = RosterNs;

    /// <summary>
    /// Where to report how far the import has got, none by default: the folder's files looked through for
    /// includes ("scanning the folder", of how many), then the accounts read ("importing", with the bytes of the
    /// input read so far and in all, as the number of accounts is not known before the end).
    /// </summary>
    public IProgress<WorkProgress>? Progress { get; init; }

    /// <summary>Imports a file, or every .xml file of a folder (Prosody's per-user layout, or ejabberd's export folder).</summary>
    public async Task<ImportSummary> ImportAsync(string path, CancellationToken cancellationToken)
    {
        var bytes = new InputBytes();
        if (!Directory.Exists(path))
        {
            return await RunAsync(ReadFileAsync(path, 0, bytes, cancellationToken), bytes, cancellationToken).ConfigureAwait(false);
        }

        // ejabberd's folder has a main file including the per-host files: read the main files only.
        var files = Directory.GetFiles(path, "*.xml").Order(StringComparer.Ordinal).ToList();
        var included = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < files.Count; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            foreach (var href in IncludesOf(files[i], bytes))
            {
                included.Add(Path.GetFullPath(Path.Combine(path, href)));
            }

            Progress?.Report(new WorkProgress("scanning the folder", "files", i + 1, files.Count));
        }

        return await RunAsync(ReadFilesAsync(files.Where(f => !included.Contains(Path.GetFullPath(f))), bytes, cancellationToken), bytes, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Imports one document from a stream (XIncludes are refused: there is no folder to resolve them in).</summary>
    public Task<ImportSummary> ImportAsync(Stream input, CancellationToken cancellationToken)
    {
        var bytes = new InputBytes();
        bytes.Opened(input, null);
        return RunAsync(ReadAsync(input, null, 0, bytes, cancellationToken), bytes, cancellationToken);
    }

    private async IAsyncEnumerable<(string Host, XElement User)> ReadFilesAsync(IEnumerable<string> files, InputBytes bytes, [EnumeratorCancellation] CancellationToken ct)
    {
        foreach (var f in files)
        {
            await foreach (var u in ReadFileAsync(f, 0, bytes, ct).ConfigureAwait(false))
            {
                yield return u;
            }
        }
    }

    private async IAsyncEnumerable<(string Host, XElement User)> ReadFileAsync(string file, int depth, InputBytes bytes, [EnumeratorCancellation] CancellationToken ct)
    {
        await using var stream = File.OpenRead(file);
        bytes.Opened(stream, file);
        await foreach (var u in ReadAsync(stream, Path.GetDirectoryName(Path.GetFullPath(file)), depth, bytes, ct).ConfigureAwait(false))
        {
            yield return u;
        }

        bytes.Closed(stream);
    }

    private static XmlReader Reader(Stream input) =>
        XmlReader.Create(input, new XmlReaderSettings { DtdProcessing = DtdProcessing.Prohibit, XmlResolver = null, Async = true, IgnoreWhitespace = true });

    private static List<string> IncludesOf(string file, InputBytes bytes)
    {
        using var stream = File.OpenRead(file);
        bytes.Count(file, stream.Length);
        using var reader = Reader(stream);
        var hrefs = new List<string>();
        try
        {
            while (reader.Read())
            {
                if (reader.NodeType == XmlNodeType.Element && reader.LocalName == "include" && reader.NamespaceURI == XInclude && reader.GetAttribute("href") is { } href)
                {
                    hrefs.Add(href);
                }
            }
        }
        catch (XmlException)
        {
            // Reported when the file is read for real.
        }

        return hrefs;
    }

    /// <summary>The users of a document, in order, with their host; XIncludes (ejabberd) are followed within the same folder.</summary>
    private async IAsyncEnumerable<(string Host, XElement User)> ReadAsync(Stream input, string? folder, int depth, InputBytes bytes, [EnumeratorCancellation] CancellationToken ct)
    {
        using var reader = Reader(input);
        string? host = null;
        var rootSeen = false;
        while (!reader.EOF)
        {
            ct.ThrowIfCancellationRequested();
            if (reader.NodeType != XmlNodeType.Element)
            {
                await reader.ReadAsync().ConfigureAwait(false);
                continue;
            }

            if (!rootSeen)
            {
                rootSeen = true;
                var isRoot = reader.NamespaceURI == Pie && (reader.LocalName == "server-data" || (depth > 0 && reader.LocalName == "host"));
                if (!isRoot)
                {
                    throw new FormatException("not a XEP-0227 file: the root must be <server-data xmlns='urn:xmpp:pie:0'>");
                }
            }

            if (reader.NamespaceURI == Pie && reader.LocalName == "host")
            {
                host = reader.GetAttribute("jid") ?? string.Empty;
                await reader.ReadAsync().ConfigureAwait(false);
                continue;
            }

            if (reader.NamespaceURI == Pie && reader.LocalName == "user")
            {
                var user = (XElement)await XNode.ReadFromAsync(reader, ct).ConfigureAwait(false);
                bytes.Update();
                yield return (host ?? string.Empty, user);
                continue;
            }

            if (reader.NamespaceURI == XInclude && reader.LocalName == "include")
            {
                var href = reader.GetAttribute("href") ?? string.Empty;
                await reader.ReadAsync().ConfigureAwait(false);

                // Only a file next to this one: an export must not make the importer read anything else.
                if (folder is null || depth >= MaxIncludeDepth || href.Length == 0 || Path.GetFileName(href) != href)
                {
                    throw new FormatException($"cannot follow <xi:include href='{href}'/> (only files in the same folder, from a file)");
                }

                await foreach (var u in ReadFileAsync(Path.Combine(folder, href), depth + 1, bytes, ct).ConfigureAwait(false))
                {
                    yield return u;
                }

                continue;
            }

            await reader.ReadAsync().ConfigureAwait(false);
        }
    }

    private async Task<ImportSummary> RunAsync(IAsyncEnumerable<(string Host, XElement User)> users, InputBytes bytes, CancellationToken cancellationToken)
    {
        var problems = new List<string>();
        var skippedHosts = new HashSet<string>(StringComparer.Ordinal);
        var gate = new object();
        int created = 0, updated = 0, roster = 0, offline = 0, vcards = 0, privates = 0, pep = 0, archived = 0, sha1Only = 0, read = 0;
        void Problem(string p)
        {
            lock (gate)
            {
                problems.Add(p);
            }
        }

        // PBKDF2 for plaintext passwords is the costly part: accounts are imported in parallel.
        var parallel = new ParallelOptions { CancellationToken = cancellationToken, MaxDegreeOfParallelism = Environment.ProcessorCount };
        await Parallel.ForEachAsync(users, parallel, async (entry, ct) =>
        {
            await ImportUserAsync(entry, ct).ConfigureAwait(false);
            if (Progress is { } progress)
            {
                lock (gate)
                {
                    // Every account read counts, imported or skipped.
                    progress.Report(new WorkProgress("importing", "accounts", ++read, null, bytes.Read, bytes.Total));
                }
            }
        }).ConfigureAwait(false);

        return new ImportSummary(created, updated, roster, offline, problems)
        {
            VCards = vcards,
            PrivateDocuments = privates,
            PepItems = pep,
            ArchivedMessages = archived,
            Sha1Only = sha1Only,
        };

        async Task ImportUserAsync((string Host, XElement User) entry, CancellationToken ct)
        {
            var (hostName, user) = entry;
            if (!Jid.TryPrepareDomain(hostName, out var host) || !options.Hosts.Any(h => h.Name == host))
            {
                lock (gate)
                {
                    if (skippedHosts.Add(hostName))
                    {
                        problems.Add($"host '{hostName}' is not served by this server: skipped");
                    }
                }

                return;
            }

            var name = (string?)user.Attribute("name");
            if (name is null || !Jid.TryPrepareLocal(name, out var local))
            {
                Problem($"'{name}@{host}' is not a valid account address: skipped");
                return;
            }

            if (!Jid.TryCreate(local, host, null, out var jid))
            {
                Problem($"'{name}@{host}' is not a valid account address: skipped");
                return;
            }

            var credentials = Credentials(user, out var credentialProblem);
            if (credentials is null)
            {
                Problem($"{jid}: {credentialProblem}: skipped");
                return;
            }

            var isNew = await storage.Users.CreateAsync(host, local, credentials, ct).ConfigureAwait(false);
            if (!isNew)
            {
                await storage.Users.SetCredentialsAsync(host, local, credentials, ct).ConfigureAwait(false);
            }

            var counts = await UserDataAsync(jid, user, Problem, ct).ConfigureAwait(false);
            lock (gate)
            {
                _ = isNew ? created++ : updated++;
                if (credentials.TrueForAll(c => c.Hash == ScramHash.Sha1))
                {
                    sha1Only++;
                }

                roster += counts.Roster;
                offline += counts.Offline;
                vcards += counts.VCard;
                privates += counts.Private;
                pep += counts.Pep;
                archived += counts.Archived;
            }
        }
    }

    /// <summary>
    /// How much of the input has been read, of how much in all: the files' sizes (each counted once, when
    /// the folder is scanned or when the file is opened) and the positions of the streams being read. Changed
    /// by the reading side only, one step at a time; read by the importing threads.
    /// </summary>
    private sealed class InputBytes
    {
        private readonly HashSet<string> _counted = new(StringComparer.Ordinal);
        private readonly List<Stream> _open = [];
        private long _closed;
        private long _read;
        private long _total;

        public long Read => Interlocked.Read(ref _read);

        public long Total => Interlocked.Read(ref _total);

        /// <summary>Adds a file's size to the total, the first time only.</summary>
        public void Count(string file, long length)
        {
            if (_counted.Add(Path.GetFullPath(file)))
            {
                Interlocked.Add(ref _total, length);
            }
        }

        /// <summary>A stream is being read (of the file, counted in the total if it was not yet); one that cannot seek is left out.</summary>
        public void Opened(Stream stream, string? file)
        {
            if (!stream.CanSeek)
            {
                return;
            }

            if (file is null)
            {
                Interlocked.Add(ref _total, stream.Length);
            }
            else
            {
                Count(file, stream.Length);
            }

            _open.Add(stream);
        }

        /// <summary>The stream is read to its end.</summary>
        public void Closed(Stream stream)
        {
            if (_open.Remove(stream))
            {
                _closed += stream.Length;
            }

            Update();
        }

        /// <summary>Takes the streams' positions (past what the XML reader has buffered: close enough).</summary>
        public void Update()
        {
            var read = _closed;
            foreach (var s in _open)
            {
                read += s.Position;
            }

            Interlocked.Exchange(ref _read, read);
        }
    }

    /// <summary>The account's credentials: from a plaintext password (every hash), else the SCRAM keys given; null when there are none.</summary>
    private List<ScramCredential>? Credentials(XElement user, out string? problem)
    {
        problem = null;
        if ((string?)user.Attribute("password") is { Length: > 0 } password)
        {
            if (!Precis.TryPrepareOpaqueString(password, out var prepared))
            {
                problem = "its password is not a valid OpaqueString (RFC 8265)";
                return null;
            }

            return ScramCredential.CreateAll(prepared, options.Auth.Iterations);
        }

        var list = new List<ScramCredential>();
        foreach (var scram in user.Elements(ScramX + "scram-credentials"))
        {
            if (HashOf((string?)scram.Attribute("mechanism")) is not { } hash)
            {
                continue;
            }

            if (!int.TryParse(scram.Element(ScramX + "iter-count")?.Value, NumberStyles.None, CultureInfo.InvariantCulture, out var iterations) || iterations < 1
                || Base64(scram.Element(ScramX + "salt")) is not { } salt
                || Base64(scram.Element(ScramX + "server-key")) is not { } serverKey
                || Base64(scram.Element(ScramX + "stored-key")) is not { } storedKey)
            {
                problem = $"its {hash.MechanismName()} credentials are incomplete or not base64";
                return null;
            }

            var size = hash.Size();
            if (serverKey.Length != size && storedKey.Length != size
                && Base64Text(serverKey) is { Length: var s } innerServer && s == size && Base64Text(storedKey) is { Length: var t } innerStored && t == size)
            {
                // COMPAT: ejabberd 23's export_piefxis base64-encodes its already base64-encoded keys and salt
                // once more; the keys' length tells, and then the salt is encoded the same way.
                serverKey = innerServer;
                storedKey = innerStored;
                salt = Base64Text(salt) ?? salt;
            }

            if (serverKey.Length != size || storedKey.Length != size)
            {
                problem = $"its {hash.MechanismName()} keys have the wrong length";
                return null;
            }

            list.Add(new ScramCredential(hash, salt, iterations, storedKey, serverKey));
        }

        if (list.Count == 0)
        {
            problem = "no password and no SCRAM credentials this server knows";
            return null;
        }

        return list;
    }

    private static byte[]? Base64(XElement? e)
    {
        if (e is null)
        {
            return null;
        }

        try
        {
            return Convert.FromBase64String(e.Value.Trim());
        }
        catch (FormatException)
        {
            return null;
        }
    }

    /// <summary>The bytes, read as base64 text, decoded; null when they are not base64.</summary>
    private static byte[]? Base64Text(byte[] bytes)
    {
        try
        {
            return Convert.FromBase64String(System.Text.Encoding.ASCII.GetString(bytes));
        }
        catch (FormatException)
        {
            return null;
        }
    }

    private readonly record struct Counts(int Roster, int Offline, int VCard, int Private, int Pep, int Archived);

    private async Task<Counts> UserDataAsync(Jid jid, XElement user, Action<string> problem, CancellationToken ct)
    {
        var (host, local) = (jid.Domain, jid.Local!);

        // Roster (RFC 6121), with the pending subscription requests Prosody writes as presence stanzas beside it.
        var query = user.Element(RosterX + "query");
        var items = new Dictionary<string, RosterItem>(StringComparer.Ordinal);
        foreach (var item in query?.Elements(RosterX + "item") ?? [])
        {
            if (!Jid.TryParse((string?)item.Attribute("jid"), out var contact) || contact.Resource is not null || contact.Bare == jid.Bare)
            {
                continue;
            }

            var subscription = Subscriptions.Parse((string?)item.Attribute("subscription"));
            var groups = item.Elements(RosterX + "group").Select(g => g.Value).Where(g => g.Length > 0).Distinct(StringComparer.Ordinal).ToList();
            items[contact.ToString()] = new RosterItem(contact.ToString(), (string?)item.Attribute("name"), subscription, (string?)item.Attribute("ask") == "subscribe", false, false, groups);
        }

        foreach (var presence in user.Elements(XName.Get("presence", Client)).Where(p => (string?)p.Attribute("type") == "subscribe"))
        {
            if (Jid.TryParse((string?)presence.Attribute("from"), out var from) && from.Bare != jid.Bare)
            {
                var key = from.Bare.ToString();
                items[key] = (items.TryGetValue(key, out var known) ? known : RosterItem.Empty(key)) with { PendingIn = true };
            }
        }

        long version = long.TryParse((string?)query?.Attribute("version"), NumberStyles.None, CultureInfo.InvariantCulture, out var v) ? v : 0;
        foreach (var item in items.Values)
        {
            await storage.Roster.SaveAsync(host, local, item, ++version, ct).ConfigureAwait(false);
        }

        var vcard = 0;
        if (user.Element(XName.Get("vCard", VCardNs)) is { } card)
        {
            await storage.Documents.SetAsync(host, local, Modules.VCard.VCardModule.Kind, string.Empty, card.ToString(SaveOptions.DisableFormatting), ct).ConfigureAwait(false);
            vcard = 1;
        }

        var privates = 0;
        foreach (var fragment in user.Elements(XName.Get("query", PrivateNs)).Elements())
        {
            var key = fragment.Name.LocalName + " " + fragment.Name.NamespaceName;
            await storage.Documents.SetAsync(host, local, Modules.PrivateStorage.PrivateStorageModule.Kind, key, fragment.ToString(SaveOptions.DisableFormatting), ct).ConfigureAwait(false);
            privates++;
        }

        var offline = 0;
        foreach (var message in user.Elements(PieX + "offline-messages").Elements())
        {
            if (await storage.Offline.StoreAsync(host, local, message.ToString(SaveOptions.DisableFormatting), int.MaxValue, ct).ConfigureAwait(false))
            {
                offline++;
            }
        }

        var pep = await PepAsync(jid, user, problem, ct).ConfigureAwait(false);
        var archived = await ArchiveAsync(jid, user, ct).ConfigureAwait(false);
        return new Counts(items.Values.Count(i => i.InRoster), offline, vcard, privates, pep, archived);
    }

    private async Task<int> PepAsync(Jid jid, XElement user, Action<string> problem, CancellationToken ct)
    {
        XNamespace owner = PubSubOwner, pubsub = PubSub;
        var configs = new Dictionary<string, Modules.Pep.NodeConfig>(StringComparer.Ordinal);
        foreach (var configure in user.Elements(owner + "pubsub").Elements(owner + "configure"))
        {
            if ((string?)configure.Attribute("node") is not { Length: > 0 } node)
            {
                continue;
            }

            var form = configure.Element(XName.Get("x", Xmpp.Core.Stanzas.DataForm.Namespace));
            var values = form is null ? null : Xmpp.Core.Stanzas.DataForm.Values(Xmpp.Core.Xml.ElementParser.Parse(form.ToString(SaveOptions.DisableFormatting)));
            var config = values is null ? new Modules.Pep.NodeConfig() : new Modules.Pep.NodeConfig().With(values, int.MaxValue, out _);
            if (config is null)
            {
                problem($"{jid}: PEP node {node} has a configuration this server cannot take: default configuration used");
                config = new Modules.Pep.NodeConfig();
            }

            configs[node] = config;
        }

        var published = new Dictionary<string, List<PubSubItem>>(StringComparer.Ordinal);
        foreach (var itemsEl in user.Elements(pubsub + "pubsub").Elements(pubsub + "items"))
        {
            if ((string?)itemsEl.Attribute("node") is not { Length: > 0 } node)
            {
                continue;
            }

            var list = published.TryGetValue(node, out var l) ? l : published[node] = [];
            foreach (var item in itemsEl.Elements(pubsub + "item"))
            {
                var payload = item.Elements().FirstOrDefault();

                // COMPAT: Prosody writes its stored <item> inside the export's <item>: the payload is one level down.
                if (payload is not null && payload.Name == pubsub + "item")
                {
                    payload = payload.Elements().FirstOrDefault();
                }

                if (payload is not null)
                {
                    var id = (string?)item.Attribute("id") is { Length: > 0 } given ? given : Guid.NewGuid().ToString("N");
                    list.Add(new PubSubItem(id, payload.ToString(SaveOptions.DisableFormatting), jid.Bare.ToString(), DateTimeOffset.UtcNow));
                }
            }
        }

        var count = 0;
        foreach (var node in configs.Keys.Union(published.Keys))
        {
            var items = published.GetValueOrDefault(node) ?? [];
            var config = configs.TryGetValue(node, out var c) ? c : new Modules.Pep.NodeConfig { MaxItems = Math.Max(1, items.Count) };
            var serialized = config.Serialize();
            if (!await storage.PubSub.CreateNodeAsync(jid.Domain, jid.Local!, node, serialized, ct).ConfigureAwait(false))
            {
                await storage.PubSub.SetConfigAsync(jid.Domain, jid.Local!, node, serialized, ct).ConfigureAwait(false);
            }

            foreach (var item in items)
            {
                await storage.PubSub.PublishAsync(jid.Domain, jid.Local!, node, item, Math.Max(config.MaxItems, items.Count), ct).ConfigureAwait(false);
                count++;
            }
        }

        return count;
    }

    /// <summary>The message archive (Prosody's form: results with forwarded messages and their time); the direction follows from the addresses.</summary>
    private async Task<int> ArchiveAsync(Jid jid, XElement user, CancellationToken ct)
    {
        var count = 0;
        foreach (var result in user.Elements(XName.Get("archive", Mam)).Elements(XName.Get("result", MamNs)))
        {
            var forwarded = result.Element(XName.Get("forwarded", Forward));
            var message = forwarded?.Element(XName.Get("message", Client));
            if (message is null)
            {
                continue;
            }

            var at = DateTimeOffset.TryParse((string?)forwarded!.Element(XName.Get("delay", Delay))?.Attribute("stamp"), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var stamp)
                ? stamp
                : DateTimeOffset.UtcNow;
            var from = Jid.TryParse((string?)message.Attribute("from"), out var f) ? f : null;
            var to = Jid.TryParse((string?)message.Attribute("to"), out var t) ? t : null;
            var outgoing = from is null || from.Bare == jid.Bare;
            var with = outgoing ? to : from;
            if (with is null)
            {
                continue;
            }

            var id = (string?)result.Attribute("id") is { Length: > 0 } given ? given : Guid.CreateVersion7().ToString("N");
            var originId = ArchivedMessage.UsableOriginId((string?)message.Element(XName.Get("origin-id", "urn:xmpp:sid:0"))?.Attribute("id"));
            await storage.Archive.AppendAsync(jid.Domain, jid.Local!, new ArchivedMessage(id, with.ToString(), outgoing, at, message.ToString(SaveOptions.DisableFormatting)) { OriginId = originId }, ct).ConfigureAwait(false);
            count++;
        }

        return count;
    }
}
