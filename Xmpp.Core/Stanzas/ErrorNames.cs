using System.Text;

namespace Xmpp.Core.Stanzas;

/// <summary>Maps error condition enums to and from their XML element names ("host-unknown").</summary>
public static class ErrorNames
{
    public static string ToElementName<TEnum>(TEnum value)
        where TEnum : struct, Enum
    {
        var name = value.ToString();
        var sb = new StringBuilder(name.Length + 4);
        for (var i = 0; i < name.Length; i++)
        {
            var c = name[i];
            if (char.IsUpper(c))
            {
                if (i > 0)
                {
                    sb.Append('-');
                }

                sb.Append(char.ToLowerInvariant(c));
            }
            else
            {
                sb.Append(c);
            }
        }

        return sb.ToString();
    }

    public static bool TryParse<TEnum>(string elementName, out TEnum value)
        where TEnum : struct, Enum
    {
        var sb = new StringBuilder(elementName.Length);
        var upper = true;
        foreach (var c in elementName)
        {
            if (c == '-')
            {
                upper = true;
                continue;
            }

            sb.Append(upper ? char.ToUpperInvariant(c) : c);
            upper = false;
        }

        return Enum.TryParse(sb.ToString(), ignoreCase: false, out value) && ToElementName(value) == elementName;
    }
}
