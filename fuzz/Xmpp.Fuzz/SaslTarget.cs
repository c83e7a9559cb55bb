using Xmpp.Core.Sasl;

namespace Xmpp.Fuzz;

/// <summary>
/// SASL message parsing: the mechanism picked by the first byte (PLAIN, SCRAM-SHA-1/256/512 with or
/// without channel binding and with XEP-0474's attribute, or the HT mechanisms of XEP-0484 FAST) gets the
/// rest of the input as a sequence of messages separated by 0xFF. The mechanism must answer each with a
/// challenge, a success or a failure (never an exception), and can only succeed for the account that
/// exists, whose password and token no fuzzer can guess.
/// </summary>
public static class SaslTarget
{
    private static readonly Dictionary<ScramHash, ScramCredential> Credentials = ScramHashes.All.ToDictionary(h => h, h => ScramCredential.Create(h, "r0m3o-and-jul1et!", 4096, new byte[16]));

    public static void Run(byte[] input)
    {
        if (input.Length == 0)
        {
            return;
        }

        var hashes = ScramHashes.All.ToArray();
        var choice = input[0] % 9;
        ValueTask<ScramCredential?> Lookup(string user, ScramHash hash, CancellationToken ct) =>
            ValueTask.FromResult(user == "juliet" ? Credentials[hash] : null);
        ValueTask<IReadOnlyList<string>> Tokens(string user, CancellationToken ct) =>
            ValueTask.FromResult<IReadOnlyList<string>>(user == "juliet" ? ["a-fast-token-nobody-can-guess-0123456789"] : []);
        var advertised = ScramServerMechanism.DowngradeProtection(["SCRAM-SHA-1", "SCRAM-SHA-256"], input.Length % 2 == 0 ? null : [ChannelBindingTypes.TlsExporter]);
        ISaslServerMechanism mechanism = choice switch
        {
            6 => new PlainServerMechanism(Lookup),
            7 => new HtServerMechanism("HT-SHA-256-NONE", Tokens, null),
            8 => new HtServerMechanism("HT-SHA-256-EXPR", Tokens, new FakeBinding()),
            _ => new ScramServerMechanism(hashes[choice % 3], choice >= 3, Lookup, choice >= 3 ? new FakeBinding() : null, advertised: advertised),
        };
        var messages = Split(input.AsMemory(1));
        foreach (var message in messages)
        {
            var step = mechanism.StepAsync(message, CancellationToken.None).AsTask().GetAwaiter().GetResult();
            switch (step.Kind)
            {
                case SaslStepKind.Challenge:
                    continue;
                case SaslStepKind.Success:
                    throw new FuzzFindingException($"{mechanism.Name} succeeded for '{mechanism.Username}' without the password");
                default:
                    return;
            }
        }
    }

    private static List<ReadOnlyMemory<byte>> Split(ReadOnlyMemory<byte> data)
    {
        var list = new List<ReadOnlyMemory<byte>>();
        while (true)
        {
            var i = data.Span.IndexOf((byte)0xFF);
            if (i < 0)
            {
                list.Add(data);
                return list;
            }

            list.Add(data[..i]);
            data = data[(i + 1)..];
        }
    }

    private sealed class FakeBinding : IChannelBindingSource
    {
        public IReadOnlyList<string> SupportedTypes { get; } = [ChannelBindingTypes.TlsExporter, ChannelBindingTypes.TlsServerEndPoint];

        public byte[]? GetBindingData(string type) => type == ChannelBindingTypes.TlsExporter ? new byte[32] : new byte[48];
    }
}
