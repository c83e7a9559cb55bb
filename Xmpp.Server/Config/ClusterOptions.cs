namespace Xmpp.Server.Config;

/// <summary>
/// &lt;cluster&gt;: this server is one node of several serving the same domains (README, "Running a cluster").
/// Each node runs a Microsoft Orleans silo; membership is kept in the PostgreSQL database the nodes share.
/// </summary>
public sealed record ClusterOptions
{
    /// <summary>The cluster's name: nodes with the same name in the same database form one cluster.</summary>
    public string Id { get; init; } = "xmppserver";

    /// <summary>This node's name (logs, metrics, the console): the host name by default.</summary>
    public required string Node { get; init; }

    /// <summary>The IP address this node's silo listens on and that the other nodes reach it at.</summary>
    public required System.Net.IPAddress Address { get; init; }

    /// <summary>The silo port (TCP), 11111 by default.</summary>
    public int Port { get; init; } = 11111;

    /// <summary>How long a node waits for another's answer to a liveness probe before counting it as missed.</summary>
    public TimeSpan ProbeTimeout { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>Missed probes after which a node is suspected; with the other nodes' votes it is declared dead.</summary>
    public int MissedProbes { get; init; } = 3;
}
