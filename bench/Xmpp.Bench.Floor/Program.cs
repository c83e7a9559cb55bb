using System.Globalization;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Xmpp.Core.Sasl;

namespace Xmpp.Bench.Floor;

/// <summary>
/// Close to the least a .NET server can spend on bench/run's login: it answers the generator's exchange (stream header,
/// STARTTLS, the TLS handshake in SslStream, SCRAM-SHA-1 verified as RFC 5802 says, bind, presence, the
/// closing tag) step by step as our server does, with shorter stream features, and does nothing else: no XML parser, no stream state
/// machine, no storage, no routing, no logging. Any password is checked against one salted "bench-pass";
/// any user name is accepted. What it costs per login is what the runtime, SslStream, OpenSSL and the
/// kernel cost; what our server costs above it is ours (bench/README, "The floor of a login").
/// Usage: xmppfloor PORT CERT.pem KEY.pem
/// </summary>
internal static class Program
{
    private const string Header = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' from='localhost' version='1.0' xml:lang='en' id='";
    private const int Iterations = 4096;

    public static async Task<int> Main(string[] args)
    {
        if (args.Length != 3)
        {
            await Console.Error.WriteLineAsync("usage: xmppfloor PORT CERT.pem KEY.pem").ConfigureAwait(false);
            return 2;
        }

        // As Xmpp.Server's RuntimeTuning: on one processor idle thread-pool threads do not spin.
        if (Environment.ProcessorCount == 1 && Environment.GetEnvironmentVariable("DOTNET_ThreadPool_UnfairSemaphoreSpinLimit") is null)
        {
            AppContext.SetData("System.Threading.ThreadPool.UnfairSemaphoreSpinLimit", 0);
        }

        using var pem = X509Certificate2.CreateFromPemFile(args[1], args[2]);
        using var certificate = X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
        var floor = new Floor(new SslServerAuthenticationOptions
        {
            ServerCertificateContext = SslStreamCertificateContext.Create(certificate, null),
            EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
            AllowTlsResume = true,
            AllowRenegotiation = false,
        });

        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, int.Parse(args[0], CultureInfo.InvariantCulture)));
        listener.Listen(1024);
        while (true)
        {
            var socket = await listener.AcceptAsync().ConfigureAwait(false);
            socket.NoDelay = true;
            _ = floor.ServeAsync(socket);
        }
    }

    private sealed class Floor(SslServerAuthenticationOptions tls)
    {
        // A new salt at every start, as a freshly provisioned server has: the generator keeps salted passwords
        // per salt (--scram-cache), and with a fixed salt its later rounds would skip PBKDF2 against the floor
        // only, and drive it at a load the other servers never see.
        // ScramCredential.Create draws one (what the server stores for an account, RFC 5802 §3).
        private readonly ScramCredential _credential = ScramCredential.Create(ScramHash.Sha1, "bench-pass", Iterations);

        public async Task ServeAsync(Socket socket)
        {
            var connection = new Connection(new NetworkStream(socket, ownsSocket: true));
            try
            {
                var id = Guid.NewGuid().ToString("N");
                await connection.UntilAsync("version='1.0'>").ConfigureAwait(false);
                await connection.SendAsync(Header + id + "'><stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>").ConfigureAwait(false);
                await connection.UntilAsync("/>").ConfigureAwait(false);
                await connection.SendAsync("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>").ConfigureAwait(false);
                await connection.StartTlsAsync(tls).ConfigureAwait(false);

                await connection.UntilAsync("version='1.0'>").ConfigureAwait(false);
                await connection.SendAsync(Header + id + "'><stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism></mechanisms></stream:features>").ConfigureAwait(false);

                // RFC 5802 §3: client-first-message-bare, server-first-message, then the proof checked against StoredKey.
                var clientFirstBare = Decode(await connection.UntilAsync("</auth>").ConfigureAwait(false))[3..];
                var clientNonce = clientFirstBare[(clientFirstBare.IndexOf(",r=", StringComparison.Ordinal) + 3)..];
                var serverFirst = $"r={clientNonce}{Convert.ToBase64String(RandomNumberGenerator.GetBytes(18))},s={Convert.ToBase64String(_credential.Salt)},i={Iterations}";
                await connection.SendAsync("<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>" + Encode(serverFirst) + "</challenge>").ConfigureAwait(false);
                var clientFinal = Decode(await connection.UntilAsync("</response>").ConfigureAwait(false));
                var p = clientFinal.LastIndexOf(",p=", StringComparison.Ordinal);
                var authMessage = Encoding.UTF8.GetBytes(clientFirstBare + "," + serverFirst + "," + clientFinal[..p]);
                // ClientKey = ClientProof XOR ClientSignature; H(ClientKey) must be StoredKey.
                var clientKey = ScramHash.Sha1.Hmac(_credential.StoredKey, authMessage);
                var proof = Convert.FromBase64String(clientFinal[(p + 3)..]);
                for (var i = 0; i < clientKey.Length; i++)
                {
                    clientKey[i] ^= proof[i];
                }

                if (!CryptographicOperations.FixedTimeEquals(ScramHash.Sha1.Hash(clientKey), _credential.StoredKey))
                {
                    await connection.SendAsync("<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/></failure></stream:stream>").ConfigureAwait(false);
                    return;
                }

                await connection.SendAsync("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>" + Encode("v=" + Convert.ToBase64String(ScramHash.Sha1.Hmac(_credential.ServerKey, authMessage))) + "</success>").ConfigureAwait(false);

                await connection.UntilAsync("version='1.0'>").ConfigureAwait(false);
                await connection.SendAsync(Header + id + "'><stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>").ConfigureAwait(false);
                var bind = await connection.UntilAsync("</iq>").ConfigureAwait(false);
                var start = bind.IndexOf("<resource>", StringComparison.Ordinal) + "<resource>".Length;
                var jid = clientFirstBare[2..clientFirstBare.IndexOf(',', StringComparison.Ordinal)] + "@localhost/" + bind[start..bind.IndexOf("</resource>", StringComparison.Ordinal)];
                await connection.SendAsync($"<iq type='result' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>{jid}</jid></bind></iq>").ConfigureAwait(false);

                // Initial presence, reflected to the session (RFC 6121 §4.2.2).
                await connection.UntilAsync("/>").ConfigureAwait(false);
                await connection.SendAsync($"<presence from='{jid}' to='{jid}'/>").ConfigureAwait(false);
                await connection.UntilAsync("</stream:stream>").ConfigureAwait(false);
                await connection.SendAsync("</stream:stream>").ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException or AuthenticationException or FormatException or ArgumentException)
            {
                // The client went away or sent what this responder does not expect: drop the connection.
            }
            finally
            {
                await connection.DisposeAsync().ConfigureAwait(false);
            }
        }

        private static string Decode(string element) =>
            Encoding.UTF8.GetString(Convert.FromBase64String(element[(element.IndexOf('>', StringComparison.Ordinal) + 1)..element.LastIndexOf('<')]));

        private static string Encode(string text) => Convert.ToBase64String(Encoding.UTF8.GetBytes(text));

    }

    /// <summary>A byte stream read up to a marker: the generator sends each of its elements in one write.</summary>
    private sealed class Connection(Stream stream) : IAsyncDisposable
    {
        private readonly byte[] _buffer = new byte[4096];
        private Stream _stream = stream;
        private int _length;

        public async Task<string> UntilAsync(string end)
        {
            var marker = Encoding.UTF8.GetBytes(end);
            while (true)
            {
                var at = _buffer.AsSpan(0, _length).IndexOf(marker);
                if (at >= 0)
                {
                    var upTo = at + marker.Length;
                    var text = Encoding.UTF8.GetString(_buffer, 0, upTo);
                    _buffer.AsSpan(upTo, _length - upTo).CopyTo(_buffer);
                    _length -= upTo;
                    return text;
                }

                if (_length == _buffer.Length)
                {
                    throw new IOException("no " + end + " in 4096 bytes");
                }

                var read = await _stream.ReadAsync(_buffer.AsMemory(_length)).ConfigureAwait(false);
                if (read == 0)
                {
                    throw new IOException("closed");
                }

                _length += read;
            }
        }

        public async Task SendAsync(string xml)
        {
            await _stream.WriteAsync(Encoding.UTF8.GetBytes(xml)).ConfigureAwait(false);
            await _stream.FlushAsync().ConfigureAwait(false);
        }

        public async Task StartTlsAsync(SslServerAuthenticationOptions options)
        {
            var ssl = new SslStream(_stream, leaveInnerStreamOpen: false);
            _stream = ssl;
            await ssl.AuthenticateAsServerAsync(options).ConfigureAwait(false);
        }

        public ValueTask DisposeAsync() => _stream.DisposeAsync();
    }
}
