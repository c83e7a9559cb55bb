using System.Text;
using Xmpp.Core.Sasl;

namespace Xmpp.Tests.Core;

/// <summary>SCRAM with the test vectors of RFC 5802 §5 (SHA-1) and RFC 7677 §3 (SHA-256).</summary>
public sealed class ScramTests
{
    private static async Task<(SaslStep First, SaslStep Final)> Exchange(ScramHash hash, string password, string salt, string cnonce, string snonce, string clientFinal, IChannelBindingSource? cb = null, bool plus = false)
    {
        var credential = ScramCredential.Create(hash, password, 4096, Convert.FromBase64String(salt));
        var server = new ScramServerMechanism(hash, plus, (u, h, _) => ValueTask.FromResult<ScramCredential?>(u == "user" ? credential : null), cb, snonce);
        var first = await server.StepAsync(Encoding.UTF8.GetBytes($"n,,n=user,r={cnonce}"), CancellationToken.None);
        var final = await server.StepAsync(Encoding.UTF8.GetBytes(clientFinal), CancellationToken.None);
        return (first, final);
    }

    [Test]
    public async Task Rfc5802_sha1_vector()
    {
        var (first, final) = await Exchange(ScramHash.Sha1, "pencil", "QSXCR+Q6sek8bf92", "fyko+d2lbbFgONRv9qkxdawL", "3rfcNHYJY1ZVvWVs7j",
            "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=");
        Assert.That(Encoding.UTF8.GetString(first.Data!), Is.EqualTo("r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096"));
        Assert.That(final.Kind, Is.EqualTo(SaslStepKind.Success));
        Assert.That(Encoding.UTF8.GetString(final.Data!), Is.EqualTo("v=rmF9pqV8S7suAoZWja4dJRkFsKQ="));
    }

