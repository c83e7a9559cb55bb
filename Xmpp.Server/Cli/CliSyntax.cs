using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Parsing;

namespace Xmpp.Server.Cli;

/// <summary>
/// The grammar of the xmppserver command (System.CommandLine): its commands, their arguments and
/// options, and the descriptions its help shows. <see cref="CommandLine"/> gives the commands their
/// actions; tests parse with it alone.
/// </summary>
internal sealed class CliSyntax
{
    public CliSyntax()
    {
        AddUser = new("adduser", "create an account; without PASSWORD, reads it from stdin (or asks for it, without echo)") { AddUserJid, AddUserPassword };
        Passwd = new("passwd", "change an account's password; PASSWORD as for adduser") { PasswdJid, PasswdPassword };
        DelUser = new("deluser", "delete an account") { DelUserJid };
        Users = new("users", "list accounts (of HOST only, when given)") { UsersHost };
        Import = new(
            "import",
            "accounts with their SCRAM keys or passwords, rosters, vCards, private XML, offline messages, PEP and archives from XEP-0227: " +
            "a file, or a folder (Prosody's user@host.xml files, ejabberd's export_piefxis folder)")
        {
            ImportPath,
        };
        Export = new(
            "export",
            "the same to a XEP-0227 file, or one user@host.xml per account in a folder (Prosody's layout); options [--host H] [--per-user] " +
            "[--ejabberd]: one host's accounts, one file per account, SCRAM-SHA-1 keys encoded the way ejabberd's import_piefxis reads them")
        {
            ExportPath,
            ExportHost,
            PerUser,
            Ejabberd,
        };
        Invite = new(
            "invite",
            "print an invitation link (the invitation page and the xmpp: URI) that lets someone create an account (XEP-0401, XEP-0445); " +
            "with --roster JID, a contact invitation of that account (XEP-0379), which creates an account too (ibr=y). Needs the invites module")
        {
            InviteHost,
            InviteRoster,
            InviteUses,
            InviteExpires,
        };
        Root = new("xmppserver", "The XMPP server. Without a command it runs the server.")
        {
            new HelpOption(),
            Config,
            Run,
            AddUser,
            Passwd,
            DelUser,
            Users,
            Check,
            Reload,
            Drain,
            Import,
            Export,
            Invite,
            Compliance,
            Version,
            Help,
        };
    }

    /// <summary>The root: without a command, it runs the server.</summary>
    public Command Root { get; }

    /// <summary>--config FILE (-c), taken by every command, before or after it.</summary>
    public Option<string> Config { get; } = new("--config", "-c")
    {
        Description = "configuration file (default: ./server.config.xml if present, else built-in defaults)",
        HelpName = "FILE",
        Recursive = true,
    };

    public Command Run { get; } = new("run", "start the server (the default)");

    public Command AddUser { get; }

    public Argument<string> AddUserJid { get; } = Jid();

    public Argument<string?> AddUserPassword { get; } = Password();

    public Command Passwd { get; }

    public Argument<string> PasswdJid { get; } = Jid();

    public Argument<string?> PasswdPassword { get; } = Password();

    public Command DelUser { get; }

    public Argument<string> DelUserJid { get; } = Jid();

    public Command Users { get; }

    public Argument<string?> UsersHost { get; } = new("HOST") { Description = "only this host's accounts", Arity = ArgumentArity.ZeroOrOne };

    public Command Check { get; } = new("check", "validate configuration, certificates and storage; show what would listen");

    public Command Reload { get; } = new("reload", "make the running server reload its configuration (as SIGHUP does) and show the outcome");

    public Command Drain { get; } = new("drain", "cluster mode: move the running node's resumable sessions and occupied rooms to the other nodes, then stop it (as SIGTERM does)");

    public Command Import { get; }

    public Argument<string> ImportPath { get; } = new("PATH") { Description = "a XEP-0227 file, or a folder of them" };

    public Command Export { get; }

    public Argument<string> ExportPath { get; } = new("PATH") { Description = "a file, or a folder (one user@host.xml per account)" };

    public Option<string> ExportHost { get; } = new("--host") { Description = "only the accounts of this host", HelpName = "H" };

    public Option<bool> PerUser { get; } = new("--per-user") { Description = "one user@host.xml per account (Prosody's layout), as for a folder" };

    public Option<bool> Ejabberd { get; } = new("--ejabberd") { Description = "SCRAM-SHA-1 keys encoded the way ejabberd's import_piefxis reads them" };

    public Command Invite { get; }

    public Option<string> InviteHost { get; } = new("--host") { Description = "the host to create the account on (default: the first host, or the --roster account's)", HelpName = "H" };

    public Option<string> InviteRoster { get; } = new("--roster") { Description = "a contact invitation of this local account: the new account and it are subscribed to each other", HelpName = "JID" };

    public Option<int> InviteUses { get; } = new("--uses") { Description = "how many accounts it may create (default 1)", HelpName = "N", DefaultValueFactory = _ => 1 };

    public Option<int?> InviteExpires { get; } = new("--expires") { Description = "days it stays valid (default: the invites module's expires, 7)", HelpName = "DAYS" };

    public Command Compliance { get; } = new("compliance", "print the table of implemented specifications (as in README)");

    public Command Version { get; } = new("version", "print the version");

    /// <summary>"xmppserver help", as -h and --help (hidden from the list of commands).</summary>
    public Command Help { get; } = new("help", "show this help") { Hidden = true };

    /// <summary>
    /// Parses the arguments. An argument starting with '@' is an argument (a password may), not a response
    /// file; and -xy is not -x -y.
    /// </summary>
    public ParseResult Parse(IReadOnlyList<string> args) =>
        Root.Parse(args, new ParserConfiguration { ResponseFileTokenReplacer = null, EnablePosixBundling = false });

    /// <summary>
    /// What the parser took as a command's argument although it looks like an option (--something): a
    /// mistyped or misplaced option must not become a password or a path. After "--" anything goes.
    /// </summary>
    public static IEnumerable<string> UnknownOptions(ParseResult parse)
    {
        var arguments = parse.CommandResult.Children.OfType<ArgumentResult>().SelectMany(a => a.Tokens).ToHashSet();
        foreach (var token in parse.Tokens.TakeWhile(t => t.Type != TokenType.DoubleDash))
        {
            if (arguments.Contains(token) && token.Value.StartsWith("--", StringComparison.Ordinal))
            {
                yield return token.Value;
            }
        }
    }

    private static Argument<string> Jid() => new("JID") { Description = "the account's address, user@host" };

    private static Argument<string?> Password() => new("PASSWORD")
    {
        Description = "its password; read from stdin (or asked for, without echo) when omitted",
        Arity = ArgumentArity.ZeroOrOne,
    };
}
