using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Xmpp.Bench;

// xmppbench SCENARIO --host H --port P --domain D [--prefix bench] [--password pw] [options]
//   login    --count N --concurrency C        N accounts log in (STARTTLS, SCRAM-SHA-1, bind, presence)
//   messages --pairs K --messages M --window W  K pairs exchange M messages each way, timestamped
//            [--rate R]                        at R messages/s over all senders (a fixed schedule) instead of flat out
//            [--host2 H --port2 P --placement together|split]  over two cluster nodes (bench/cluster)
//   idle     --count N --concurrency C --pid P   N idle sessions; the server's RSS per session
//   fanout   --count N --roster R --concurrency C  N accounts whose rosters hold R mutual contacts all log in
//   offline  --senders S --recipients R --per-recipient M   S accounts send M messages to each of R offline
//            accounts (PREFIX(S+1)..), which then log in: store and fetch rates, missing and duplicates
//   muc      --rooms R --occupants O --messages M --window W --service S   R rooms of O occupants on S; each
//            occupant sends M groupchat messages, delivered to all O: deliveries/s, latency, missing, duplicates
//   provision --accounts N --fanout F --roster R --out DIR   writes DIR/accounts.xml (XEP-0227, for our server
//            and ejabberd) and DIR/prosody/DOMAIN/{accounts,roster}/*.dat (Prosody's internal storage)
// Every scenario: --scram-cache FILE keeps SCRAM salted passwords across runs (RFC 5802 §5.1), as clients do;
// --tls-resume false makes every TLS handshake a full one (by default clients resume the sessions of earlier ones).
// Prints one JSON object with the figures on the last line; progress goes to stderr.
var options = Options.Parse(args);
using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(options.Int("timeout", 600)));
var scramCache = options.Get("scram-cache", string.Empty) is { Length: > 0 } cachePath ? cachePath : null;
var target = new Target(options.Get("host", "127.0.0.1"), options.Int("port", 5222), options.Get("domain", "localhost"), options.Get("prefix", "bench"), options.Get("password", "bench-pass"), ScramCache.Load(scramCache))
{
    TlsResume = options.Get("tls-resume", "true") != "false",
};
var result = args.Length == 0 ? null : args[0] switch
{
    "login" => await Scenarios.LoginAsync(target, options.Int("count", 1000), options.Int("concurrency", 50), cts.Token),
    "messages" => await Scenarios.MessagesAsync(target, options.Int("pairs", 50), options.Int("messages", 1000), options.Int("window", 50), cts.Token,
        options.Int("port2", 0) is > 0 and var port2 ? target with { Host = options.Get("host2", target.Host), Port = port2 } : null, options.Get("placement", "together"), options.Int("rate", 0)),
    "idle" => await Scenarios.IdleAsync(target, options.Int("count", 1000), options.Int("concurrency", 50), options.Int("pid", 0), options.Int("hold", 0), cts.Token, options.Int("first", 1)),
    "offline" => await Scenarios.OfflineAsync(target, options.Int("senders", 10), options.Int("recipients", 100), options.Int("per-recipient", 100), cts.Token),
    "muc" => await Scenarios.MucAsync(target, options.Int("rooms", 10), options.Int("occupants", 20), options.Int("messages", 100), options.Int("window", 10), options.Get("service", "conference.localhost"), cts.Token),
    "fanout" => await Scenarios.FanoutAsync(target, options.Int("count", 500), options.Int("roster", 50), options.Int("concurrency", 50), cts.Token),
    "provision" => Provision.Write(target, options.Int("accounts", 1000), options.Int("fanout", 200), options.Int("roster", 50), options.Get("out", ".")),
    _ => null,
};
if (result is null)
{
    Console.Error.WriteLine("usage: xmppbench login|messages|idle|fanout --host H --port P --domain D [--prefix P] [--password PW] ...");
    return 2;
}

target.Scram.Save(scramCache);
result["cpu_seconds_generator"] = Math.Round(Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds, 2);
Console.WriteLine(JsonSerializer.Serialize(result));
return result.TryGetValue("errors", out var errors) && Convert.ToInt64(errors, CultureInfo.InvariantCulture) > 0 ? 1 : 0;

internal sealed class Options
{
    private readonly Dictionary<string, string> _values = new(StringComparer.Ordinal);

    public static Options Parse(string[] args)
    {
        var o = new Options();
        for (var i = 1; i + 1 < args.Length; i += 2)
        {
            o._values[args[i].TrimStart('-')] = args[i + 1];
        }

        return o;
    }

    public string Get(string name, string fallback) => _values.GetValueOrDefault(name, fallback);

    public int Int(string name, int fallback) =>
        _values.TryGetValue(name, out var v) ? int.Parse(v, CultureInfo.InvariantCulture) : fallback;
}
