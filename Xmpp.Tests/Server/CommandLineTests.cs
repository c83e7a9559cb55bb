using System.CommandLine;
using Xmpp.Server.Cli;

namespace Xmpp.Tests.Server;

/// <summary>
/// The xmppserver command line: what each command line parses to, the exit codes of mistakes (2, with
/// the mistake and the command's help on standard error), and the account commands end to end.
/// </summary>
public sealed class CommandLineTests
{
    [TestCase(new string[0], "xmppserver")]
    [TestCase(new[] { "run" }, "run")]
    [TestCase(new[] { "adduser", "alice@localhost" }, "adduser")]
    [TestCase(new[] { "passwd", "alice@localhost", "pw" }, "passwd")]
    [TestCase(new[] { "deluser", "alice@localhost" }, "deluser")]
    [TestCase(new[] { "users" }, "users")]
    [TestCase(new[] { "users", "localhost" }, "users")]
    [TestCase(new[] { "check" }, "check")]
    [TestCase(new[] { "reload" }, "reload")]
    [TestCase(new[] { "drain" }, "drain")]
    [TestCase(new[] { "import", "dump.xml" }, "import")]
    [TestCase(new[] { "export", "dump.xml" }, "export")]
    [TestCase(new[] { "invite" }, "invite")]
    [TestCase(new[] { "invite", "--host", "localhost", "--uses", "3", "--expires", "2" }, "invite")]
    [TestCase(new[] { "invite", "--roster", "alice@localhost" }, "invite")]
    [TestCase(new[] { "compliance" }, "compliance")]
    [TestCase(new[] { "version" }, "version")]
    [TestCase(new[] { "help" }, "help")]
    public void Each_command_parses_to_itself(string[] args, string command)
    {
        var syntax = new CliSyntax();

        // A command with subcommands but no action needs one of them: CommandLine gives the root the server's run.
        syntax.Root.SetAction(_ => CommandLine.Ok);
        var parse = syntax.Parse(args);
        Assert.That(parse.Errors, Is.Empty);
        Assert.That(parse.CommandResult.Command.Name, Is.EqualTo(command));
    }

    [Test]
    public void Arguments_and_options_are_read_wherever_they_stand()
    {
        var s = new CliSyntax();
        var parse = s.Parse(["adduser", "alice@localhost", "s3cret", "--config", "x.xml"]);
        Assert.That((parse.GetValue(s.AddUserJid), parse.GetValue(s.AddUserPassword), parse.GetValue(s.Config)), Is.EqualTo(("alice@localhost", "s3cret", "x.xml")));

        parse = s.Parse(["-c", "y.xml", "adduser", "bob@localhost"]);
        Assert.That((parse.GetValue(s.AddUserJid), parse.GetValue(s.AddUserPassword), parse.GetValue(s.Config)), Is.EqualTo(("bob@localhost", (string?)null, "y.xml")));

        parse = s.Parse(["export", "--per-user", "out", "--host", "example.org", "--ejabberd"]);
        Assert.That(parse.Errors, Is.Empty);
        Assert.That((parse.GetValue(s.ExportPath), parse.GetValue(s.ExportHost), parse.GetValue(s.PerUser), parse.GetValue(s.Ejabberd)), Is.EqualTo(("out", "example.org", true, true)));

        parse = s.Parse(["export", "out"]);
        Assert.That((parse.GetValue(s.ExportHost), parse.GetValue(s.PerUser), parse.GetValue(s.Ejabberd)), Is.EqualTo(((string?)null, false, false)));
        Assert.That(s.Parse(["users"]).GetValue(s.UsersHost), Is.Null);
    }

    [TestCase("@secret")]
    [TestCase("-secret")]
    [TestCase("[secret]")]
    public void A_password_may_look_like_anything_but_an_option(string password)
    {
        var s = new CliSyntax();
        var parse = s.Parse(["passwd", "alice@localhost", password]);
        Assert.That(parse.Errors, Is.Empty);
        Assert.That(CliSyntax.UnknownOptions(parse), Is.Empty);
        Assert.That(parse.GetValue(s.PasswdPassword), Is.EqualTo(password));
    }

    [Test]
    public void After_a_double_dash_an_argument_may_start_with_dashes()
    {
        var s = new CliSyntax();
        var parse = s.Parse(["adduser", "alice@localhost", "--", "--secret"]);
        Assert.That(parse.Errors, Is.Empty);
        Assert.That(CliSyntax.UnknownOptions(parse), Is.Empty);
        Assert.That(parse.GetValue(s.AddUserPassword), Is.EqualTo("--secret"));
    }

