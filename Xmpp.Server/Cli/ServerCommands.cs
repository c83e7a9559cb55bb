using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using NLog;
using Xmpp.Server.Accounts;
using Xmpp.Server.Config;
using Xmpp.Server.Hosting;
using Xmpp.Server.Logging;
using Xmpp.Server.Modules.Version;
using Xmpp.Server.Storage;
using Xmpp.Server.Tls;

namespace Xmpp.Server.Cli;

/// <summary>What the commands do, once the command line is parsed and the configuration loaded (<see cref="CommandLine"/>).</summary>
internal static class ServerCommands
{
    private const int Ok = CommandLine.Ok;
    private const int Failed = CommandLine.Failed;

    public static async Task<int> RunServerAsync(ServerOptions options, TextWriter stdout)
    {
        // Started by systemd: the journal reads our output, and a Type=notify unit waits for READY=1.
        using var logs = LogSetup.Create(options.Logging, journal: JournalLayout.StandardOutputIsJournal());
        var log = logs.GetLogger("Server");
        using var systemd = SystemdNotifier.FromEnvironment(log);
        await using var server = await XmppServer.CreateAsync(options, logs, CancellationToken.None).ConfigureAwait(false);
        server.Systemd = systemd;
        log.Info("XmppServer {Version} starting; configuration {Config}; storage {Storage}", VersionModule.ProductVersion, options.SourceFile ?? "(built-in defaults)", server.Context.Storage.Describe());
        foreach (var cert in server.Context.Certificates.All)
        {
            log.Info("Certificate for {Host}{Generated}: {File} SHA-256 {Fingerprint} SHA-1 {FingerprintSha1}", cert.Host, cert.Generated ? " (self-signed, generated now)" : string.Empty, cert.CertificateFile, cert.Fingerprint, cert.FingerprintSha1);
        }

        var stop = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx =>
        {
            ctx.Cancel = true;
            stop.TrySetResult();
        });
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, ctx =>
        {
            ctx.Cancel = true;
            stop.TrySetResult();
        });
        // SIGHUP reloads the configuration (the outcome is logged); one reload at a time.
        using var sighup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, ctx =>
        {
            ctx.Cancel = true;
            log.Info("SIGHUP: reloading the configuration");
            _ = server.RequestReloadAsync(CancellationToken.None);
        });
        server.Start();
        try
        {
            await server.HttpReady.ConfigureAwait(false);
        }
        catch (IOException ex)
        {
            throw new ConfigException("cannot listen for HTTPS: " + ex.Message, ex);
        }

        if (!await server.Context.Storage.Users.AnyAsync(CancellationToken.None).ConfigureAwait(false))
        {
            var host = options.Hosts[0].Name;
            log.Info("No accounts yet. Add one with: dotnet run --project Xmpp.Server -- adduser alice@{Host}", host);
        }

        // The start's garbage (configuration, schema, certificates, the HTTP host) is dead now: an idle server
        // would otherwise keep it until its first busy spell is over (FreedNativeMemory).
        FreedNativeMemory.GiveBack(log, "after the start");
        log.Info("Ready. Stop with Ctrl-C or SIGTERM.");
        await systemd.ReadyAsync(XmppServer.Describe(options), CancellationToken.None).ConfigureAwait(false);
        await Task.WhenAny(stop.Task, server.StopRequested).ConfigureAwait(false);
        log.Info("Shutting down");
        await systemd.StoppingAsync(CancellationToken.None).ConfigureAwait(false);
        await server.StopAsync().ConfigureAwait(false);
        await stdout.FlushAsync().ConfigureAwait(false);
        return Ok;
    }

    /// <summary>reload: asks the server running with this configuration (its control socket in the data directory) to reload.</summary>
    public static Task<int> ReloadAsync(ServerOptions options, TextWriter stdout, TextWriter stderr) =>
        AskRunningServerAsync(options, "reload", TimeSpan.FromSeconds(60), "SIGHUP also reloads", "reloaded", "reload refused; the running configuration stays", stdout, stderr);

    /// <summary>drain: asks the cluster node running with this configuration to drain and stop (as SIGTERM does).</summary>
    public static Task<int> DrainAsync(ServerOptions options, TextWriter stdout, TextWriter stderr) =>
        AskRunningServerAsync(options, "drain", TimeSpan.FromSeconds(30), "SIGTERM also drains a cluster node", null, null, stdout, stderr);

    /// <summary>
    /// One command on the running server's control socket: its answer's lines after a heading (when given), on
    /// stdout when it says "ok", otherwise on stderr; the exit code follows.
    /// </summary>
    private static async Task<int> AskRunningServerAsync(ServerOptions options, string command, TimeSpan wait, string signalHint, string? okHeading, string? refusedHeading, TextWriter stdout, TextWriter stderr)
    {
        using var timeout = new CancellationTokenSource(wait);
        var answer = await Hosting.ControlChannel.RequestAsync(options.DataDirectory, command, timeout.Token).ConfigureAwait(false);
        if (answer is null || answer.Count == 0)
        {
            await stderr.WriteLineAsync($"no running server answers at {Hosting.ControlChannel.PathFor(options.DataDirectory)} (is it running with this configuration? {signalHint})").ConfigureAwait(false);
            return Failed;
        }

        var ok = answer[0] == "ok";
        var output = ok ? stdout : stderr;
        var heading = ok ? okHeading : refusedHeading;
        if (heading is not null)
        {
            await output.WriteLineAsync(heading).ConfigureAwait(false);
        }

        foreach (var line in answer.Skip(1))
        {
            await output.WriteLineAsync(heading is null ? line : "  " + line).ConfigureAwait(false);
        }

        return ok ? Ok : Failed;
    }

    /// <summary>import FILE: accounts, rosters and offline messages from a XEP-0227 file; progress on a terminal.</summary>
    public static async Task<int> ImportAsync(ServerOptions options, string file, TextWriter stdout, TextWriter stderr, ProgressReporter progress)
    {
        var storage = XmppServer.CreateStorage(options);
        await using (storage.ConfigureAwait(false))
        {
            await storage.MigrateAsync(CancellationToken.None).ConfigureAwait(false);
            ImportSummary summary;
            try
            {
                summary = await new Xep0227Importer(options, storage) { Progress = progress }.ImportAsync(file, CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or System.Xml.XmlException or FormatException)
            {
                progress.Finish();
                await stderr.WriteLineAsync($"{file}: {ex.Message}").ConfigureAwait(false);
                return Failed;
            }
            finally
            {
                // Whatever comes next (problems, the summary, a storage error) starts on a clean line.
                progress.Finish();
            }

            foreach (var p in summary.Problems)
            {
                await stderr.WriteLineAsync(p).ConfigureAwait(false);
            }

            await stdout.WriteLineAsync(
                $"imported {summary.Users} new and {summary.Updated} existing accounts, {summary.RosterItems} roster items, {summary.VCards} vCards, " +
                $"{summary.PrivateDocuments} private XML documents, {summary.OfflineMessages} offline messages, {summary.PepItems} PEP items, {summary.ArchivedMessages} archived messages").ConfigureAwait(false);
            if (summary.Sha1Only > 0)
            {
                await stdout.WriteLineAsync(
                    $"note: {summary.Sha1Only} accounts have SCRAM-SHA-1 keys only (as Prosody and ejabberd store them). They log in with SCRAM-SHA-1 or PLAIN; " +
                    "a PLAIN login stores the stronger keys. Clients that pick SCRAM-SHA-256 (Gajim, Conversations) fail on them until then: " +
                    "for a while, offer <authentication scram=\"\"/> (PLAIN over TLS only) or scram=\"SHA-1\", then the default again with xmppserver reload (README, \"Moving from Prosody or ejabberd\").").ConfigureAwait(false);
            }

            return summary.Problems.Count == 0 ? Ok : Failed;
        }
    }

    /// <summary>export PATH: every account (of one host with --host) in XEP-0227; a folder (or --per-user) gets one user@host.xml per account. Progress on a terminal.</summary>
    public static async Task<int> ExportAsync(ServerOptions options, string path, string? host, bool perUser, bool forEjabberd, TextWriter stdout, TextWriter stderr, ProgressReporter progress)
    {
        var storage = XmppServer.CreateStorage(options);
        await using (storage.ConfigureAwait(false))
        {
            await storage.MigrateAsync(CancellationToken.None).ConfigureAwait(false);
            perUser |= Directory.Exists(path) || path.EndsWith('/');
            ExportSummary summary;
            try
            {
                summary = await new Xep0227Exporter(options, storage) { ForEjabberd = forEjabberd, Progress = progress }.ExportAsync(path, host, perUser, CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                progress.Finish();
                await stderr.WriteLineAsync($"{path}: {ex.Message}").ConfigureAwait(false);
                return Failed;
            }
            finally
            {
                progress.Finish();
            }

            await stdout.WriteLineAsync(
                $"exported {summary.Users} accounts, {summary.RosterItems} roster items, {summary.OfflineMessages} offline messages, {summary.ArchivedMessages} archived messages " +
                $"to {(perUser ? $"{summary.Files} files in {path}" : path)}").ConfigureAwait(false);
            return Ok;
        }
    }

    /// <summary>
    /// invite: an account invitation (or with --roster a contact invitation of that account) stored for the
    /// running server's invites module; prints the invitation page's address, the xmpp: URI and the expiry.
    /// </summary>
    public static async Task<int> InviteAsync(ServerOptions options, string? host, string? roster, int uses, int? days, TextWriter stdout, TextWriter stderr)
    {
        if (!options.Modules.TryGetValue(Modules.Invites.Invitations.ModuleName, out var moduleOptions))
        {
            await stderr.WriteLineAsync("the invites module is off, so the server would not accept the invitation: add <invites/> to <modules> (README, \"Invitations\")").ConfigureAwait(false);
            return Failed;
        }

        if (uses < 1)
        {
            await stderr.WriteLineAsync("--uses must be at least 1").ConfigureAwait(false);
            return Failed;
        }

        var fallbackDays = moduleOptions.TryGetValue("expires", out var text) && int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var d) ? d : Modules.Invites.Invitations.DefaultDays;
        var validity = days ?? fallbackDays;
        if (validity is < 1 or > 3650)
        {
            await stderr.WriteLineAsync("--expires must be from 1 to 3650 days").ConfigureAwait(false);
            return Failed;
        }

        Xmpp.Core.Addressing.Jid? inviter = null;
        if (roster is not null)
        {
            if (!Xmpp.Core.Addressing.Jid.TryParse(roster, out inviter) || inviter.Local is null || inviter.Resource is not null)
            {
                await stderr.WriteLineAsync($"'{roster}' is not an account's address (user@host)").ConfigureAwait(false);
                return Failed;
            }

            if (host is not null && host != inviter.Domain)
            {
                await stderr.WriteLineAsync($"--host {host} and --roster {roster} name different hosts").ConfigureAwait(false);
                return Failed;
            }

            host = inviter.Domain;
        }

        host ??= options.Hosts[0].Name;
        if (!options.Hosts.Any(h => h.Name == host))
        {
            await stderr.WriteLineAsync($"this server does not serve '{host}' (configured: {string.Join(", ", options.Hosts.Select(h => h.Name))})").ConfigureAwait(false);
            return Failed;
        }

        var storage = XmppServer.CreateStorage(options);
        await using (storage.ConfigureAwait(false))
        {
            await storage.MigrateAsync(CancellationToken.None).ConfigureAwait(false);
            if (inviter is not null && !await storage.Users.ExistsAsync(inviter.Domain, inviter.Local!, CancellationToken.None).ConfigureAwait(false))
            {
                await stderr.WriteLineAsync($"no account {inviter}").ConfigureAwait(false);
                return Failed;
            }

            var invite = await Modules.Invites.Invitations.CreateAsync(
                storage,
                inviter is null ? InviteKind.Register : InviteKind.Roster,
                host,
                inviter,
                username: null,
                allowRegistration: inviter is not null,
                subscribe: inviter is not null,
                uses,
                TimeSpan.FromDays(validity),
                CancellationToken.None).ConfigureAwait(false);
            var page = Modules.Invites.Invitations.ConfiguredBase(options, host);
            await stdout.WriteLineAsync(page is null
                ? "page: (none: no HTTPS listener with a fixed port, and no url option on <invites/>)"
                : "page: " + Modules.Invites.Invitations.LandingUrl(page, invite.Token).AbsoluteUri).ConfigureAwait(false);
            await stdout.WriteLineAsync("uri: " + Modules.Invites.Invitations.XmppUri(invite)).ConfigureAwait(false);
            await stdout.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"valid until {Modules.Invites.Invitations.DateTime(invite.Expires)} for {uses} {(uses == 1 ? "account" : "accounts")}")).ConfigureAwait(false);
            return Ok;
        }
    }

    private static async Task<(AccountService Service, IAsyncDisposable Storage)> OpenAccountsAsync(ServerOptions options)
    {
        var storage = XmppServer.CreateStorage(options);
        await storage.MigrateAsync(CancellationToken.None).ConfigureAwait(false);
        return (new AccountService(options, storage), storage);
    }

    /// <summary>adduser (create) and passwd (change): the password from the arguments, stdin or a prompt.</summary>
    public static async Task<int> SetPasswordAsync(ServerOptions options, string jid, string? given, TextReader stdin, TextWriter stdout, TextWriter stderr, bool create)
    {
        var password = given ?? await ReadPasswordAsync(stdin, stderr).ConfigureAwait(false);
        if (password is null)
        {
            return Failed;
        }

        var (accounts, storage) = await OpenAccountsAsync(options).ConfigureAwait(false);
        await using (storage.ConfigureAwait(false))
        {
            var result = create
                ? await accounts.AddAsync(jid, password, CancellationToken.None).ConfigureAwait(false)
                : await accounts.SetPasswordAsync(jid, password, CancellationToken.None).ConfigureAwait(false);
            return await ReportAsync(result, jid, create ? "created" : "password changed", options, stdout, stderr).ConfigureAwait(false);
        }
    }

    public static async Task<int> DelUserAsync(ServerOptions options, string jid, TextWriter stdout, TextWriter stderr)
    {
        var (accounts, storage) = await OpenAccountsAsync(options).ConfigureAwait(false);
        await using (storage.ConfigureAwait(false))
        {
            var result = await accounts.DeleteAsync(jid, CancellationToken.None).ConfigureAwait(false);
            return await ReportAsync(result, jid, "deleted", options, stdout, stderr).ConfigureAwait(false);
        }
    }

    private static async Task<int> ReportAsync(AccountResult result, string jid, string done, ServerOptions options, TextWriter stdout, TextWriter stderr)
    {
        var message = result switch
        {
            AccountResult.Ok => null,
            AccountResult.InvalidJid => $"'{jid}' is not a valid account JID (user@host, no resource)",
            AccountResult.UnknownHost => $"'{jid}': this server does not serve that host (configured: {string.Join(", ", options.Hosts.Select(h => h.Name))})",
            AccountResult.InvalidPassword => "the password is empty or contains characters not allowed (RFC 8265 OpaqueString)",
            AccountResult.Exists => $"account {jid} already exists",
            _ => $"no account {jid}",
        };
        if (message is not null)
        {
            await stderr.WriteLineAsync(message).ConfigureAwait(false);
            return Failed;
        }

        await stdout.WriteLineAsync($"{jid}: {done}").ConfigureAwait(false);
        return Ok;
    }

    private static async Task<string?> ReadPasswordAsync(TextReader stdin, TextWriter stderr)
    {
        if (!Console.IsInputRedirected && ReferenceEquals(stdin, Console.In))
        {
            var first = ReadHidden("Password: ");
            var second = ReadHidden("Repeat password: ");
            if (first != second)
            {
                await stderr.WriteLineAsync("passwords do not match").ConfigureAwait(false);
                return null;
            }

            return first;
        }

        var line = await stdin.ReadLineAsync().ConfigureAwait(false);
        if (string.IsNullOrEmpty(line))
        {
            await stderr.WriteLineAsync("no password given on standard input").ConfigureAwait(false);
            return null;
        }

        return line;
    }

    private static string ReadHidden(string prompt)
    {
        Console.Error.Write(prompt);
        var sb = new StringBuilder();
        while (true)
        {
            var key = Console.ReadKey(intercept: true);
            if (key.Key == ConsoleKey.Enter)
            {
                break;
            }

            if (key.Key == ConsoleKey.Backspace)
            {
                if (sb.Length > 0)
                {
                    sb.Length--;
                }

                continue;
            }

            sb.Append(key.KeyChar);
        }

        Console.Error.WriteLine();
        return sb.ToString();
    }

    public static async Task<int> UsersAsync(ServerOptions options, string? host, TextWriter stdout, TextWriter stderr)
    {
        if (host is not null && !options.Hosts.Any(h => h.Name == host))
        {
            await stderr.WriteLineAsync($"this server does not serve '{host}'").ConfigureAwait(false);
            return Failed;
        }

        var storage = XmppServer.CreateStorage(options);
        await using (storage.ConfigureAwait(false))
        {
            await storage.MigrateAsync(CancellationToken.None).ConfigureAwait(false);
            foreach (var (h, u) in await storage.Users.ListAsync(host, CancellationToken.None).ConfigureAwait(false))
            {
                await stdout.WriteLineAsync($"{u}@{h}").ConfigureAwait(false);
            }
        }

        return Ok;
    }

    public static async Task<int> CheckAsync(ServerOptions options, TextWriter stdout, TextWriter stderr)
    {
        await stdout.WriteLineAsync($"configuration: {options.SourceFile ?? "(built-in defaults)"} OK").ConfigureAwait(false);
        await stdout.WriteLineAsync($"data directory: {options.DataDirectory}").ConfigureAwait(false);
        try
        {
            PrivateFiles.EnsureDirectory(options.DataDirectory);
            var storage = XmppServer.CreateStorage(options);
            await using (storage.ConfigureAwait(false))
            {
                var version = await storage.MigrateAsync(CancellationToken.None).ConfigureAwait(false);
                var count = (await storage.Users.ListAsync(null, CancellationToken.None).ConfigureAwait(false)).Count;
                await stdout.WriteLineAsync($"storage: {storage.Describe()} schema version {version}, {count} accounts").ConfigureAwait(false);
            }

            if (options.Cluster is { } cluster)
            {
#if CLUSTER
                await Cluster.ClusterSchema.EnsureAsync(options.Storage.ConnectionString!, CancellationToken.None).ConfigureAwait(false);
                var members = await Cluster.ClusterSchema.DescribeMembersAsync(options.Storage.ConnectionString!, cluster.Id, CancellationToken.None).ConfigureAwait(false);
                await stdout.WriteLineAsync($"cluster {cluster.Id}: this node is {cluster.Node}, silo at {cluster.Address}:{cluster.Port}; {members.Count} member record(s) in the membership table").ConfigureAwait(false);
                foreach (var member in members)
                {
                    await stdout.WriteLineAsync("  " + member).ConfigureAwait(false);
                }
#else
                throw new ConfigException("this build of xmppserver (Native AOT) has no cluster mode: cluster nodes run the JIT build (README, \"Running a cluster\")");
#endif
            }

            using var certs = CertificateStore.Load(options);
            foreach (var c in certs.All)
            {
                await stdout.WriteLineAsync($"host {c.Host}: certificate {c.CertificateFile}{(c.Generated ? " (generated now)" : string.Empty)}, valid until {c.Certificate.NotAfter:yyyy-MM-dd}, SHA-256 {c.Fingerprint}, SHA-1 {c.FingerprintSha1}").ConfigureAwait(false);
            }

            foreach (var line in Tls.Acme.AcmePlan.Describe(options))
            {
                await stdout.WriteLineAsync(line).ConfigureAwait(false);
            }

            using var logs = new LogFactory();
            foreach (var m in options.Modules.Keys)
            {
                if (!Modules.ModuleHost.Available.ContainsKey(m))
                {
                    throw new ConfigException($"unknown module '{m}'");
                }
            }

            await stdout.WriteLineAsync("modules: " + string.Join(", ", options.Modules.Keys)).ConfigureAwait(false);
            foreach (var l in options.Listeners)
            {
                foreach (var ep in XmppServer.Resolve(l))
                {
                    await stdout.WriteLineAsync($"would listen: {l.Kind.Name()} on {ep}").ConfigureAwait(false);
                }
            }

            await stdout.WriteLineAsync($"TLS: {(options.Tls.Required ? "required" : "optional")} (TLS 1.2 and 1.3)").ConfigureAwait(false);
            return Ok;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidOperationException or System.Data.Common.DbException)
        {
            await stderr.WriteLineAsync("check failed: " + ex.Message).ConfigureAwait(false);
            return Failed;
        }
    }
}
