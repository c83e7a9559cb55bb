using System.Text.Json;

namespace Xmpp.Server.Tls.Acme;

/// <summary>The directory (RFC 8555 §7.1.1): the URLs of the resources, and the terms of service.</summary>
internal sealed record AcmeDirectory(Uri NewNonce, Uri NewAccount, Uri NewOrder, Uri? RenewalInfo, string? TermsOfService)
{
    public static AcmeDirectory Parse(ReadOnlySpan<byte> json, Uri baseUri)
    {
        using var doc = JsonDocument.Parse(json.ToArray());
        var root = doc.RootElement;
        var meta = root.TryGetProperty("meta", out var m) && m.ValueKind == JsonValueKind.Object ? m : default;
        return new AcmeDirectory(
            AcmeJson.RequiredUri(root, "newNonce", baseUri),
            AcmeJson.RequiredUri(root, "newAccount", baseUri),
            AcmeJson.RequiredUri(root, "newOrder", baseUri),
            AcmeJson.OptionalUri(root, "renewalInfo", baseUri),
            meta.ValueKind == JsonValueKind.Object ? AcmeJson.OptionalString(meta, "termsOfService") : null);
    }
}

/// <summary>An order (RFC 8555 §7.1.3).</summary>
internal sealed record AcmeOrder(string Status, IReadOnlyList<Uri> Authorizations, Uri Finalize, Uri? Certificate, AcmeProblem? Error)
{
    public static AcmeOrder Parse(ReadOnlySpan<byte> json, Uri baseUri)
    {
        using var doc = JsonDocument.Parse(json.ToArray());
        var root = doc.RootElement;
        var authorizations = new List<Uri>();
        if (root.TryGetProperty("authorizations", out var a) && a.ValueKind == JsonValueKind.Array)
        {
            foreach (var item in a.EnumerateArray())
            {
                authorizations.Add(new Uri(baseUri, item.GetString() ?? throw new AcmeFormatException("an authorization URL is not a string")));
            }
        }

        return new AcmeOrder(
            AcmeJson.RequiredString(root, "status"),
            authorizations,
            AcmeJson.RequiredUri(root, "finalize", baseUri),
            AcmeJson.OptionalUri(root, "certificate", baseUri),
            root.TryGetProperty("error", out var e) && e.ValueKind == JsonValueKind.Object ? AcmeProblem.From(e) : null);
    }
}

/// <summary>An authorization (RFC 8555 §7.1.4) with its challenges.</summary>
internal sealed record AcmeAuthorization(string Identifier, string Status, bool Wildcard, IReadOnlyList<AcmeChallenge> Challenges)
{
    public static AcmeAuthorization Parse(ReadOnlySpan<byte> json, Uri baseUri)
    {
        using var doc = JsonDocument.Parse(json.ToArray());
        var root = doc.RootElement;
        var identifier = root.TryGetProperty("identifier", out var id) && id.ValueKind == JsonValueKind.Object ? AcmeJson.RequiredString(id, "value") : throw new AcmeFormatException("an authorization without an identifier");
        var challenges = new List<AcmeChallenge>();
        if (root.TryGetProperty("challenges", out var cs) && cs.ValueKind == JsonValueKind.Array)
        {
            foreach (var c in cs.EnumerateArray())
            {
                challenges.Add(new AcmeChallenge(
                    AcmeJson.RequiredString(c, "type"),
                    AcmeJson.RequiredUri(c, "url", baseUri),
                    AcmeJson.OptionalString(c, "token"),
                    AcmeJson.OptionalString(c, "status") ?? "pending",
                    c.TryGetProperty("error", out var e) && e.ValueKind == JsonValueKind.Object ? AcmeProblem.From(e) : null));
            }
        }

        return new AcmeAuthorization(identifier, AcmeJson.RequiredString(root, "status"), root.TryGetProperty("wildcard", out var w) && w.ValueKind == JsonValueKind.True, challenges);
    }
}

/// <summary>A challenge (RFC 8555 §7.1.5, §8).</summary>
internal sealed record AcmeChallenge(string Type, Uri Url, string? Token, string Status, AcmeProblem? Error);

/// <summary>
/// A problem document (RFC 8555 §6.7, RFC 7807): its type (urn:ietf:params:acme:error:…), detail, and the
/// subproblems per identifier (§6.7.1).
/// </summary>
public sealed record AcmeProblem(string Type, string? Detail, int? Status, string? Identifier, IReadOnlyList<AcmeProblem> Subproblems)
{
    public const string BadNonce = "urn:ietf:params:acme:error:badNonce";

    public static AcmeProblem Parse(ReadOnlySpan<byte> json)
    {
        using var doc = JsonDocument.Parse(json.ToArray());
        return From(doc.RootElement);
    }

    internal static AcmeProblem From(JsonElement e)
    {
        var subproblems = new List<AcmeProblem>();
        if (e.TryGetProperty("subproblems", out var subs) && subs.ValueKind == JsonValueKind.Array)
        {
            foreach (var s in subs.EnumerateArray())
            {
                subproblems.Add(From(s));
            }
        }

        return new AcmeProblem(
            AcmeJson.OptionalString(e, "type") ?? "about:blank",
            AcmeJson.OptionalString(e, "detail"),
            e.TryGetProperty("status", out var st) && st.ValueKind == JsonValueKind.Number && st.TryGetInt32(out var n) ? n : null,
            e.TryGetProperty("identifier", out var id) && id.ValueKind == JsonValueKind.Object ? AcmeJson.OptionalString(id, "value") : null,
            subproblems);
    }

    /// <summary>"type: detail", with the subproblems' identifiers, for logs.</summary>
    public override string ToString()
    {
        var text = Detail is null ? Type : Type + ": " + Detail;
        if (Identifier is not null)
        {
            text = Identifier + ": " + text;
        }

        return Subproblems.Count == 0 ? text : text + " [" + string.Join("; ", Subproblems) + "]";
    }
}

/// <summary>Reading members of ACME's JSON objects.</summary>
internal static class AcmeJson
{
    public static string RequiredString(JsonElement e, string name) =>
        OptionalString(e, name) ?? throw new AcmeFormatException($"'{name}' is missing or not a string");

    public static string? OptionalString(JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    public static Uri RequiredUri(JsonElement e, string name, Uri baseUri) =>
        OptionalUri(e, name, baseUri) ?? throw new AcmeFormatException($"'{name}' is missing or not a URL");

    public static Uri? OptionalUri(JsonElement e, string name, Uri baseUri) =>
        OptionalString(e, name) is { } s && Uri.TryCreate(baseUri, s, out var u) ? u : null;
}

/// <summary>The ACME server sent a document this client cannot read.</summary>
public sealed class AcmeFormatException(string message) : Exception("unexpected ACME document: " + message);

/// <summary>An ACME request failed: the problem document (or one made up for a transport failure) and what was being done.</summary>
public sealed class AcmeException(string doing, AcmeProblem problem) : Exception($"{doing}: {problem}")
{
    /// <summary>What the client was doing ("validating example.org (http-01)").</summary>
    public string Doing => doing;

    public AcmeProblem Problem => problem;
}
