using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Text;
using NLog;
using NLog.Targets;
using Xmpp.Core.Sasl;
using Xmpp.Core.Xml;
using Xmpp.Server.Accounts;
using Xmpp.Server.Config;
using Xmpp.Server.Hosting;
using Xmpp.Server.Net;

namespace Xmpp.Fuzz;

/// <summary>
/// The whole client stream state machine of a real server (router, modules, SQLite storage) in this
/// process, over an in-memory transport. Even first bytes: the input is the client's side of the stream
/// from its first byte (header, SASL, bind...). Odd first bytes: the harness logs in first (header,
/// SCRAM-SHA-1, bind) and the rest of the input is what the bound client sends. The server must end each
/// stream on its own when the input ends, and log no error: its catch-all logs an unexpected exception
/// at Error level, which here is a finding.
/// </summary>
public static class StreamTarget
{
    private static readonly Lazy<Harness> Shared = new(() => Harness.CreateAsync().GetAwaiter().GetResult());

    public static void Run(byte[] input)
    {
        if (input.Length == 0)
        {
            return;
        }

        Shared.Value.RunAsync(input).GetAwaiter().GetResult();
    }

    /// <summary>One in-process server with two accounts (juliet and romeo, password "secret") and no listener.</summary>
    public sealed class Harness : IAsyncDisposable
    {
        private static readonly TimeSpan RunTimeout = TimeSpan.FromSeconds(20);
        private readonly XmppServer _server;
        private readonly ErrorTarget _errors;
        private readonly LogFactory _logs;
        private readonly string _dataDir;

        private Harness(XmppServer server, ErrorTarget errors, LogFactory logs, string dataDir)
        {
            _server = server;
            _errors = errors;
            _logs = logs;
            _dataDir = dataDir;
        }

        public static async Task<Harness> CreateAsync()
        {
            var dataDir = Path.Combine(Path.GetTempPath(), "xmppfuzz-" + Guid.NewGuid().ToString("N"));
            var options = new ServerOptions
            {
                Hosts = [new HostOptions("localhost")],
                DataDirectory = dataDir,
                Storage = new StorageOptions { File = Path.Combine(dataDir, "xmpp.db") },
                Listeners = [],
                Tls = new TlsOptions { Required = false },
                // No blocking: one process runs millions of inputs, and their failed logins must not lock
                // the harness's own account or address out (found when the blocks were added).
                Auth = new AuthOptions { FailureDelay = TimeSpan.Zero, MaxFailureDelay = TimeSpan.Zero, FailuresPerIp = 0, FailuresPerAccount = 0 },
                Limits = new LimitOptions { CloseTimeout = TimeSpan.FromMilliseconds(200), AuthTimeout = TimeSpan.FromSeconds(30) },

                // Stanzas for other domains must not leave the machine: DNS goes to a closed loopback port.
                S2s = new S2sOptions { DnsServer = "127.0.0.1:9", ConnectTimeout = TimeSpan.FromMilliseconds(200) },
                Logging = new LoggingOptions { Level = "Off" },
            };
            var errors = new ErrorTarget();
            var logs = Xmpp.Server.Logging.LogSetup.Create(options.Logging, [errors]);
            var server = await XmppServer.CreateAsync(options, logs, CancellationToken.None).ConfigureAwait(false);
            var accounts = new AccountService(options, server.Context.Storage);
            foreach (var user in new[] { "juliet", "romeo" })
            {
                await accounts.AddAsync(user + "@localhost", "secret", CancellationToken.None).ConfigureAwait(false);
            }

            server.Start();
            return new Harness(server, errors, logs, dataDir);
        }

        public async ValueTask DisposeAsync()
        {
            await _server.DisposeAsync().ConfigureAwait(false);
            _logs.Dispose();
            _errors.Dispose();
            try
            {
                Directory.Delete(_dataDir, recursive: true);
            }
            catch (IOException)
            {
                // Best effort.
            }
        }

