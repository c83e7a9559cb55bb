using System.Net;
using Xmpp.Tests.EndToEnd;

namespace Xmpp.Tests.Cluster;

/// <summary>
/// Uploads (XEP-0363) in a cluster whose nodes share the upload directory (README, "File sharing"): a file
/// uploaded through one node is served by every node, and a slot one node signed is accepted by another (behind a
/// load balancer the PUT may reach any node).
/// </summary>
[TestFixture]
[NonParallelizable]
[ClusterLogs]
[CancelAfter(120_000)]
public sealed class ClusterUploadTests
{
    [Test]
    public async Task A_file_uploaded_through_one_node_is_served_by_every_node_sharing_the_upload_directory()
    {
        await using var cluster = await ClusterNodes.CreateAsync(2, "alice", "bob");
        var shared = Path.Combine(cluster.Directory, "uploads");
        var https = Ports.Free(2);
        cluster.NodeConfig = (node, address) => $"""
            <listen type="https" address="{address}" port="{https[node]}"/>
            <modules><disco/><upload path="{shared}"/></modules>
            """;
        await cluster.StartAsync(0);
        await cluster.StartAsync(1);
        await using var alice = await cluster.LoginAsync(0, "alice");
        await using var bob = await cluster.LoginAsync(1, "bob");
        using var http = UploadTests.Http();

        // Through node 1, read back from node 2.
        var data = "from node one"u8.ToArray();
        var (put, get) = await UploadTests.SlotAsync(alice, "one.txt", data.Length, "text/plain");
        Assert.That(put, Does.StartWith($"https://localhost:{https[0]}/"), "node 1 hands out its own URL");
        Assert.That((await http.PutAsync(OnNode(put, cluster, https, 0), UploadTests.Body(data, "text/plain"))).StatusCode, Is.EqualTo(HttpStatusCode.Created));
        Assert.That(await http.GetByteArrayAsync(OnNode(get, cluster, https, 1)), Is.EqualTo(data));

        // A slot signed by node 2, uploaded through node 1 (one secret in the shared directory), read from both.
        var other = "from node two"u8.ToArray();
        (put, get) = await UploadTests.SlotAsync(bob, "two.txt", other.Length, "text/plain");
        Assert.That((await http.PutAsync(OnNode(put, cluster, https, 0), UploadTests.Body(other, "text/plain"))).StatusCode, Is.EqualTo(HttpStatusCode.Created));
        Assert.That(await http.GetByteArrayAsync(OnNode(get, cluster, https, 1)), Is.EqualTo(other));
        Assert.That(await http.GetByteArrayAsync(OnNode(get, cluster, https, 0)), Is.EqualTo(other));
    }

    /// <summary>The URL with node <paramref name="node"/>'s HTTPS listener as its authority (what a load balancer does).</summary>
    private static Uri OnNode(string url, ClusterNodes cluster, int[] https, int node) =>
        new UriBuilder(url) { Host = cluster.Nodes[node].Address.ToString(), Port = https[node] }.Uri;
}
