using System.Globalization;
using System.Security;
using System.Text;
using Xmpp.Core.Sasl;

namespace Xmpp.Bench;

/// <summary>
/// Writes the benchmark accounts for every server: PREFIX1..PREFIXn (no roster) and fan1..fanF whose rosters
/// hold their R ring neighbours with subscription both. One XEP-0227 file for our server (xmppserver import)
/// and ejabberd (ejabberdctl import_piefxis); Prosody's internal_hashed account and roster files for Prosody.
/// </summary>
internal static class Provision
{
    public static Dictionary<string, object> Write(Target target, int accounts, int fanout, int roster, string dir)
    {
        Directory.CreateDirectory(dir);
        var contacts = Scenarios.Contacts(fanout, roster);
        var users = Enumerable.Range(1, accounts).Select(i => (Name: target.User(i), Contacts: (IEnumerable<string>)[]))
            .Concat(Enumerable.Range(0, fanout).Select(i => (Name: "fan" + (i + 1).ToString(CultureInfo.InvariantCulture), Contacts: (IEnumerable<string>)contacts[i].Order(StringComparer.Ordinal))))
            .ToList();

        var xml = new StringBuilder("<?xml version='1.0' encoding='UTF-8'?>\n<server-data xmlns='urn:xmpp:pie:0'>\n");
        xml.Append("<host jid='").Append(SecurityElement.Escape(target.Domain)).Append("'>\n");
        foreach (var (name, list) in users)
        {
            xml.Append("<user name='").Append(name).Append("' password='").Append(SecurityElement.Escape(target.Password)).Append("'>");
            var items = list.ToList();
            if (items.Count > 0)
            {
                xml.Append("<query xmlns='jabber:iq:roster'>");
                foreach (var c in items)
                {
                    xml.Append("<item jid='").Append(c).Append('@').Append(target.Domain).Append("' subscription='both'/>");
                }

                xml.Append("</query>");
            }

            xml.Append("</user>\n");
        }

        xml.Append("</host>\n</server-data>\n");
        File.WriteAllText(Path.Combine(dir, "accounts.xml"), xml.ToString());

        // Prosody 0.12 internal storage: DATA/HOST/STORE/USER.dat, Lua tables; '.' in names escaped as %2e.
        var host = Path.Combine(dir, "prosody", target.Domain.Replace(".", "%2e", StringComparison.Ordinal));
        Directory.CreateDirectory(Path.Combine(host, "accounts"));
        Directory.CreateDirectory(Path.Combine(host, "roster"));
        foreach (var (name, list) in users)
        {
            File.WriteAllText(Path.Combine(host, "accounts", name + ".dat"), ProsodyAccount(name, target.Password));
            var items = list.ToList();
            if (items.Count == 0)
            {
                continue;
            }

            var lua = new StringBuilder("return {\n\t[false] = {\n\t\t[\"version\"] = 1;\n\t};\n");
            foreach (var c in items)
            {
                lua.Append("\t[").Append(Lua(c + "@" + target.Domain)).Append("] = {\n\t\t[\"subscription\"] = \"both\";\n\t\t[\"groups\"] = {};\n\t};\n");
            }

            File.WriteAllText(Path.Combine(host, "roster", name + ".dat"), lua.Append("};\n").ToString());
        }

        return new() { ["scenario"] = "provision", ["accounts"] = accounts, ["fanout_accounts"] = fanout, ["roster"] = roster };
    }

    /// <summary>
    /// An account as Prosody's default internal_hashed stores it (SCRAM-SHA-1 keys in hex, its salt and
    /// iteration count), so that Prosody authenticates from stored keys as the other two servers do. Plaintext
    /// (internal_plain) would make it run PBKDF2 itself on every login with a new salt.
    /// </summary>
    private static string ProsodyAccount(string name, string password)
    {
        const int Iterations = 4096;
        var salt = "salt-" + name;
        var salted = ScramHash.Sha1.SaltedPassword(password, Encoding.UTF8.GetBytes(salt), Iterations);
        var storedKey = ScramHash.Sha1.Hash(ScramHash.Sha1.Hmac(salted, "Client Key"u8));
        var serverKey = ScramHash.Sha1.Hmac(salted, "Server Key"u8);
        return $"return {{\n\t[\"iteration_count\"] = {Iterations};\n\t[\"salt\"] = {Lua(salt)};\n" +
            $"\t[\"server_key\"] = {Lua(Convert.ToHexStringLower(serverKey))};\n\t[\"stored_key\"] = {Lua(Convert.ToHexStringLower(storedKey))};\n}};\n";
    }

    private static string Lua(string s) => "\"" + s.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal) + "\"";
}