        /// <summary>Runs one input (see <see cref="StreamTarget"/>); throws <see cref="FuzzFindingException"/> on a finding.</summary>
        public async Task RunAsync(byte[] input)
        {
            if (input.Length == 0)
            {
                return;
            }

            var toServer = new Pipe();
            var toClient = new Pipe(new PipeOptions(pauseWriterThreshold: 0));
            var transport = new DuplexStream(toServer.Reader, toClient.Writer);
            var connection = Xmpp.Server.Streams.C2sStateMachine.Create(_server.Context, transport, new IPEndPoint(IPAddress.Loopback, 40000), directTls: false, CancellationToken.None);
            var run = connection.RunAsync();
            var client = new DuplexStream(toClient.Reader, toServer.Writer);
            try
            {
                if ((input[0] & 1) == 1)
                {
                    await LogInAsync(client).ConfigureAwait(false);
                }

                await toServer.Writer.WriteAsync(input.AsMemory(1)).ConfigureAwait(false);
                await toServer.Writer.CompleteAsync().ConfigureAwait(false);
                var drain = client.CopyToAsync(Stream.Null);
                await Task.WhenAll(run, drain).WaitAsync(RunTimeout).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                throw new FuzzFindingException("the server did not end the stream after the input ended");
            }

            if (_errors.Take() is { } error)
            {
                throw new FuzzFindingException("the server logged an error: " + error);
            }
        }

        /// <summary>Header, SCRAM-SHA-1 as juliet, restart, bind: what every client does first.</summary>
        private static async Task LogInAsync(DuplexStream client)
        {
            const string Header = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>";
            var reader = new XmppStreamReader(client);
            await SendAsync(client, Header).ConfigureAwait(false);
            await NextElementAsync(reader).ConfigureAwait(false); // features
            var scram = new ScramClient(ScramHash.Sha1, "juliet", "secret");
            await SendAsync(client, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>" + B64(scram.ClientFirst()) + "</auth>").ConfigureAwait(false);
            var challenge = await NextElementAsync(reader).ConfigureAwait(false);
            if (challenge.Name != "challenge")
            {
                throw new FuzzFindingException("the harness could not log in: " + ElementWriter.ToXml(challenge, null));
            }

            var serverFirst = Encoding.UTF8.GetString(Convert.FromBase64String(challenge.Text));
            await SendAsync(client, "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>" + B64(scram.ClientFinal(serverFirst)) + "</response>").ConfigureAwait(false);
            var success = await NextElementAsync(reader).ConfigureAwait(false);
            if (success.Name != "success")
            {
                throw new FuzzFindingException("the harness could not log in: " + ElementWriter.ToXml(success, null));
            }

            reader = new XmppStreamReader(client);
            await SendAsync(client, Header).ConfigureAwait(false);
            await NextElementAsync(reader).ConfigureAwait(false); // features
            await SendAsync(client, "<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>fuzz</resource></bind></iq>").ConfigureAwait(false);
            await NextElementAsync(reader).ConfigureAwait(false);
        }

        private static async Task<Element> NextElementAsync(XmppStreamReader reader)
        {
            while (true)
            {
                var ev = await reader.ReadAsync(CancellationToken.None).ConfigureAwait(false);
                switch (ev.Kind)
                {
                    case XmppStreamEventKind.Element:
                        return ev.Element!;
                    case XmppStreamEventKind.Header:
                        continue;
                    default:
                        throw new FuzzFindingException("the server ended the stream during the harness's login");
                }
            }
        }

        private static async Task SendAsync(Stream s, string xml) => await s.WriteAsync(Encoding.UTF8.GetBytes(xml)).ConfigureAwait(false);

        private static string B64(string s) => Convert.ToBase64String(Encoding.UTF8.GetBytes(s));
    }

    /// <summary>Keeps the first Error or Fatal event since the last <see cref="Take"/>.</summary>
    private sealed class ErrorTarget : TargetWithLayout
    {
        private string? _first;

        public ErrorTarget()
        {
            Layout = "${logger}: ${message} ${exception:format=tostring}";
        }

        public string? Take() => Interlocked.Exchange(ref _first, null);

        protected override void Write(LogEventInfo logEvent)
        {
            if (logEvent.Level >= NLog.LogLevel.Error)
            {
                Interlocked.CompareExchange(ref _first, RenderLogEvent(Layout, logEvent), null);
            }
        }
    }
}

/// <summary>One end of an in-memory connection: reads from one pipe, writes to the other.</summary>
internal sealed class DuplexStream(PipeReader input, PipeWriter output) : Stream
{
    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (buffer.Length == 0)
        {
            return 0;
        }

        ReadResult result;
        try
        {
            result = await input.ReadAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (InvalidOperationException)
        {
            return 0; // completed by Dispose
        }

        var data = result.Buffer;
        var n = (int)Math.Min(data.Length, buffer.Length);
        data.Slice(0, n).CopyTo(buffer.Span);
        input.AdvanceTo(data.GetPosition(n));
        return n;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var result = await output.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
        if (result.IsCompleted)
        {
            throw new IOException("the other end is closed");
        }
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public override void Flush()
    {
    }

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            input.Complete();
            output.Complete();
        }

        base.Dispose(disposing);
    }
}
