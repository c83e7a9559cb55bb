namespace Xmpp.Tests;

/// <summary>One PostgreSQL cluster for the whole test run, started when a test first needs it.</summary>
[SetUpFixture]
public sealed class SharedPostgres
{
    private static readonly SemaphoreSlim Gate = new(1, 1);
    private static Storage.PostgresCluster? _cluster;

    /// <summary>A fresh database on the shared cluster: its connection string.</summary>
    public static async Task<string> NewDatabaseAsync()
    {
        await Gate.WaitAsync();
        try
        {
            _cluster ??= await Storage.PostgresCluster.StartAsync();
        }
        finally
        {
            Gate.Release();
        }

        return await _cluster.CreateDatabaseAsync();
    }

    [OneTimeTearDown]
    public async Task StopAsync()
    {
        if (_cluster is not null)
        {
            await _cluster.DisposeAsync();
            _cluster = null;
        }
    }
}
