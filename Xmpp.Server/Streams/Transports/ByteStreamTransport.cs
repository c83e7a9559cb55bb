using System.Buffers;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Text;
using Xmpp.Core;
using Xmpp.Core.Xml;
using Xmpp.Server.Net;
using Xmpp.Server.Tls;

namespace Xmpp.Server.Streams.Transports;

/// <summary>
/// XMPP over a byte stream (RFC 6120): TCP, with STARTTLS or TLS from the first byte, or any duplex stream
/// (the fuzzer's). Input goes through the restricted-XML tokenizer, a new one per stream restart; output is
/// serialised into pooled UTF-8 buffers, one write per batch.
/// </summary>
public sealed class ByteStreamTransport : IStreamTransport
{
    private static readonly UTF8Encoding Utf8 = new(false);
    private readonly ActivityStream _activity;
    private readonly XmlReaderLimits _limits;
    private readonly string _contentNamespace;
    private readonly bool _dialback;
    private readonly bool _secureUnderneath;
    private volatile Stream _stream;
    private XmppStreamReader? _reader;
    private StringBuilder? _text;

    /// <param name="stream">The connection's byte stream; disposing the transport disposes it (and its socket).</param>
    /// <param name="contentNamespace">jabber:client, jabber:server or jabber:component:accept (RFC 6120 §4.8.2).</param>
    /// <param name="dialback">
    /// The header declares the db: prefix, and dialback elements are written with it. COMPAT: ejabberd 23 (its
    /// xmpp codec matches the literal name "db:result") ignores an unprefixed &lt;result xmlns='jabber:server:dialback'/&gt;,
    /// although it is the same element in XML namespaces.
    /// </param>
    /// <param name="secure">The stream is encrypted already underneath (HTTPS): no STARTTLS, and no channel binding of its own.</param>
    public ByteStreamTransport(Stream stream, IPEndPoint remote, XmlReaderLimits limits, string contentNamespace, bool dialback = false, string description = "", bool secure = false)
    {
        _secureUnderneath = secure;
        _activity = new ActivityStream(stream);
        _stream = _activity;
        _limits = limits;
        _contentNamespace = contentNamespace;
        _dialback = dialback;
        Remote = remote;
        Description = description;
    }

    /// <summary>A transport over an accepted or connected socket.</summary>
    public static ByteStreamTransport ForSocket(Socket socket, XmlReaderLimits limits, string contentNamespace, bool dialback = false, string description = "") =>
        new(new NetworkStream(socket, ownsSocket: true), (IPEndPoint)socket.RemoteEndPoint!, limits, contentNamespace, dialback, description);

    public string Description { get; }

    public IPEndPoint Remote { get; }

    public bool IsSecure => _secureUnderneath || Tls is not null;

    public bool CanStartTls => !IsSecure;

    public SslStream? Tls { get; private set; }

    public long LastActivity => _activity.LastRead;

    public ValueTask<XmppStreamEvent> ReadAsync(CancellationToken cancellationToken)
    {
        _reader ??= new XmppStreamReader(_stream, _limits);
        return _reader.ReadAsync(cancellationToken);
    }

    public void Restart()
    {
        _reader?.Dispose();
        _reader = null;
    }

    [System.Diagnostics.CodeAnalysis.SuppressMessage("Security", "CA5359", Justification = "A client certificate is only asked for on server-to-server streams, and checked right after the handshake against the domain the peer claims (PeerCertificates); an untrusted one may still authenticate by dialback, as federation requires.")]
    public async ValueTask StartTlsAsServerAsync(ServerOptionsSelectionCallback options, CancellationToken cancellationToken)
    {
        // Whoever asks for the peer's certificate checks it afterwards against the identity it claims
        // (S2s/PeerCertificates): an untrusted one may still authenticate by dialback, as federation requires.
        var ssl = new SslStream(_stream, leaveInnerStreamOpen: false, (_, _, _, _) => true);
        await ssl.AuthenticateAsServerAsync(options, null, cancellationToken).ConfigureAwait(false);
        UseTls(ssl);
    }

    public async ValueTask StartTlsAsClientAsync(SslClientAuthenticationOptions options, CancellationToken cancellationToken)
    {
        var ssl = new SslStream(_stream, leaveInnerStreamOpen: false);
        await ssl.AuthenticateAsClientAsync(options, cancellationToken).ConfigureAwait(false);
        UseTls(ssl);
    }

    private void UseTls(SslStream ssl)
    {
        OpenSsl.ReleaseBuffersWhenIdle(ssl);
        Restart();
        Tls = ssl;
        _stream = ssl;
    }

    /// <summary>
    /// Writes the batch. When the peer has gone (<see cref="ActivityStream.WriteFailure"/>), the result is a
    /// failed task whose exception was created once and never thrown: a client that closes its socket right
    /// after its closing tag is an everyday logout, not worth four stack traces (bench/README, 2026-12-06).
    /// </summary>
    public ValueTask WriteAsync(IReadOnlyList<OutputItem> items, CancellationToken cancellationToken)
    {
        var sent = SendAsync(items, cancellationToken);
        if (!sent.IsCompletedSuccessfully)
        {
            return AfterSendAsync(sent);
        }

        return _activity.WriteFailure is { } failure ? ValueTask.FromException(failure) : ValueTask.CompletedTask;
    }

