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

Fuzzer.Run(stream =>
{
    using var buffer = new MemoryStream();
    stream.CopyTo(buffer);
    target(buffer.ToArray());
});
return 0;
