using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Xmpp.Core.Addressing;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;
using Xmpp.Server.Config;
using Xmpp.Server.Hosting;

namespace Xmpp.Server.Modules.Upload;

/// <summary>
/// HTTP File Upload (XEP-0363) on the server's own HTTPS listener: a local account asks its host for a
/// slot (name, size, type), checked against the size limit, the allowed types and its quota; the answer is
/// a PUT URL signed with the server's upload secret, valid for a few minutes, and a GET URL that anyone
/// holding it may fetch (a capability URL: 128 random bits). Files live under DATA-DIR/uploads, or the directory
/// the path option names (shared by a cluster's nodes), and expire.
/// </summary>
[Specification("XEP-0363", "1.1.0", Note = "Slots on each host (disco identity store/file, max-file-size), size, type and per-account quota limits with the XEP's errors, signed expiring PUT URLs, GET with content types, Range and HEAD, CORS for web clients, expiry of old files.")]
public sealed class UploadModule : IXmppModule, IKeepsStateAcrossReload
{
    public const string Namespace = "urn:xmpp:http:upload:0";
    private const string Prefix = "/upload/";

    private Usage _usage = new();
    private IModuleContext _context = null!;
    private string _directory = null!;
    private byte[] _secret = [];
    private long _maxSize;
    private long _quota;
    private int _expireDays;
    private TimeSpan _slotLifetime;
    private string[] _types = [];
    private string? _url;

    public string Name => "upload";

    /// <summary>Bytes stored per account, computed once from the files on disk and kept up to date.</summary>
    private sealed class Usage
    {
        public ConcurrentDictionary<string, long> ByOwner { get; } = new(StringComparer.Ordinal);

        public Task? Scanned { get; set; }
    }

    public void TakeOver(IXmppModule previous)
    {
        if (previous is UploadModule old)
        {
            _usage = old._usage;
        }
    }

    public void Register(IModuleContext context)
    {
        _context = context;
        _maxSize = Bytes(context, "max-size", 100L * 1024 * 1024);
        _quota = Bytes(context, "quota", 1024L * 1024 * 1024);
        _expireDays = context.Number("expire-days", 30, min: 0);
        _slotLifetime = TimeSpan.FromSeconds(context.Number("slot-lifetime", 300, min: 10, max: 86_400));
        _types = (context.Option("types") ?? string.Empty).Split(' ', StringSplitOptions.RemoveEmptyEntries);
        _url = context.Option("url");

        // A directory of its own (shared by a cluster's nodes, so that any of them serves every file) keeps its
        // signing secret with the files; by default both are in the data directory.
        var shared = context.Option("path");
        if (_url is not null && !(Uri.TryCreate(_url, UriKind.Absolute, out var u) && u.Scheme == "https" && _url.EndsWith('/')))
        {
            throw new ConfigException($"module upload: url must be an https URL ending with '/', not '{_url}'");
        }

        if (_url is null && !context.Options.Listeners.Any(l => l.Kind == ListenerKind.Https))
        {
            // Without an HTTPS listener (or a front end given as url) there is nowhere to upload to: nothing is offered.
            context.Log.Info("No <listen type=\"https\"/>: HTTP file upload is not offered");
            return;
        }

        _directory = shared is null ? Path.Combine(context.Options.DataDirectory, "uploads") : Path.Combine(context.Options.DataDirectory, shared);
        PrivateFiles.EnsureDirectory(_directory);
        _secret = PrivateFiles.ReadOrCreateSecret(shared is null ? Path.Combine(context.Options.DataDirectory, "upload.secret") : Path.Combine(_directory, "upload.secret"));
        if (shared is null && context.Options.Cluster is not null)
        {
            context.Log.Warn("Cluster mode: uploaded files are kept in this node's data directory, so only this node serves them; give the upload module a path that every node shares");
        }

        context.Disco.AddHostIdentity("store", "file", "HTTP File Upload");
        context.Disco.AddFeature(Namespace, IqTarget.Host);
        var info = DataForm.Create("result", Namespace);
        DataForm.AddField(info, "max-file-size", null, _maxSize.ToString(CultureInfo.InvariantCulture));
        context.Disco.AddHostExtension(info);
        context.HandleIq("get", Namespace, "request", IqTarget.Host, RequestSlotAsync);
        context.HandleHttp(Prefix, ServeAsync, "GET", "HEAD", "PUT");

        _usage.Scanned ??= Task.Run(Scan);
        context.RunInBackground(async stopping =>
        {
            // After the usage scan, so that a file deleted here is never counted there too.
            await _usage.Scanned.WaitAsync(stopping).ConfigureAwait(false);
            using var timer = new PeriodicTimer(TimeSpan.FromHours(1));
            do
            {
                Expire();
            }
            while (await timer.WaitForNextTickAsync(stopping).ConfigureAwait(false));
        });
    }

