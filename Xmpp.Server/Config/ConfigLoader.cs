using System.Xml;
using System.Xml.Linq;

namespace Xmpp.Server.Config;

/// <summary>
/// Reads server.config.xml. Every element and attribute is known; anything else is an error that names
/// the file, line and element. Relative paths resolve against the folder of the configuration file. Each
/// element has a reader of its own (<see cref="ConfigReader"/>).
/// </summary>
public static class ConfigLoader
{
    public static ServerOptions Load(string path)
    {
        var full = Path.GetFullPath(path);
        if (!File.Exists(full))
        {
            throw new ConfigException($"{full}: configuration file not found");
        }

        XDocument doc;
        try
        {
            var settings = new XmlReaderSettings { DtdProcessing = DtdProcessing.Prohibit, XmlResolver = null };
            using var reader = XmlReader.Create(full, settings);
            doc = XDocument.Load(reader, LoadOptions.SetLineInfo);
        }
        catch (XmlException ex)
        {
            throw new ConfigException($"{full}:{ex.LineNumber}: not well-formed XML: {ex.Message}", ex);
        }

        return Parse(doc, full);
    }

    public static ServerOptions Parse(string xml, string fileName)
    {
        try
        {
            return Parse(XDocument.Parse(xml, LoadOptions.SetLineInfo), fileName);
        }
        catch (XmlException ex)
        {
            throw new ConfigException($"{fileName}:{ex.LineNumber}: not well-formed XML: {ex.Message}", ex);
        }
    }

    private static ServerOptions Parse(XDocument doc, string file)
    {
        var baseDir = Path.GetDirectoryName(Path.GetFullPath(file)) ?? Directory.GetCurrentDirectory();
        var root = doc.Root ?? throw new ConfigException($"{file}: empty document");
        var ctx = new ConfigContext(file, baseDir);
        if (root.Name.LocalName != "xmppserver" || root.Name.NamespaceName.Length != 0)
        {
            throw ctx.Error(root, "the root element must be <xmppserver>");
        }

        ctx.CheckAttributes(root);
        var reader = new ConfigReader(ctx);
        foreach (var e in root.Elements())
        {
            reader.Read(e);
        }

        return reader.Finish(root);
    }
}
