using SharpFuzz;
using Xmpp.Fuzz;

// xmppfuzz TARGET            run under afl-fuzz (persistent mode), or once on standard input without it
// xmppfuzz TARGET FILE...    run the target on each file (reproduce a finding)
if (args.Length == 0 || !FuzzTargets.Names.Contains(args[0]))
{
    Console.Error.WriteLine("usage: xmppfuzz " + string.Join('|', FuzzTargets.Names) + " [FILE...]");
    return 2;
}

var target = FuzzTargets.Get(args[0]);
if (args.Length > 1)
{
    foreach (var file in args.Skip(1))
    {
        target(File.ReadAllBytes(file));
        Console.WriteLine("ok " + file);
    }

    return 0;
}

// afl-fuzz hides the target's output: with XMPPFUZZ_LOG set, each failure is also appended to that file.
var log = Environment.GetEnvironmentVariable("XMPPFUZZ_LOG");
Fuzzer.Run(stream =>
{
    using var buffer = new MemoryStream();
    stream.CopyTo(buffer);
    try
    {
        target(buffer.ToArray());
    }
    catch (Exception ex) when (log is not null)
    {
        File.AppendAllText(log, ex + Environment.NewLine + Environment.NewLine);
        throw;
    }
});
return 0;
