using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;

namespace Xmpp.Tests.EndToEnd.Acme;

/// <summary>
/// A tiny DNS responder on a free UDP port of 127.0.0.1 for pebble's <c>-dnsserver</c>: every A question is
/// answered with 127.0.0.1, every other type with an empty answer (NOERROR), so that any name the test
/// orders a certificate for leads the CA's validation to our loopback listener.
/// </summary>
internal sealed class LoopbackDns : IAsyncDisposable
{
    private readonly UdpClient _udp;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;

    private LoopbackDns()
    {
        _udp = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0));
        Port = ((IPEndPoint)_udp.Client.LocalEndPoint!).Port;
        _loop = RunAsync(_stop.Token);
    }

    public int Port { get; }

    /// <summary>The names asked for (type A), for diagnostics.</summary>
    public ConcurrentQueue<string> Asked { get; } = new();

    public static LoopbackDns Start() => new();

    private async Task RunAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            UdpReceiveResult query;
            try
            {
                query = await _udp.ReceiveAsync(ct);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (SocketException)
            {
                continue;
            }

            if (Answer(query.Buffer) is { } answer)
            {
                await _udp.SendAsync(answer, query.RemoteEndPoint, ct);
            }
        }
    }

    /// <summary>RFC 1035 §4.1: the header, the question copied, and one A record pointing at the question's name.</summary>
    private byte[]? Answer(byte[] q)
    {
        if (q.Length < 12 || (q[2] & 0x80) != 0 || (q[4] << 8 | q[5]) != 1)
        {
            return null;
        }

        var i = 12;
        var labels = new List<string>();
        while (i < q.Length && q[i] != 0)
        {
            var len = q[i];
            if (len > 63 || i + 1 + len > q.Length)
            {
                return null;
            }

            labels.Add(System.Text.Encoding.ASCII.GetString(q, i + 1, len));
            i += 1 + len;
        }

        if (i + 5 > q.Length)
        {
            return null;
        }

        var questionEnd = i + 5;
        var type = q[i + 1] << 8 | q[i + 2];
        var isA = type == 1;
        if (isA)
        {
            Asked.Enqueue(string.Join('.', labels));
        }

        var response = new List<byte>(questionEnd + 16)
        {
            q[0], q[1],
            (byte)(0x84 | (q[2] & 0x01)), 0x80, // QR, AA, RD copied; RA; NOERROR
            0, 1, 0, (byte)(isA ? 1 : 0), 0, 0, 0, 0,
        };
        response.AddRange(q.AsSpan(12, questionEnd - 12).ToArray());
        if (isA)
        {
            response.AddRange([0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1]);
        }

        return [.. response];
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _udp.Dispose();
        await _loop;
        _stop.Dispose();
    }
}
