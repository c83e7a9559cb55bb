using System.Globalization;
using System.Text;

namespace Xmpp.Core.Addressing;

/// <summary>
/// The PRECIS profiles XMPP addresses use (RFC 8264 string classes, RFC 8265 profiles), computed from the
/// derived-property rules of RFC 8264 §8–9 over .NET's Unicode data.
/// Limits: the contextual rules (CONTEXTJ/CONTEXTO, RFC 5892 Appendix A) are implemented only for
/// U+00B7 (MIDDLE DOT between two 'l'); other contextual code points are refused, and the Bidi Rule is
/// not applied. Both are conservative: they refuse, never accept, a questionable string.
/// </summary>
public static class Precis
{
    private enum PrecisClass
    {
        Pvalid,
        FreePval,
        Disallowed,
        Contextual,
    }

    /// <summary>UsernameCaseMapped (RFC 8265 §3.3), used for localparts and SASL usernames.</summary>
    public static bool TryPrepareUsernameCaseMapped(string input, out string output)
    {
        output = string.Empty;
        if (input.Length == 0 || !OnlyScalarValuesWithoutNoncharacters(input))
        {
            return false;
        }

        // 1. Width mapping: fullwidth and halfwidth forms to their decompositions.
        var s = MapWidth(input);

        // 2. Case mapping (toLowerCase), 3. normalisation form C.
        s = s.ToLowerInvariant();
        if (!s.IsNormalized(NormalizationForm.FormC))
        {
            s = s.Normalize(NormalizationForm.FormC);
        }

        if (!AllIn(s, freeform: false))
        {
            return false;
        }

        output = s;
        return true;
    }

    /// <summary>OpaqueString (RFC 8265 §4.2), used for resourceparts and passwords.</summary>
    public static bool TryPrepareOpaqueString(string input, out string output)
    {
        output = string.Empty;
        if (input.Length == 0 || !OnlyScalarValuesWithoutNoncharacters(input))
        {
            return false;
        }

        // 1. Map non-ASCII spaces to U+0020 (additional mapping rule), 2. no case mapping, 3. NFC.
        var s = input;
        foreach (var c in s)
        {
            if (c > 0x7F && CharUnicodeInfo.GetUnicodeCategory(c) == UnicodeCategory.SpaceSeparator)
            {
                var sb = new StringBuilder(s.Length);
                foreach (var ch in s)
                {
                    sb.Append(ch > 0x7F && CharUnicodeInfo.GetUnicodeCategory(ch) == UnicodeCategory.SpaceSeparator ? ' ' : ch);
                }

                s = sb.ToString();
                break;
            }
        }

        if (!s.IsNormalized(NormalizationForm.FormC))
        {
            s = s.Normalize(NormalizationForm.FormC);
        }

        if (!AllIn(s, freeform: true))
        {
            return false;
        }

        output = s;
        return true;
    }

    /// <summary>
    /// Lone surrogates and noncharacters are DISALLOWED in every PRECIS class (RFC 8264 §9.13,
    /// PrecisIgnorableProperties), and string.Normalize throws on them, so they are refused first.
    /// Found by fuzzing: U+FFFE in a SASL username reached Normalize.
    /// </summary>
    private static bool OnlyScalarValuesWithoutNoncharacters(string s)
    {
        for (var i = 0; i < s.Length; i++)
        {
            var c = s[i];
            if (char.IsHighSurrogate(c))
            {
                if (i + 1 >= s.Length || !char.IsLowSurrogate(s[i + 1]))
                {
                    return false;
                }

                if (IsNoncharacter(char.ConvertToUtf32(c, s[++i])))
                {
                    return false;
                }
            }
            else if (char.IsLowSurrogate(c) || IsNoncharacter(c))
            {
                return false;
            }
        }

        return true;
    }

    private static string MapWidth(string s)
    {
        foreach (var c in s)
        {
            if (c >= '\uFF01' && c <= '\uFFEE')
            {
                var sb = new StringBuilder(s.Length);
                foreach (var ch in s)
                {
                    if (ch >= '\uFF01' && ch <= '\uFFEE')
                    {
                        sb.Append(ch.ToString().Normalize(NormalizationForm.FormKC));
                    }
                    else
                    {
                        sb.Append(ch);
                    }
                }

                return sb.ToString();
            }
        }

        return s;
    }

    private static bool AllIn(string s, bool freeform)
    {
        for (var i = 0; i < s.Length; i++)
        {
            int cp;
            if (char.IsHighSurrogate(s[i]))
            {
                if (i + 1 >= s.Length || !char.IsLowSurrogate(s[i + 1]))
                {
                    return false;
                }

                cp = char.ConvertToUtf32(s[i], s[i + 1]);
            }
            else if (char.IsLowSurrogate(s[i]))
            {
                return false;
            }
            else
            {
                cp = s[i];
            }

            var cls = Classify(cp, s, i);
            var ok = cls switch
            {
                PrecisClass.Pvalid => true,
                PrecisClass.FreePval => freeform,
                PrecisClass.Contextual => ContextualOk(cp, s, i),
                _ => false,
            };
            if (!ok)
            {
                return false;
            }

            if (cp > 0xFFFF)
            {
                i++;
            }
        }

        return true;
    }

