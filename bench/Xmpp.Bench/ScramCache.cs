using System.Collections.Concurrent;
using System.Globalization;
using Xmpp.Core.Sasl;

namespace Xmpp.Bench;

/// <summary>
/// SaltedPassword per account, salt and iteration count, kept across the generator's runs in a file
/// (--scram-cache). RFC 5802 §5.1 allows clients to cache it, and real clients reconnect this way; without it
/// the generator spends more CPU on PBKDF2 (2.6 ms per SCRAM-SHA-1 login at 4096 iterations here) than the
/// server spends on the whole login, and the login figures measure the generator instead of the server.
/// A login whose salt is new (first login, another server's salt) computes it and adds it.
/// </summary>
internal sealed class ScramCache
{
    private readonly ConcurrentDictionary<string, byte[]> _keys = new(StringComparer.Ordinal);

    public static ScramCache Load(string? path)
    {
        var cache = new ScramCache();
        if (path is not null && File.Exists(path))
        {
            foreach (var line in File.ReadLines(path))
            {
                var tab = line.LastIndexOf('\t');
                if (tab > 0)
                {
                    cache._keys[line[..tab]] = Convert.FromHexString(line[(tab + 1)..]);
                }
            }
        }

        return cache;
    }

    public void Save(string? path)
    {
        if (path is not null)
        {
            File.WriteAllLines(path, _keys.Select(kv => kv.Key + "\t" + Convert.ToHexString(kv.Value)));
        }
    }

    public Func<byte[], int, byte[]> For(ScramHash hash, string user, string password) => (salt, iterations) =>
        _keys.GetOrAdd(
            string.Join('\t', hash.MechanismName(), user, Convert.ToBase64String(salt), iterations.ToString(CultureInfo.InvariantCulture)),
            _ => hash.SaltedPassword(password, salt, iterations));
}