    [TestCase(new[] { "adduser" }, "Required argument 'JID' missing for command: 'adduser'.")]
    [TestCase(new[] { "passwd" }, "Required argument 'JID' missing for command: 'passwd'.")]
    [TestCase(new[] { "deluser" }, "Required argument 'JID' missing for command: 'deluser'.")]
    [TestCase(new[] { "import" }, "Required argument 'PATH' missing for command: 'import'.")]
    [TestCase(new[] { "export" }, "Required argument 'PATH' missing for command: 'export'.")]
    [TestCase(new[] { "export", "out.xml", "--host" }, "Required argument missing for option: '--host'.")]
    [TestCase(new[] { "--config" }, "Required argument missing for option: '--config'.")]
    [TestCase(new[] { "users", "--config" }, "Required argument missing for option: '--config'.")]
    [TestCase(new[] { "adduser", "alice@localhost", "--hots" }, "unknown option --hots")]
    [TestCase(new[] { "users", "--per-user" }, "unknown option --per-user")]
    [TestCase(new[] { "--frobnicate" }, "Unrecognized command or argument '--frobnicate'.")]
    [TestCase(new[] { "frobnicate" }, "Unrecognized command or argument 'frobnicate'.")]
    [TestCase(new[] { "run", "now" }, "Unrecognized command or argument 'now'.")]
    [TestCase(new[] { "deluser", "a@localhost", "b@localhost" }, "Unrecognized command or argument 'b@localhost'.")]
    [TestCase(new[] { "check", "--per-user" }, "Unrecognized command or argument '--per-user'.")]
    public async Task Mistakes_exit_with_2_and_say_what_is_wrong(string[] args, string message)
    {
        var (code, stdout, stderr) = await RunAsync(args);
        Assert.That(code, Is.EqualTo(CommandLine.Usage));
        Assert.That(stdout, Is.Empty);
        Assert.That(stderr.Split('\n')[0].TrimEnd(), Is.EqualTo(message));
        Assert.That(stderr, Does.Contain("Usage:"), "the command's help follows");
    }

    [TestCase("--help")]
    [TestCase("-h")]
    [TestCase("help")]
    public async Task Help_lists_every_command_and_the_config_option(string help)
    {
        var (code, stdout, stderr) = await RunAsync([help]);
        Assert.That(code, Is.EqualTo(CommandLine.Ok));
        Assert.That(stderr, Is.Empty);
        foreach (var command in new[] { "run", "adduser <JID>", "passwd <JID>", "deluser <JID>", "users", "check", "reload", "drain", "import <PATH>", "export <PATH>", "compliance", "version", "--config <FILE>" })
        {
            Assert.That(stdout, Does.Contain(command));
        }
    }

    [Test]
    public async Task A_command_s_help_shows_its_arguments_and_options_even_when_they_are_missing()
    {
        var (code, stdout, _) = await RunAsync(["export", "--help"]);
        Assert.That(code, Is.EqualTo(CommandLine.Ok));
        Assert.That(stdout, Does.Contain("--host <H>").And.Contain("--per-user").And.Contain("--ejabberd").And.Contain("<PATH>"));
        (code, stdout, _) = await RunAsync(["adduser", "-h"]);
        Assert.That(code, Is.EqualTo(CommandLine.Ok));
        Assert.That(stdout, Does.Contain("xmppserver adduser <JID> [<PASSWORD>]"));
    }

    [Test]
    public async Task Version_and_compliance_need_no_configuration()
    {
        var missing = Path.Combine(Path.GetTempPath(), "no-such-" + Guid.NewGuid().ToString("N") + ".xml");
        var (code, stdout, _) = await RunAsync(["version", "--config", missing]);
        Assert.That((code, stdout), Is.EqualTo((CommandLine.Ok, "xmppserver " + Xmpp.Server.Modules.Version.VersionModule.ProductVersion + Environment.NewLine)));
        (code, stdout, _) = await RunAsync(["compliance"]);
        Assert.That(code, Is.EqualTo(CommandLine.Ok));
        Assert.That(stdout, Does.Contain("| RFC 6120"));
    }

