// The methods a Native AOT build instrumented for reachability ran (bench/aot-order): reads the compiler's
// response file (its input assemblies) and the reach.mprof the instrumented server wrote at exit (per module:
// its MVID, then one byte per method definition row, 1 when the method ran), and prints one line per method
// that ran: "assembly|namespace.type+nested|method".
//   dotnet run bench/AotReach.cs -- ILC_RSP REACH_MPROF
using System.Reflection.Metadata;
using System.Reflection.Metadata.Ecma335;
using System.Reflection.PortableExecutable;

if (args.Length != 2)
{
    Console.Error.WriteLine("usage: dotnet run bench/AotReach.cs -- ILC_RSP REACH_MPROF");
    return 2;
}

var modules = new Dictionary<Guid, string>();
foreach (var line in File.ReadAllLines(args[0]))
{
    var path = line.StartsWith("-r:", StringComparison.Ordinal) ? line[3..] : line;
    if (path.StartsWith('-') || !path.EndsWith(".dll", StringComparison.Ordinal))
    {
        continue;
    }

    var directory = Path.GetDirectoryName(path);
    if (directory is null || !Directory.Exists(directory))
    {
        continue;
    }

    foreach (var file in Directory.GetFiles(directory, Path.GetFileName(path)))
    {
        using var pe = new PEReader(File.OpenRead(file));
        if (pe.HasMetadata)
        {
            var md = pe.GetMetadataReader();
            modules[md.GetGuid(md.GetModuleDefinition().Mvid)] = file;
        }
    }
}

var data = File.ReadAllBytes(args[1]);
if (data.Length < 4 || BitConverter.ToInt32(data, 0) != data.Length)
{
    Console.Error.WriteLine("not a reach.mprof: " + args[1]);
    return 1;
}

var position = 4;
while (position + 20 <= data.Length)
{
    var mvid = new Guid(data.AsSpan(position, 16));
    var count = BitConverter.ToInt32(data, position + 16);
    var states = data.AsSpan(position + 20, count).ToArray();
    position += 20 + count;
    if (!modules.TryGetValue(mvid, out var file))
    {
        Console.Error.WriteLine($"module {mvid} is not among the compiler's inputs");
        continue;
    }

    using var pe = new PEReader(File.OpenRead(file));
    var md = pe.GetMetadataReader();
    var assembly = md.GetString(md.GetAssemblyDefinition().Name);
    for (var row = 1; row < count; row++)
    {
        if (states[row] != 0)
        {
            var method = md.GetMethodDefinition(MetadataTokens.MethodDefinitionHandle(row));
            Console.WriteLine($"{assembly}|{TypeName(md, method.GetDeclaringType())}|{md.GetString(method.Name)}");
        }
    }
}

return 0;

static string TypeName(MetadataReader md, TypeDefinitionHandle handle)
{
    var type = md.GetTypeDefinition(handle);
    var name = md.GetString(type.Name);
    var outer = type.GetDeclaringType();
    if (!outer.IsNil)
    {
        return TypeName(md, outer) + "+" + name;
    }

    var ns = md.GetString(type.Namespace);
    return ns.Length == 0 ? name : ns + "." + name;
}
