using System.Text;

namespace Xmpp.Core.Sasl;

/// <summary>The saslname encoding of RFC 5802 §5.1 (',' as =2C, '=' as =3D).</summary>
public static class SaslName
{
    public static string Encode(string s) => s.Replace("=", "=3D", StringComparison.Ordinal).Replace(",", "=2C", StringComparison.Ordinal);

    public static bool TryDecode(string s, out string decoded)
    {
        decoded = string.Empty;
        var sb = new StringBuilder(s.Length);
        for (var i = 0; i < s.Length; i++)
        {
            if (s[i] == ',')
            {
                return false;
            }

            if (s[i] != '=')
            {
                sb.Append(s[i]);
                continue;
            }

            if (i + 2 >= s.Length)
            {
                return false;
            }

            var code = s.Substring(i + 1, 2);
            if (code == "2C")
            {
                sb.Append(',');
            }
            else if (code == "3D")
            {
                sb.Append('=');
            }
            else
            {
                return false;
            }

            i += 2;
        }

        decoded = sb.ToString();
        return true;
    }
}