    private async ValueTask AfterSendAsync(ValueTask sent)
    {
        await sent.ConfigureAwait(false);
        if (_activity.WriteFailure is { } failure)
        {
            throw failure;
        }
    }

    private async ValueTask SendAsync(IReadOnlyList<OutputItem> items, CancellationToken cancellationToken)
    {
        // The builder lives only while there is output: an idle stream holds none (it would keep the largest
        // size it ever grew to, several KB after the login exchange).
        var sb = _text ??= new StringBuilder(1024);
        for (var i = 0; i < items.Count; i++)
        {
            Render(sb, items[i]);
        }

        var buffer = ArrayPool<byte>.Shared.Rent(Utf8.GetMaxByteCount(sb.Length));
        try
        {
            var count = 0;
            foreach (var chunk in sb.GetChunks())
            {
                count += Utf8.GetBytes(chunk.Span, buffer.AsSpan(count));
            }

            _text = sb.Length > 16 * 1024 ? null : sb.Clear();
            var stream = _stream;
            await stream.WriteAsync(buffer.AsMemory(0, count), cancellationToken).ConfigureAwait(false);
            await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Gives the output buffer back while the stream has nothing to write.</summary>
    public void ReleaseBuffers() => _text = null;

    private void Render(StringBuilder sb, OutputItem item)
    {
        switch (item.Kind)
        {
            case OutputKind.Header:
                RenderHeader(sb, item.Header!);
                break;
            case OutputKind.Close:
                if (item.Error is { } error)
                {
                    WritePrefixed(sb, "stream", error.ToElement(), Ns.Stream);
                }

                sb.Append("</stream:stream>");
                break;
            case OutputKind.Nonza when item.Element!.Namespace == Ns.Stream:
                WritePrefixed(sb, "stream", item.Element, Ns.Stream);
                break;
            case OutputKind.Nonza when _dialback && item.Element!.Namespace == Ns.Dialback:
                WritePrefixed(sb, "db", item.Element, _contentNamespace);
                break;
            default:
                // Stanzas in jabber:client are written in the stream's content namespace (RFC 6120 §4.8.3).
                ElementWriter.Write(sb, item.Element!, _contentNamespace, _contentNamespace == Ns.Client ? null : _contentNamespace);
                break;
        }
    }

    private void RenderHeader(StringBuilder sb, OutgoingHeader header)
    {
        sb.Append("<?xml version='1.0'?><stream:stream xmlns='").Append(_contentNamespace)
          .Append("' xmlns:stream='").Append(Ns.Stream).Append('\'');
        if (_dialback)
        {
            sb.Append(" xmlns:db='").Append(Ns.Dialback).Append('\'');
        }

        if (header.Id is not null)
        {
            sb.Append(" id='");
            ElementWriter.Escape(sb, header.Id, attribute: true);
            sb.Append('\'');
        }

        sb.Append(" from='");
        ElementWriter.Escape(sb, header.From, attribute: true);
        sb.Append('\'');
        if (header.To is not null)
        {
            sb.Append(" to='");
            ElementWriter.Escape(sb, header.To, attribute: true);
            sb.Append('\'');
        }

        if (header.Version is not null)
        {
            sb.Append(" version='").Append(header.Version).Append('\'');
        }

        sb.Append(" xml:lang='en'>");
    }

    /// <summary>An element in a namespace the header declared a prefix for (stream:, db:); its children as usual.</summary>
    private void WritePrefixed(StringBuilder sb, string prefix, Element e, string childrenParent)
    {
        sb.Append('<').Append(prefix).Append(':').Append(e.Name);
        foreach (var a in e.Attributes)
        {
            sb.Append(' ').Append(a.LocalName).Append("='");
            ElementWriter.Escape(sb, a.Value, attribute: true);
            sb.Append('\'');
        }

        if (e.Nodes.Count == 0)
        {
            sb.Append("/>");
            return;
        }

        sb.Append('>');
        foreach (var n in e.Nodes)
        {
            if (n is Element child)
            {
                ElementWriter.Write(sb, child, childrenParent, _contentNamespace == Ns.Client ? null : _contentNamespace);
            }
            else
            {
                ElementWriter.Escape(sb, (string)n);
            }
        }

        sb.Append("</").Append(prefix).Append(':').Append(e.Name).Append('>');
    }

    public async ValueTask DrainAsync(TimeSpan budget)
    {
        using var cts = new CancellationTokenSource(budget);
        var buffer = ArrayPool<byte>.Shared.Rent(8192);
        try
        {
            while (await _stream.ReadAsync(buffer, cts.Token).ConfigureAwait(false) > 0)
            {
            }
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException or OperationCanceledException or InvalidOperationException or NotSupportedException)
        {
            // The peer closed, reset, or kept sending past the budget: nothing more to do.
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    public async ValueTask DisposeAsync()
    {
        Restart();
        try
        {
            await _stream.DisposeAsync().ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException)
        {
            // The peer is gone already.
        }
    }
}