    private static bool ContextualOk(int cp, string s, int index) =>

        // RFC 5892 Appendix A.3: MIDDLE DOT only between two 'l' (Catalan "l·l").
        cp == 0x00B7 && index > 0 && index + 1 < s.Length && s[index - 1] == 'l' && s[index + 1] == 'l';

    /// <summary>RFC 8264 §8 derived property of one code point (the index is unused but for clarity).</summary>
    private static PrecisClass Classify(int cp, string s, int index)
    {
        _ = s;
        _ = index;

        // Exceptions (F), RFC 5892 §2.6.
        switch (cp)
        {
            case 0x00DF or 0x03C2 or 0x06FD or 0x06FE or 0x0F0B or 0x3007:
                return PrecisClass.Pvalid;
            case 0x00B7 or 0x0375 or 0x05F3 or 0x05F4 or 0x30FB or (>= 0x0660 and <= 0x0669) or (>= 0x06F0 and <= 0x06F9):
                return PrecisClass.Contextual;
            case 0x0640 or 0x07FA or 0x302E or 0x302F or (>= 0x3031 and <= 0x3035) or 0x303B:
                return PrecisClass.Disallowed;
            default:
                break;
        }

        var category = CharUnicodeInfo.GetUnicodeCategory(cp);

        // Unassigned (J): unassigned and not a noncharacter.
        if (category == UnicodeCategory.OtherNotAssigned && !IsNoncharacter(cp))
        {
            return PrecisClass.Disallowed;
        }

        // ASCII7 (K).
        if (cp >= 0x21 && cp <= 0x7E)
        {
            return PrecisClass.Pvalid;
        }

        // JoinControl (H): CONTEXTJ; the Virama rule needs data .NET does not expose, so refused.
        if (cp == 0x200C || cp == 0x200D)
        {
            return PrecisClass.Disallowed;
        }

        // OldHangulJamo (I).
        if (cp is (>= 0x1100 and <= 0x11FF) or (>= 0xA960 and <= 0xA97C) or (>= 0xD7B0 and <= 0xD7FB))
        {
            return PrecisClass.Disallowed;
        }

        // PrecisIgnorableProperties (M): Default_Ignorable_Code_Point or Noncharacter_Code_Point.
        if (IsDefaultIgnorable(cp) || IsNoncharacter(cp))
        {
            return PrecisClass.Disallowed;
        }

        // Controls (L).
        if (category == UnicodeCategory.Control)
        {
            return PrecisClass.Disallowed;
        }

        // HasCompat (Q): toNFKC(cp) != cp.
        if (cp > 0x7F)
        {
            var str = char.ConvertFromUtf32(cp);
            if (!str.IsNormalized(NormalizationForm.FormKC))
            {
                return PrecisClass.FreePval;
            }
        }

        switch (category)
        {
            // LetterDigits (A).
            case UnicodeCategory.LowercaseLetter or UnicodeCategory.UppercaseLetter or UnicodeCategory.OtherLetter
                or UnicodeCategory.DecimalDigitNumber or UnicodeCategory.ModifierLetter
                or UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark:
                return PrecisClass.Pvalid;

            // OtherLetterDigits (R), Spaces (N), Symbols (O), Punctuation (P).
            case UnicodeCategory.TitlecaseLetter or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber
                or UnicodeCategory.EnclosingMark or UnicodeCategory.SpaceSeparator
                or UnicodeCategory.MathSymbol or UnicodeCategory.CurrencySymbol or UnicodeCategory.ModifierSymbol
                or UnicodeCategory.OtherSymbol or UnicodeCategory.ConnectorPunctuation or UnicodeCategory.DashPunctuation
                or UnicodeCategory.OpenPunctuation or UnicodeCategory.ClosePunctuation
                or UnicodeCategory.InitialQuotePunctuation or UnicodeCategory.FinalQuotePunctuation
                or UnicodeCategory.OtherPunctuation:
                return PrecisClass.FreePval;

            default:
                return PrecisClass.Disallowed;
        }
    }

    private static bool IsNoncharacter(int cp) =>
        (cp >= 0xFDD0 && cp <= 0xFDEF) || (cp & 0xFFFE) == 0xFFFE;

    // Default_Ignorable_Code_Point (Unicode DerivedCoreProperties.txt).
    private static bool IsDefaultIgnorable(int cp) => cp is 0x00AD or 0x034F or 0x061C or 0x115F or 0x1160
        or 0x17B4 or 0x17B5 or (>= 0x180B and <= 0x180F) or (>= 0x200B and <= 0x200F) or (>= 0x202A and <= 0x202E)
        or (>= 0x2060 and <= 0x206F) or 0x3164 or (>= 0xFE00 and <= 0xFE0F) or 0xFEFF or 0xFFA0
        or (>= 0xFFF0 and <= 0xFFF8) or (>= 0x1BCA0 and <= 0x1BCA3) or (>= 0x1D173 and <= 0x1D17A)
        or (>= 0xE0000 and <= 0xE0FFF);
}