    [Test]
    public async Task Configuration_errors_exit_with_2_and_name_the_file_line_and_element()
    {
        var dir = Directory.CreateTempSubdirectory("xmpp-cli-").FullName;
        try
        {
            var (code, _, stderr) = await RunAsync(["users", "--config", Path.Combine(dir, "missing.xml")]);
            Assert.That(code, Is.EqualTo(CommandLine.Usage));
            Assert.That(stderr, Does.StartWith("configuration error: ").And.Contain("configuration file not found"));

            var config = Path.Combine(dir, "server.config.xml");
            await File.WriteAllTextAsync(config, "<xmppserver>\n<host name='localhost'/>\n<listen type='c2s' port='99999'/>\n</xmppserver>");
            (code, _, stderr) = await RunAsync(["check", "-c", config]);
            Assert.That(code, Is.EqualTo(CommandLine.Usage));
            Assert.That(stderr.TrimEnd(), Is.EqualTo($"configuration error: {config}:3: <listen>: attribute 'port' must be a whole number from 0 to 65535, not '99999'"));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Test]
    public async Task Account_commands_work_and_fail_with_1()
    {
        var dir = Directory.CreateTempSubdirectory("xmpp-cli-").FullName;
        try
        {
            var config = Path.Combine(dir, "server.config.xml");
            await File.WriteAllTextAsync(config, "<xmppserver><host name='localhost'/><listen type='c2s' address='127.0.0.1' port='5999'/><data-dir path='data'/></xmppserver>");
            string[] C(params string[] args) => [.. args, "--config", config];

            Assert.That(await RunAsync(C("adduser", "alice@localhost", "wonderland")), Is.EqualTo((CommandLine.Ok, "alice@localhost: created\n", string.Empty)).Using<(int, string, string)>(Normalised));
            Assert.That(await RunAsync(C("adduser", "alice@localhost", "again")), Is.EqualTo((CommandLine.Failed, string.Empty, "account alice@localhost already exists\n")).Using<(int, string, string)>(Normalised));
            Assert.That(await RunAsync(C("adduser", "bob@localhost"), "from-stdin\n"), Is.EqualTo((CommandLine.Ok, "bob@localhost: created\n", string.Empty)).Using<(int, string, string)>(Normalised));
            Assert.That(await RunAsync(C("adduser", "carol@localhost"), string.Empty), Is.EqualTo((CommandLine.Failed, string.Empty, "no password given on standard input\n")).Using<(int, string, string)>(Normalised));
            Assert.That(await RunAsync(C("adduser", "dave@elsewhere", "pw")), Is.EqualTo((CommandLine.Failed, string.Empty, "'dave@elsewhere': this server does not serve that host (configured: localhost)\n")).Using<(int, string, string)>(Normalised));
            Assert.That(await RunAsync(C("users")), Is.EqualTo((CommandLine.Ok, "alice@localhost\nbob@localhost\n", string.Empty)).Using<(int, string, string)>(Normalised));
            Assert.That(await RunAsync(C("users", "elsewhere")), Is.EqualTo((CommandLine.Failed, string.Empty, "this server does not serve 'elsewhere'\n")).Using<(int, string, string)>(Normalised));
            Assert.That(await RunAsync(C("passwd", "bob@localhost", "@new-one")), Is.EqualTo((CommandLine.Ok, "bob@localhost: password changed\n", string.Empty)).Using<(int, string, string)>(Normalised));
            Assert.That(await RunAsync(C("deluser", "bob@localhost")), Is.EqualTo((CommandLine.Ok, "bob@localhost: deleted\n", string.Empty)).Using<(int, string, string)>(Normalised));
            Assert.That(await RunAsync(C("deluser", "bob@localhost")), Is.EqualTo((CommandLine.Failed, string.Empty, "no account bob@localhost\n")).Using<(int, string, string)>(Normalised));

            var (code, stdout, _) = await RunAsync(C("check"));
            Assert.That(code, Is.EqualTo(CommandLine.Ok));
            Assert.That(stdout, Does.Contain("would listen: c2s (STARTTLS) on 127.0.0.1:5999").And.Contain("1 accounts"));

            var dump = Path.Combine(dir, "dump.xml");
            (code, stdout, _) = await RunAsync(C("export", dump, "--host", "localhost"));
            Assert.That(code, Is.EqualTo(CommandLine.Ok));
            Assert.That(stdout, Does.StartWith("exported 1 accounts"));
            Assert.That(await RunAsync(C("deluser", "alice@localhost")), Is.EqualTo((CommandLine.Ok, "alice@localhost: deleted\n", string.Empty)).Using<(int, string, string)>(Normalised));
            (code, stdout, _) = await RunAsync(C("import", dump));
            Assert.That(code, Is.EqualTo(CommandLine.Ok));
            Assert.That(stdout, Does.StartWith("imported 1 new and 0 existing accounts"));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static bool Normalised((int Code, string Out, string Error) a, (int Code, string Out, string Error) b) =>
        a.Code == b.Code && a.Out.ReplaceLineEndings("\n") == b.Out.ReplaceLineEndings("\n") && a.Error.ReplaceLineEndings("\n") == b.Error.ReplaceLineEndings("\n");

    private static async Task<(int Code, string Out, string Error)> RunAsync(string[] args, string stdin = "")
    {
        using var input = new StringReader(stdin);
        await using var output = new StringWriter();
        await using var error = new StringWriter();
        var code = await CommandLine.RunAsync(args, input, output, error);
        return (code, output.ToString(), error.ToString());
    }
}
