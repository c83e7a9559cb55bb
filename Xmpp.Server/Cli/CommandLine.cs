using System.CommandLine;
using System.CommandLine.Help;
using Xmpp.Server.Config;
using Xmpp.Server.Modules.Version;

namespace Xmpp.Server.Cli;

/// <summary>
/// The xmppserver command: run (the default), adduser, passwd, deluser, users, check, reload, import,
/// export, invite, compliance, version. Parsed by System.CommandLine (<see cref="CliSyntax"/>); the commands'
/// work is in <see cref="ServerCommands"/>.
/// </summary>
public static class CommandLine
{
    /// <summary>Exit code: success.</summary>
    public const int Ok = 0;

    /// <summary>Exit code: the operation failed (account exists, no such account, a file that does not import ...).</summary>
    public const int Failed = 1;

    /// <summary>Exit code: a usage or configuration error.</summary>
    public const int Usage = 2;

    /// <summary>
    /// Runs the command line. <paramref name="stderrIsTerminal"/>: whether standard error is a terminal
    /// (<c>!Console.IsErrorRedirected</c>), where import and export show their progress; <paramref name="time"/>
    /// times it (the system's clock by default).
    /// </summary>
    public static async Task<int> RunAsync(string[] args, TextReader stdin, TextWriter stdout, TextWriter stderr, bool stderrIsTerminal = false, TimeProvider? time = null)
    {
        var syntax = new CliSyntax();
        Bind(syntax, stdin, stdout, stderr, () => new ProgressReporter(stderr, stderrIsTerminal, time ?? TimeProvider.System));
        var parse = syntax.Parse(args);
        var mistakes = parse.Errors.Select(e => e.Message).Concat(CliSyntax.UnknownOptions(parse).Select(o => $"unknown option {o}")).ToList();
        if (mistakes.Count > 0 && parse.Action is not HelpAction)
        {
            foreach (var mistake in mistakes)
            {
                await stderr.WriteLineAsync(mistake).ConfigureAwait(false);
            }

            await stderr.WriteLineAsync().ConfigureAwait(false);
            await WriteHelpAsync(syntax, parse.CommandResult.Command, stderr).ConfigureAwait(false);
            return Usage;
        }

        var invocation = new InvocationConfiguration
        {
            Output = stdout,
            Error = stderr,

            // The server handles SIGINT and SIGTERM itself (a graceful shutdown), and exceptions are not usage errors.
            ProcessTerminationTimeout = null,
            EnableDefaultExceptionHandler = false,
        };
        return await parse.InvokeAsync(invocation, CancellationToken.None).ConfigureAwait(false);
    }

    public static ServerOptions LoadOptions(string? configFile)
    {
        if (configFile is not null)
        {
            return ConfigLoader.Load(configFile);
        }

        return File.Exists("server.config.xml") ? ConfigLoader.Load("server.config.xml") : new ServerOptions();
    }

    /// <summary>Gives each command its action, writing to the given streams.</summary>
    private static void Bind(CliSyntax s, TextReader stdin, TextWriter stdout, TextWriter stderr, Func<ProgressReporter> progress)
    {
        Func<ParseResult, Task<int>> WithOptions(Func<ParseResult, ServerOptions, Task<int>> command) =>
            parse => WithOptionsAsync(parse.GetValue(s.Config), options => command(parse, options), stderr);

        s.Root.SetAction(WithOptions((_, o) => ServerCommands.RunServerAsync(o, stdout)));
        s.Run.SetAction(WithOptions((_, o) => ServerCommands.RunServerAsync(o, stdout)));
        s.AddUser.SetAction(WithOptions((p, o) => ServerCommands.SetPasswordAsync(o, p.GetRequiredValue(s.AddUserJid), p.GetValue(s.AddUserPassword), stdin, stdout, stderr, create: true)));
        s.Passwd.SetAction(WithOptions((p, o) => ServerCommands.SetPasswordAsync(o, p.GetRequiredValue(s.PasswdJid), p.GetValue(s.PasswdPassword), stdin, stdout, stderr, create: false)));
        s.DelUser.SetAction(WithOptions((p, o) => ServerCommands.DelUserAsync(o, p.GetRequiredValue(s.DelUserJid), stdout, stderr)));
        s.Users.SetAction(WithOptions((p, o) => ServerCommands.UsersAsync(o, p.GetValue(s.UsersHost), stdout, stderr)));
        s.Check.SetAction(WithOptions((_, o) => ServerCommands.CheckAsync(o, stdout, stderr)));
        s.Reload.SetAction(WithOptions((_, o) => ServerCommands.ReloadAsync(o, stdout, stderr)));
        s.Drain.SetAction(WithOptions((_, o) => ServerCommands.DrainAsync(o, stdout, stderr)));
        s.Import.SetAction(WithOptions((p, o) => ServerCommands.ImportAsync(o, p.GetRequiredValue(s.ImportPath), stdout, stderr, progress())));
        s.Export.SetAction(WithOptions((p, o) => ServerCommands.ExportAsync(o, p.GetRequiredValue(s.ExportPath), p.GetValue(s.ExportHost), p.GetValue(s.PerUser), p.GetValue(s.Ejabberd), stdout, stderr, progress())));

        s.Invite.SetAction(WithOptions((p, o) => ServerCommands.InviteAsync(o, p.GetValue(s.InviteHost), p.GetValue(s.InviteRoster), p.GetValue(s.InviteUses), p.GetValue(s.InviteExpires), stdout, stderr)));

        // Neither needs the configuration.
        s.Compliance.SetAction(async _ =>
        {
            // The README's compliance table, from the code's own declarations.
            await stdout.WriteAsync(Modules.Compliance.Markdown()).ConfigureAwait(false);
            return Ok;
        });
        s.Version.SetAction(async _ =>
        {
            await stdout.WriteLineAsync("xmppserver " + VersionModule.ProductVersion).ConfigureAwait(false);
            return Ok;
        });
        s.Help.SetAction(async _ =>
        {
            await WriteHelpAsync(s, s.Root, stdout).ConfigureAwait(false);
            return Ok;
        });
    }

    /// <summary>Loads the configuration and runs the command; configuration errors exit with <see cref="Usage"/>, storage errors with <see cref="Failed"/>.</summary>
    private static async Task<int> WithOptionsAsync(string? configFile, Func<ServerOptions, Task<int>> command, TextWriter stderr)
    {
        ServerOptions? options = null;
        try
        {
            options = LoadOptions(configFile);
            return await command(options).ConfigureAwait(false);
        }
        catch (ConfigException ex)
        {
            await stderr.WriteLineAsync("configuration error: " + ex.Message).ConfigureAwait(false);
            return Usage;
        }
        catch (System.Data.Common.DbException ex) when (options is not null)
        {
            // PostgreSQL unreachable or refusing us, a damaged SQLite file: say so, without a stack trace.
            await stderr.WriteLineAsync($"storage error ({options.Storage.Provider}): {ex.Message}").ConfigureAwait(false);
            return Failed;
        }
    }

    /// <summary>The help of a command (System.CommandLine's, as -h prints it) to a writer of choice.</summary>
    private static Task<int> WriteHelpAsync(CliSyntax syntax, Command command, TextWriter output)
    {
        var path = new Stack<string>();
        for (var c = command; c is not null && c != syntax.Root; c = c.Parents.OfType<Command>().FirstOrDefault())
        {
            path.Push(c.Name);
        }

        return syntax.Parse([.. path, "--help"]).InvokeAsync(new InvocationConfiguration { Output = output, ProcessTerminationTimeout = null });
    }
}
