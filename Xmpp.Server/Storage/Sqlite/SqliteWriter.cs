using System.Threading.Channels;
using Microsoft.Data.Sqlite;

namespace Xmpp.Server.Storage.Sqlite;

/// <summary>
/// Every write to the SQLite file goes through here: one connection, fed by a queue, that commits whatever is
/// waiting as one transaction (group commit). SQLite has a single write lock; with one connection per write,
/// writers queue on it in SQLite's busy handler (which sleeps and retries) and each commit pays its own fsync,
/// so a burst of logouts (last activity) or offline messages blocked thread-pool threads for seconds. Here a
/// burst costs one fsync per batch, and readers (WAL mode) never wait for writers.
/// Each write runs in its own savepoint, so a failing one is rolled back alone; its caller is completed only
/// after the commit that holds its write: an awaited write is durable (synchronous=FULL).
/// </summary>
internal sealed class SqliteWriter : IAsyncDisposable
{
    private const int MaxBatch = 256;

    private readonly Func<CancellationToken, Task<SqliteConnection>> _open;
    private readonly Channel<Operation> _queue = Channel.CreateUnbounded<Operation>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Task _loop;

    public SqliteWriter(Func<CancellationToken, Task<SqliteConnection>> open)
    {
        _open = open;
        _loop = RunAsync();
    }

    public Task<T> WriteAsync<T>(Func<System.Data.Common.DbConnection, System.Data.Common.DbTransaction, CancellationToken, Task<T>> work, CancellationToken cancellationToken)
    {
        var op = new Operation<T>(work, cancellationToken);
        if (!_queue.Writer.TryWrite(op))
        {
            throw new ObjectDisposedException(nameof(SqliteWriter), "storage is closed");
        }

        return op.Task;
    }

    private async Task RunAsync()
    {
        await Task.Yield();
        SqliteConnection? connection = null;
        var batch = new List<Operation>(MaxBatch);
        try
        {
            while (await _queue.Reader.WaitToReadAsync().ConfigureAwait(false))
            {
                while (batch.Count < MaxBatch && _queue.Reader.TryRead(out var op))
                {
                    if (!op.TryCancel())
                    {
                        batch.Add(op);
                    }
                }

                if (batch.Count > 0)
                {
                    connection = await CommitAsync(connection, batch).ConfigureAwait(false);
                    batch.Clear();
                }
            }
        }
        finally
        {
            if (connection is not null)
            {
                await connection.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    /// <summary>Runs and commits one batch; returns the connection to use next (null after a failure).</summary>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1031", Justification = "A write's failure goes to its own caller; the loop serves the others.")]
    private async Task<SqliteConnection?> CommitAsync(SqliteConnection? connection, List<Operation> batch)
    {
        try
        {
            if (connection is null)
            {
                connection = await _open(CancellationToken.None).ConfigureAwait(false);
                await using var pragma = connection.CreateCommand();
                pragma.CommandText = "PRAGMA synchronous=FULL;";
                await pragma.ExecuteNonQueryAsync().ConfigureAwait(false);
            }

            await using var tx = connection.BeginTransaction(deferred: false);
            for (var i = 0; i < batch.Count; i++)
            {
                var savepoint = "w" + i.ToString(System.Globalization.CultureInfo.InvariantCulture);
                tx.Save(savepoint);
                try
                {
                    await batch[i].RunAsync(connection, tx).ConfigureAwait(false);
                    tx.Release(savepoint);
                }
                catch (Exception ex)
                {
                    tx.Rollback(savepoint);
                    tx.Release(savepoint);
                    batch[i].Fail(ex);
                }
            }

            await tx.CommitAsync().ConfigureAwait(false);
            foreach (var op in batch)
            {
                op.Complete();
            }

            return connection;
        }
        catch (Exception ex)
        {
            foreach (var op in batch)
            {
                op.Fail(ex);
            }

            if (connection is not null)
            {
                await connection.DisposeAsync().ConfigureAwait(false);
            }

            return null;
        }
    }

    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        await _loop.ConfigureAwait(false);
    }

    private abstract class Operation
    {
        /// <summary>Cancels a write whose caller gave up before it ran; false when it is to run.</summary>
        public abstract bool TryCancel();

        public abstract Task RunAsync(SqliteConnection connection, SqliteTransaction tx);

        /// <summary>After the commit: completes a write that ran, with its result.</summary>
        public abstract void Complete();

        public abstract void Fail(Exception ex);
    }

    private sealed class Operation<T>(Func<System.Data.Common.DbConnection, System.Data.Common.DbTransaction, CancellationToken, Task<T>> work, CancellationToken cancellationToken) : Operation
    {
        private readonly TaskCompletionSource<T> _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private T? _result;
        private bool _ran;

        public Task<T> Task => _done.Task;

        public override bool TryCancel() => cancellationToken.IsCancellationRequested && _done.TrySetCanceled(cancellationToken);

        public override async Task RunAsync(SqliteConnection connection, SqliteTransaction tx)
        {
            _result = await work(connection, tx, CancellationToken.None).ConfigureAwait(false);
            _ran = true;
        }

        public override void Complete()
        {
            if (_ran)
            {
                _done.TrySetResult(_result!);
            }
        }

        public override void Fail(Exception ex) => _done.TrySetException(ex);
    }
}
