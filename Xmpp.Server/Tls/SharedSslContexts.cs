namespace Xmpp.Server.Tls;

/// <summary>
/// What the runtime keys its shared SSL_CTXs by, besides the certificate and the protocols (which are the
/// policy's everywhere): the side, and for a server whether ALPN is in use.
/// </summary>
internal enum TlsRole
{
    Server,
    ServerWithAlpn,
    Client,
}

/// <summary>
/// A certificate's shared SSL_CTXs, one per <see cref="TlsRole"/>: whether each is ready (restricted to
/// the policy), and the connections that keep each alive for the certificate's life (<see cref="TlsContexts"/>).
/// </summary>
internal sealed class SharedSslContexts : IDisposable
{
    private readonly Lock _lock = new();
    private readonly Task<bool>?[] _ready = new Task<bool>?[Enum.GetValues<TlsRole>().Length];
    private readonly List<IDisposable> _kept = [];
    private bool _disposed;

    /// <summary>
    /// Whether the role's context is ready; <paramref name="prepare"/> runs once, on first use. False once
    /// disposed (a retired certificate: its context is no longer held, and may be evicted and made anew unrestricted).
    /// </summary>
    public Task<bool> ReadyAsync(TlsRole role, Func<Task<bool>> prepare)
    {
        lock (_lock)
        {
            return _disposed ? Task.FromResult(false) : _ready[(int)role] ??= Task.Run(prepare);
        }
    }

    /// <summary>Whether <see cref="Dispose"/> has let go of the contexts.</summary>
    public bool Disposed
    {
        get
        {
            lock (_lock)
            {
                return _disposed;
            }
        }
    }

    /// <summary>Keeps a connection open until the certificate is disposed.</summary>
    public void Keep(IDisposable connection)
    {
        lock (_lock)
        {
            if (!_disposed)
            {
                _kept.Add(connection);
                return;
            }
        }

        connection.Dispose();
    }

    public void Dispose()
    {
        List<IDisposable> kept;
        lock (_lock)
        {
            _disposed = true;
            kept = [.. _kept];
            _kept.Clear();
        }

        foreach (var connection in kept)
        {
            connection.Dispose();
        }
    }
}