    [Test]
    public async Task Rfc7677_sha256_vector()
    {
        var (first, final) = await Exchange(ScramHash.Sha256, "pencil", "W22ZaJ0SNY7soEsUEjb6gQ==", "rOprNGfwEbeRWgbNEkqO", "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
        Assert.That(Encoding.UTF8.GetString(first.Data!), Is.EqualTo("r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"));
        Assert.That(final.Kind, Is.EqualTo(SaslStepKind.Success));
        Assert.That(Encoding.UTF8.GetString(final.Data!), Is.EqualTo("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="));
    }

    [Test]
    public async Task Client_reproduces_the_rfc7677_proof()
    {
        var client = new ScramClient(ScramHash.Sha256, "user", "pencil", "rOprNGfwEbeRWgbNEkqO");
        Assert.That(client.ClientFirst(), Is.EqualTo("n,,n=user,r=rOprNGfwEbeRWgbNEkqO"));
        var final = client.ClientFinal("r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096");
        Assert.That(final, Is.EqualTo("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="));
        Assert.That(client.VerifyServerFinal("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="), Is.True);
    }

    [Test]
    public async Task Wrong_proof_is_not_authorized()
    {
        var (_, final) = await Exchange(ScramHash.Sha1, "pencil", "QSXCR+Q6sek8bf92", "fyko+d2lbbFgONRv9qkxdawL", "3rfcNHYJY1ZVvWVs7j",
            "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=AAAAv3Bz2T0CJGbJQyF0X+HI4Ts=");
        Assert.That(final.Kind, Is.EqualTo(SaslStepKind.Failure));
        Assert.That(final.Failure, Is.EqualTo(SaslFailure.NotAuthorized));
    }

    [TestCase(ScramHash.Sha1)]
    [TestCase(ScramHash.Sha256)]
    [TestCase(ScramHash.Sha512)]
    public async Task Plus_round_trip_with_channel_binding(ScramHash hash)
    {
        var cbData = new byte[] { 1, 2, 3, 4 };
        var cb = new FakeBinding(cbData);
        var credential = ScramCredential.Create(hash, "secret", 4096);
        var server = new ScramServerMechanism(hash, true, (_, _, _) => ValueTask.FromResult<ScramCredential?>(credential), cb);
        var client = new ScramClient(hash, "user", "secret", bindingType: "tls-exporter", bindingData: cbData);
        var first = await server.StepAsync(Encoding.UTF8.GetBytes(client.ClientFirst()), CancellationToken.None);
        var final = await server.StepAsync(Encoding.UTF8.GetBytes(client.ClientFinal(Encoding.UTF8.GetString(first.Data!))), CancellationToken.None);
        Assert.That(final.Kind, Is.EqualTo(SaslStepKind.Success));
        Assert.That(client.VerifyServerFinal(Encoding.UTF8.GetString(final.Data!)), Is.True);
    }

    [Test]
    public async Task Plus_with_different_binding_data_fails()
    {
        var credential = ScramCredential.Create(ScramHash.Sha256, "secret", 4096);
        var server = new ScramServerMechanism(ScramHash.Sha256, true, (_, _, _) => ValueTask.FromResult<ScramCredential?>(credential), new FakeBinding([1, 2, 3]));
        var client = new ScramClient(ScramHash.Sha256, "user", "secret", bindingType: "tls-exporter", bindingData: [9, 9, 9]);
        var first = await server.StepAsync(Encoding.UTF8.GetBytes(client.ClientFirst()), CancellationToken.None);
        var final = await server.StepAsync(Encoding.UTF8.GetBytes(client.ClientFinal(Encoding.UTF8.GetString(first.Data!))), CancellationToken.None);
        Assert.That(final.Kind, Is.EqualTo(SaslStepKind.Failure));
    }

    [TestCase("n,,n=user")]
    [TestCase("x,,n=user,r=abc")]
    [TestCase("n,,r=abc,n=user")]
    [TestCase("n,,n=us=3Xer,r=abc")]
    [TestCase("p=tls-exporter,,n=user,r=abc")]
    public async Task Malformed_client_first_messages_fail(string message)
    {
        var server = new ScramServerMechanism(ScramHash.Sha256, false, (_, _, _) => ValueTask.FromResult<ScramCredential?>(null), null);
        var step = await server.StepAsync(Encoding.UTF8.GetBytes(message), CancellationToken.None);
        Assert.That(step.Kind, Is.EqualTo(SaslStepKind.Failure));
    }

    [Test]
    public async Task Plain_checks_against_stored_keys()
    {
        var credential = ScramCredential.Create(ScramHash.Sha256, "secret", 4096);
        ValueTask<ScramCredential?> Lookup(string u, ScramHash h, CancellationToken _) => ValueTask.FromResult(u == "user" && h == ScramHash.Sha256 ? credential : null);
        var ok = await new PlainServerMechanism(Lookup).StepAsync(Encoding.UTF8.GetBytes("\0User\0secret"), CancellationToken.None);
        var bad = await new PlainServerMechanism(Lookup).StepAsync(Encoding.UTF8.GetBytes("\0user\0wrong"), CancellationToken.None);
        var malformed = await new PlainServerMechanism(Lookup).StepAsync(Encoding.UTF8.GetBytes("user-secret"), CancellationToken.None);
        Assert.That(ok.Kind, Is.EqualTo(SaslStepKind.Success));
        Assert.That(bad.Failure, Is.EqualTo(SaslFailure.NotAuthorized));
        Assert.That(malformed.Failure, Is.EqualTo(SaslFailure.MalformedRequest));
    }

    [Test]
    public void Saslname_round_trip()
    {
        Assert.That(SaslName.Encode("a,b=c"), Is.EqualTo("a=2Cb=3Dc"));
        Assert.That(SaslName.TryDecode("a=2Cb=3Dc", out var d) && d == "a,b=c", Is.True);
        Assert.That(SaslName.TryDecode("a=2", out _), Is.False);
    }

    [Test]
    public async Task A_y_flag_where_plus_was_offered_is_refused_as_a_downgrade()
    {
        // RFC 5802 §6: "y" means the client saw no -PLUS mechanism; where they were offered, someone removed them.
        var credential = ScramCredential.Create(ScramHash.Sha256, "secret", 4096);
        var server = new ScramServerMechanism(ScramHash.Sha256, false, (_, _, _) => ValueTask.FromResult<ScramCredential?>(credential), new FakeBinding([1, 2, 3], "tls-exporter", "tls-unique", "tls-server-end-point"));
        var client = new ScramClient(ScramHash.Sha256, "user", "secret", supportsBinding: true);
        Assert.That(client.ClientFirst(), Does.StartWith("y,,"));
        var step = await server.StepAsync(Encoding.UTF8.GetBytes(client.ClientFirst()), CancellationToken.None);
        Assert.That(step.Kind, Is.EqualTo(SaslStepKind.Failure), "no challenge: the exchange ends at the client-first-message");
        Assert.That(step.Failure, Is.EqualTo(SaslFailure.NotAuthorized));
        Assert.That(step.Reason, Does.Contain("downgrade"));
        Assert.That(server.ChannelBindingType, Is.Null);
    }

    [Test]
    public async Task A_y_flag_where_no_plus_was_offered_is_accepted()
    {
        // No channel binding on the stream (WebSocket, BOSH, no TLS): the client was right, nothing was offered.
        var credential = ScramCredential.Create(ScramHash.Sha256, "secret", 4096);
        var server = new ScramServerMechanism(ScramHash.Sha256, false, (_, _, _) => ValueTask.FromResult<ScramCredential?>(credential), null);
        var client = new ScramClient(ScramHash.Sha256, "user", "secret", supportsBinding: true);
        var first = await server.StepAsync(Encoding.UTF8.GetBytes(client.ClientFirst()), CancellationToken.None);
        var final = await server.StepAsync(Encoding.UTF8.GetBytes(client.ClientFinal(Encoding.UTF8.GetString(first.Data!))), CancellationToken.None);
        Assert.That(final.Kind, Is.EqualTo(SaslStepKind.Success));
        Assert.That(client.VerifyServerFinal(Encoding.UTF8.GetString(final.Data!)), Is.True);
    }

    [Test]
    public async Task A_y_flag_with_a_plus_mechanism_is_malformed()
    {
        var server = new ScramServerMechanism(ScramHash.Sha256, true, (_, _, _) => ValueTask.FromResult<ScramCredential?>(null), new FakeBinding([1], "tls-unique"));
        var step = await server.StepAsync("y,,n=user,r=abc"u8.ToArray(), CancellationToken.None);
        Assert.That(step.Failure, Is.EqualTo(SaslFailure.MalformedRequest));
    }

    [TestCase("tls-unique")]
    [TestCase("tls-exporter")]
    [TestCase("tls-server-end-point")]
    public async Task Plus_with_each_offered_binding_type_names_it(string type)
    {
        byte[] data = [7, 7, 7];
        var credential = ScramCredential.Create(ScramHash.Sha512, "secret", 4096);
        var server = new ScramServerMechanism(ScramHash.Sha512, true, (_, _, _) => ValueTask.FromResult<ScramCredential?>(credential), new FakeBinding(data, "tls-exporter", "tls-unique", "tls-server-end-point"));
        var client = new ScramClient(ScramHash.Sha512, "user", "secret", bindingType: type, bindingData: data);
        var first = await server.StepAsync(Encoding.UTF8.GetBytes(client.ClientFirst()), CancellationToken.None);
        var final = await server.StepAsync(Encoding.UTF8.GetBytes(client.ClientFinal(Encoding.UTF8.GetString(first.Data!))), CancellationToken.None);
        Assert.That(final.Kind, Is.EqualTo(SaslStepKind.Success));
        Assert.That(server.ChannelBindingType, Is.EqualTo(type));
    }

    [Test]
    public async Task A_binding_type_not_offered_is_refused_without_counting_as_a_guess()
    {
        var server = new ScramServerMechanism(ScramHash.Sha256, true, (_, _, _) => ValueTask.FromResult<ScramCredential?>(null), new FakeBinding([1], "tls-server-end-point"));
        var step = await server.StepAsync("p=tls-unique,,n=user,r=abc"u8.ToArray(), CancellationToken.None);
        Assert.That(step.Kind, Is.EqualTo(SaslStepKind.Failure));
        Assert.That(step.IsCredentialFailure, Is.False);
    }

    [Test]
    public async Task Fast_uniq_binds_the_token_to_tls_unique()
    {
        byte[] unique = [5, 6, 7, 8];
        var binding = new FakeBinding(unique, "tls-unique", "tls-server-end-point");
        Assert.That(HtServerMechanism.Offered(binding), Is.EqualTo(new[] { "HT-SHA-256-NONE", "HT-SHA-256-UNIQ", "HT-SHA-256-ENDP" }));
        ValueTask<IReadOnlyList<string>> Tokens(string user, CancellationToken _) => ValueTask.FromResult<IReadOnlyList<string>>(user == "user" ? ["tok"] : []);

        var ok = await new HtServerMechanism("HT-SHA-256-UNIQ", Tokens, binding).StepAsync((byte[])[.. "user\0"u8, .. HtServerMechanism.Initiator("tok", unique)], CancellationToken.None);
        Assert.That(ok.Kind, Is.EqualTo(SaslStepKind.Success));
        Assert.That(ok.Data, Is.EqualTo(HtServerMechanism.Responder("tok", unique)));
        var unbound = await new HtServerMechanism("HT-SHA-256-UNIQ", Tokens, binding).StepAsync((byte[])[.. "user\0"u8, .. HtServerMechanism.Initiator("tok", [])], CancellationToken.None);
        Assert.That(unbound.Kind, Is.EqualTo(SaslStepKind.Failure), "a proof made without the binding data");
    }

    [Test]
    public async Task The_asynchronous_pbkdf2_paths_agree_with_the_synchronous_ones()
    {
        // CreateAllAsync and VerifyAsync leave a thread outside the pool first (ThreadPoolHopTests), then compute
        // what CreateAll and Verify do.
        var creds = await ScramCredential.CreateAllAsync("pencil", 4096);
        Assert.That(creds.Select(c => c.Hash), Is.EqualTo(ScramCredential.CreateAll("pencil", 4096).Select(c => c.Hash)));
        foreach (var c in creds)
        {
            Assert.That(await c.VerifyAsync("pencil"), Is.True);
            Assert.That(await c.VerifyAsync("pen"), Is.False);
            Assert.That(c.Verify("pencil"), Is.True);
        }
    }

    private sealed class FakeBinding(byte[] data, params string[] types) : IChannelBindingSource
    {
        public IReadOnlyList<string> SupportedTypes { get; } = types.Length == 0 ? ["tls-exporter"] : types;

        public byte[]? GetBindingData(string type) => SupportedTypes.Contains(type) ? data : null;
    }
}
