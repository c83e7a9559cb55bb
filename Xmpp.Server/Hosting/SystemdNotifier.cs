using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text;
using NLog;

namespace Xmpp.Server.Hosting;

/// <summary>
/// The service manager's notification protocol (sd_notify(3)). A unit with <c>Type=notify</c> starts the
/// server with NOTIFY_SOCKET naming a datagram socket (a path, or "@name" in the abstract namespace); the
/// server sends READY=1 once it listens, RELOADING=1 (with MONOTONIC_USEC) when a reload starts and
/// READY=1 when it ends, STOPPING=1 when it shuts down, and a STATUS= line that <c>systemctl status</c>
/// shows. Without NOTIFY_SOCKET every call does nothing. A message that cannot be sent is logged and
/// dropped: the notifications never stop the server.
/// </summary>
public sealed class SystemdNotifier : IDisposable
{
    private readonly Socket? _socket;
    private readonly UnixDomainSocketEndPoint? _target;
    private readonly Logger _log;

    public SystemdNotifier(string? notifySocket, Logger log)
    {
        _log = log;
        if (string.IsNullOrEmpty(notifySocket) || !(notifySocket[0] is '/' or '@'))
        {
            return;
        }

        // "@name" is Linux's abstract namespace: the address starts with a NUL byte.
        _target = new UnixDomainSocketEndPoint(notifySocket[0] == '@' ? "\0" + notifySocket[1..] : notifySocket);
        _socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
    }

    /// <summary>The notifier for this process: NOTIFY_SOCKET from the environment.</summary>
    public static SystemdNotifier FromEnvironment(Logger log) => new(Environment.GetEnvironmentVariable("NOTIFY_SOCKET"), log);

    /// <summary>True when a service manager listens.</summary>
    public bool Enabled => _socket is not null;

    public Task ReadyAsync(string status, CancellationToken ct) => SendAsync("READY=1\nSTATUS=" + OneLine(status), ct);

    /// <summary>A reload starts; MONOTONIC_USEC is CLOCK_MONOTONIC, which Stopwatch reads on Linux.</summary>
    public Task ReloadingAsync(CancellationToken ct) =>
        SendAsync(string.Create(CultureInfo.InvariantCulture, $"RELOADING=1\nMONOTONIC_USEC={Stopwatch.GetTimestamp() / (Stopwatch.Frequency / 1_000_000)}\nSTATUS=reloading the configuration"), ct);

    public Task StoppingAsync(CancellationToken ct) => SendAsync("STOPPING=1\nSTATUS=shutting down", ct);

    public async Task SendAsync(string state, CancellationToken ct)
    {
        if (_socket is null || _target is null)
        {
            return;
        }

        try
        {
            await _socket.SendToAsync(Encoding.UTF8.GetBytes(state), SocketFlags.None, _target, ct).ConfigureAwait(false);
        }
        catch (SocketException ex)
        {
            _log.Warn("Cannot notify the service manager at NOTIFY_SOCKET: {Reason}", ex.Message);
        }
    }

    public void Dispose() => _socket?.Dispose();

    private static string OneLine(string s) => s.ReplaceLineEndings(" ");
}
