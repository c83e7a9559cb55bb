using Xmpp.Server.Cli;

Xmpp.Server.Hosting.RuntimeTuning.Apply();

// Standard error not redirected: a terminal, where import and export show their progress.
return await CommandLine.RunAsync(args, Console.In, Console.Out, Console.Error, stderrIsTerminal: !Console.IsErrorRedirected).ConfigureAwait(false);
