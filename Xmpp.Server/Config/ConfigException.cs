namespace Xmpp.Server.Config;

/// <summary>A configuration mistake, with the file, line and element it concerns.</summary>
public sealed class ConfigException : Exception
{
    public ConfigException(string message)
        : base(message)
    {
    }

    public ConfigException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public ConfigException()
        : base("invalid configuration")
    {
    }
}