    private static long Bytes(IModuleContext context, string name, long fallback)
    {
        var text = context.Option(name);
        if (text is null)
        {
            return fallback;
        }

        return long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var v) && v > 0
            ? v
            : throw new ConfigException($"module upload: {name} must be a number of bytes, not '{text}'");
    }

    // ---- slots (§4) ------------------------------------------------------------------------------------

    private async ValueTask<Element?> RequestSlotAsync(Routing.StanzaContext ctx, Element request, CancellationToken ct)
    {
        if (ctx.Origin is null || ctx.From.Domain != ctx.To!.Domain)
        {
            throw new StanzaErrorException(StanzaErrorCondition.NotAllowed, "uploads are for this host's own accounts");
        }

        var name = SafeName(request.GetAttribute("filename"));
        if (!long.TryParse(request.GetAttribute("size"), NumberStyles.None, CultureInfo.InvariantCulture, out var size) || size <= 0)
        {
            throw new StanzaErrorException(StanzaErrorCondition.BadRequest, "size must be a positive number of bytes");
        }

        var type = request.GetAttribute("content-type") is { Length: > 0 } t ? t.Trim() : "application/octet-stream";
        if (type.Length > 100 || type.Any(c => c < 0x21 || c > 0x7e) || !type.Contains('/', StringComparison.Ordinal))
        {
            throw new StanzaErrorException(StanzaErrorCondition.BadRequest, "content-type is not a MIME type");
        }

        if (size > _maxSize)
        {
            // §4.3: too large, with the limit.
            var tooLarge = new Element("file-too-large", Namespace);
            tooLarge.AddChild("max-size").AddText(_maxSize.ToString(CultureInfo.InvariantCulture));
            throw new StanzaErrorException(new StanzaError(StanzaErrorCondition.NotAcceptable, $"the file is larger than {_maxSize} bytes", "modify") { Application = tooLarge });
        }

        if (_types.Length > 0 && !_types.Any(allowed => allowed.EndsWith("/*", StringComparison.Ordinal)
                ? type.StartsWith(allowed[..^1], StringComparison.OrdinalIgnoreCase)
                : string.Equals(type, allowed, StringComparison.OrdinalIgnoreCase)))
        {
            throw new StanzaErrorException(new StanzaError(StanzaErrorCondition.NotAcceptable, $"files of type {type} are not accepted here", "modify"));
        }

        await _usage.Scanned!.WaitAsync(ct).ConfigureAwait(false);
        var owner = ctx.From.Bare.ToString();
        var used = _usage.ByOwner.GetValueOrDefault(owner);
        if (used + size > _quota)
        {
            throw new StanzaErrorException(new StanzaError(StanzaErrorCondition.ResourceConstraint, $"quota reached: {used} of {_quota} bytes in use", "wait"));
        }

        var baseUrl = _url ?? _context.HttpsBase(ctx.To.Domain)?.ToString()
            ?? throw new StanzaErrorException(StanzaErrorCondition.ServiceUnavailable, "the HTTPS listener is not running");
        var id = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        var expires = DateTimeOffset.UtcNow.Add(_slotLifetime).ToUnixTimeSeconds();
        var path = "upload/" + id + "/" + Uri.EscapeDataString(name);
        var query = "?e=" + expires.ToString(CultureInfo.InvariantCulture) + "&l=" + size.ToString(CultureInfo.InvariantCulture) +
            "&t=" + Uri.EscapeDataString(type) + "&o=" + Uri.EscapeDataString(owner) + "&s=" + Sign(id, name, size, type, owner, expires);
        _context.Log.Info("Upload slot {Id} for {Owner}: {Size} bytes of {Type}", id, owner, size, type);
        var slot = new Element("slot", Namespace);
        slot.AddChild("put").SetAttribute("url", baseUrl + path + query);
        slot.AddChild("get").SetAttribute("url", baseUrl + path);
        return slot;
    }

    /// <summary>The last path segment of what the client calls the file, without controls; "file" when nothing is left.</summary>
    private static string SafeName(string? name)
    {
        if (string.IsNullOrWhiteSpace(name))
        {
            throw new StanzaErrorException(StanzaErrorCondition.BadRequest, "a filename is required");
        }

        var last = name.Replace('\\', '/').Split('/').Last();
        var clean = new string(last.Where(c => !char.IsControl(c)).ToArray()).Trim();
        if (clean is "" or "." or "..")
        {
            clean = "file";
        }

        return clean.Length <= 200 ? clean : clean[^200..];
    }

    private string Sign(string id, string name, long size, string type, string owner, long expires)
    {
        var text = string.Join('\n', id, name, size.ToString(CultureInfo.InvariantCulture), type, owner, expires.ToString(CultureInfo.InvariantCulture));
        return Convert.ToBase64String(HMACSHA256.HashData(_secret, Encoding.UTF8.GetBytes(text))).TrimEnd('=').Replace('+', '-').Replace('/', '_');
    }

    // ---- HTTP (§5) -------------------------------------------------------------------------------------

    private async Task ServeAsync(IHttpExchange http)
    {
        // /upload/ID/NAME
        var rest = http.Path[Prefix.Length..];
        var slash = rest.IndexOf('/', StringComparison.Ordinal);
        if (slash != 32 || !rest[..32].All(Uri.IsHexDigit))
        {
            await http.SendTextAsync(404, "no such file").ConfigureAwait(false);
            return;
        }

        var id = rest[..32];
        var name = rest[(slash + 1)..];
        if (http.Method == "PUT")
        {
            await PutAsync(http, id, name).ConfigureAwait(false);
            return;
        }

        var meta = await ReadMetaAsync(id, http.Aborted).ConfigureAwait(false);
        if (meta is null || meta.Name != name)
        {
            await http.SendTextAsync(404, "no such file").ConfigureAwait(false);
            return;
        }

        // Served as what the uploader said it is, never sniffed; only media and plain text shown inline.
        var inline = meta.Type.StartsWith("image/", StringComparison.OrdinalIgnoreCase) || meta.Type.StartsWith("video/", StringComparison.OrdinalIgnoreCase) ||
            meta.Type.StartsWith("audio/", StringComparison.OrdinalIgnoreCase) || meta.Type.StartsWith("text/plain", StringComparison.OrdinalIgnoreCase);
        http.SetHeader("X-Content-Type-Options", "nosniff");
        http.SetHeader("Content-Security-Policy", "default-src 'none'; sandbox");
        http.SetHeader("Content-Disposition", (inline ? "inline" : "attachment") + "; filename*=UTF-8''" + Uri.EscapeDataString(name));
        http.SetHeader("Cache-Control", "public, max-age=31536000, immutable");
        await http.SendFileAsync(DataPath(id), meta.Type, meta.At).ConfigureAwait(false);
    }

    private async Task PutAsync(IHttpExchange http, string id, string name)
    {
        var owner = http.Query("o") ?? string.Empty;
        var type = http.Query("t") ?? string.Empty;
        if (!long.TryParse(http.Query("e"), NumberStyles.None, CultureInfo.InvariantCulture, out var expires) ||
            !long.TryParse(http.Query("l"), NumberStyles.None, CultureInfo.InvariantCulture, out var size) ||
            http.Query("s") is not { } signature ||
            !CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(signature), Encoding.ASCII.GetBytes(Sign(id, name, size, type, owner, expires))))
        {
            _context.Log.Warn("Refusing an upload to {Id} from {Remote}: the URL's signature does not match", id, http.RemoteAddress);
            await http.SendTextAsync(403, "this upload URL is not valid").ConfigureAwait(false);
            return;
        }

        if (DateTimeOffset.UtcNow.ToUnixTimeSeconds() > expires)
        {
            await http.SendTextAsync(403, "this upload slot has expired: ask for a new one").ConfigureAwait(false);
            return;
        }

        if (http.ContentLength != size)
        {
            // §5: the body must be the size the slot was requested for.
            await http.SendTextAsync(http.ContentLength > size ? 413 : 400, $"the slot is for {size} bytes").ConfigureAwait(false);
            return;
        }

        if (http.Header("Content-Type") is { Length: > 0 } given && !string.Equals(given.Split(';')[0].Trim(), type.Split(';')[0].Trim(), StringComparison.OrdinalIgnoreCase))
        {
            await http.SendTextAsync(400, $"the slot is for {type}, not {given}").ConfigureAwait(false);
            return;
        }

        var data = DataPath(id);
        if (File.Exists(data))
        {
            await http.SendTextAsync(409, "this slot was used already").ConfigureAwait(false);
            return;
        }

        await _usage.Scanned!.WaitAsync(http.Aborted).ConfigureAwait(false);
        if (_usage.ByOwner.GetValueOrDefault(owner) + size > _quota)
        {
            await http.SendTextAsync(413, "quota reached").ConfigureAwait(false);
            return;
        }

        var part = data + ".part";
        try
        {
            var written = 0L;
            await using (var file = new FileStream(part, FileMode.CreateNew, FileAccess.Write, FileShare.None, 81920, useAsync: true))
            {
                var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(81920);
                try
                {
                    int n;
                    while ((n = await http.RequestBody.ReadAsync(buffer, http.Aborted).ConfigureAwait(false)) > 0)
                    {
                        written += n;
                        if (written > size)
                        {
                            break;
                        }

                        await file.WriteAsync(buffer.AsMemory(0, n), http.Aborted).ConfigureAwait(false);
                    }
                }
                finally
                {
                    System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
                }
            }

            if (written != size)
            {
                File.Delete(part);
                await http.SendTextAsync(400, $"received {written} bytes, the slot is for {size}").ConfigureAwait(false);
                return;
            }

            var meta = new Meta(owner, name, type, size, DateTimeOffset.UtcNow);
            await File.WriteAllTextAsync(MetaPath(id), meta.ToXml(), http.Aborted).ConfigureAwait(false);
            File.Move(part, data);
            _usage.ByOwner.AddOrUpdate(owner, size, (_, used) => used + size);
            _context.Log.Info("Upload {Id} by {Owner} stored: {Size} bytes", id, owner, size);
            http.StatusCode = 201;
        }
        catch (IOException ex) when (File.Exists(part) && !File.Exists(data))
        {
            // Another PUT to the same slot got there first (CreateNew), or the disk failed.
            _context.Log.Warn("Upload {Id} failed: {Reason}", id, ex.Message);
            await http.SendTextAsync(409, "this slot is being used").ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            File.Delete(part);
        }
    }

    // ---- files -----------------------------------------------------------------------------------------

    private sealed record Meta(string Owner, string Name, string Type, long Size, DateTimeOffset At)
    {
        public string ToXml() => new Element("file", Namespace)
            .SetAttribute("owner", Owner).SetAttribute("name", Name).SetAttribute("type", Type)
            .SetAttribute("size", Size.ToString(CultureInfo.InvariantCulture)).SetAttribute("at", At.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture))
            .ToString();

        public static Meta? Parse(string xml)
        {
            var e = ElementParser.Parse(xml);
            return long.TryParse(e.GetAttribute("size"), NumberStyles.None, CultureInfo.InvariantCulture, out var size) &&
                long.TryParse(e.GetAttribute("at"), NumberStyles.None, CultureInfo.InvariantCulture, out var at)
                ? new Meta(e.GetAttribute("owner") ?? string.Empty, e.GetAttribute("name") ?? string.Empty, e.GetAttribute("type") ?? "application/octet-stream", size, DateTimeOffset.FromUnixTimeMilliseconds(at))
                : null;
        }
    }

    private string DataPath(string id) => Path.Combine(_directory, id + ".bin");

    private string MetaPath(string id) => Path.Combine(_directory, id + ".xml");

    private Meta? ReadMeta(string id) =>
        TryMeta(id, () => File.ReadAllText(MetaPath(id)));

    private async Task<Meta?> ReadMetaAsync(string id, CancellationToken ct)
    {
        string? xml = null;
        try
        {
            xml = File.Exists(DataPath(id)) ? await File.ReadAllTextAsync(MetaPath(id), ct).ConfigureAwait(false) : null;
        }
        catch (IOException)
        {
        }

        return TryMeta(id, () => xml);
    }

    /// <summary>A file's record from its text, or null when the file or its record is missing or unreadable.</summary>
    private Meta? TryMeta(string id, Func<string?> text)
    {
        try
        {
            return File.Exists(DataPath(id)) && text() is { } xml ? Meta.Parse(xml) : null;
        }
        catch (Exception ex) when (ex is IOException or Xmpp.Core.Stanzas.XmppStreamException or System.Xml.XmlException)
        {
            return null;
        }
    }

    private void Scan()
    {
        foreach (var file in Directory.EnumerateFiles(_directory, "*.xml"))
        {
            if (ReadMeta(Path.GetFileNameWithoutExtension(file)) is { } meta)
            {
                _usage.ByOwner.AddOrUpdate(meta.Owner, meta.Size, (_, used) => used + meta.Size);
            }
        }
    }

    /// <summary>Deletes files older than expire-days, and uploads that never completed.</summary>
    private void Expire()
    {
        var removed = 0;
        var now = DateTimeOffset.UtcNow;
        foreach (var file in Directory.EnumerateFiles(_directory))
        {
            try
            {
                if (file.EndsWith(".part", StringComparison.Ordinal) && File.GetLastWriteTimeUtc(file) < now.UtcDateTime.AddDays(-1))
                {
                    File.Delete(file);
                    continue;
                }

                if (_expireDays == 0 || !file.EndsWith(".xml", StringComparison.Ordinal))
                {
                    continue;
                }

                var id = Path.GetFileNameWithoutExtension(file);
                if (ReadMeta(id) is { } meta && meta.At < now.AddDays(-_expireDays))
                {
                    File.Delete(DataPath(id));
                    File.Delete(file);
                    _usage.ByOwner.AddOrUpdate(meta.Owner, 0, (_, used) => Math.Max(0, used - meta.Size));
                    removed++;
                }
            }
            catch (IOException ex)
            {
                _context.Log.Warn("Could not expire {File}: {Reason}", file, ex.Message);
            }
        }

        if (removed > 0)
        {
            _context.Log.Info("Expired {Count} uploaded files older than {Days} days", removed, _expireDays);
        }
    }
}
