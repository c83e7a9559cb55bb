using System.Security.Cryptography;

namespace Xmpp.Server.Hosting;

/// <summary>
/// Files only the server's own user may read: the data directory (0700), generated private keys, the
/// database and the server secret (0600). Created with those modes from the start, so there is no moment
/// at which another user could open them.
/// </summary>
public static class PrivateFiles
{
    private const UnixFileMode OwnerDirectory = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    private const UnixFileMode OwnerFile = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    /// <summary>Creates a directory (and its parents) owner-only when missing; an existing one is left as the admin set it.</summary>
    public static void EnsureDirectory(string path)
    {
        if (Directory.Exists(path))
        {
            return;
        }

        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(path);
        }
        else
        {
            Directory.CreateDirectory(path, OwnerDirectory);
        }
    }

    /// <summary>Writes a new file readable by the owner only (replacing any existing one).</summary>
    public static void WriteAllText(string path, string contents) => WriteAllBytes(path, System.Text.Encoding.UTF8.GetBytes(contents));

    /// <summary>Writes a new owner-only file (replacing any existing one) and flushes it to disk.</summary>
    public static void WriteAllBytes(string path, byte[] contents)
    {
        File.Delete(path);
        using var stream = new FileStream(path, Options(FileMode.CreateNew));
        stream.Write(contents);
        stream.Flush(flushToDisk: true);
    }

    /// <summary>A new owner-only file to write (replacing any existing one), for exports that hold credentials.</summary>
    public static FileStream CreateFile(string path)
    {
        File.Delete(path);
        return new FileStream(path, Options(FileMode.CreateNew));
    }

    /// <summary>Creates an empty owner-only file unless it exists (so that SQLite, which copies the database file's mode to its -wal and -shm files, never creates it world-readable).</summary>
    public static void Touch(string path)
    {
        if (File.Exists(path))
        {
            return;
        }

        try
        {
            using var stream = new FileStream(path, Options(FileMode.CreateNew));
        }
        catch (IOException) when (File.Exists(path))
        {
            // Created meanwhile by someone else.
        }
    }

    /// <summary>The server's persistent secret (32 random bytes in an owner-only file), created on first use.</summary>
    public static byte[] ReadOrCreateSecret(string path)
    {
        for (var attempt = 0; ; attempt++)
        {
            if (File.Exists(path))
            {
                var existing = File.ReadAllBytes(path);
                if (existing.Length >= 32)
                {
                    return existing;
                }

                File.Delete(path);
            }

            // Written aside, then put in place only if nobody else did meanwhile (processes sharing the directory,
            // such as the nodes of a cluster): they all end up with the one secret.
            var secret = RandomNumberGenerator.GetBytes(32);
            var aside = $"{path}.{Environment.ProcessId}.new";
            WriteAllBytes(aside, secret);
            try
            {
                File.Move(aside, path, overwrite: false);
                return secret;
            }
            catch (IOException) when (attempt < 3 && File.Exists(path))
            {
                File.Delete(aside);
            }
        }
    }

    private static FileStreamOptions Options(FileMode mode)
    {
        var options = new FileStreamOptions { Mode = mode, Access = FileAccess.Write, Share = FileShare.None };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = OwnerFile;
        }

        return options;
    }
}
