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

    /// <summary>
    /// What a client is told to connect to instead (RFC 6120 §4.9.3.19 see-other-host) when it logs in to this
    /// node while its account is served by another: "host" or "host:port". By default the node's address and
    /// the port of its first client listener.
    /// </summary>
    public string? ClientAddress { get; init; }

    /// <summary>How long a node waits for another's answer to a liveness probe before counting it as missed.</summary>
    public TimeSpan ProbeTimeout { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>Missed probes after which a node is suspected; with the other nodes' votes it is declared dead.</summary>
    public int MissedProbes { get; init; } = 3;
}
