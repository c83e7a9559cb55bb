using System.Net;
using System.Net.Http.Headers;
using Xmpp.Core.Xml;
using Xmpp.Server.Config;

namespace Xmpp.Tests.EndToEnd;

/// <summary>XEP-0363 HTTP File Upload on the server's HTTPS listener.</summary>
public sealed class UploadTests
{
    private const string Upload = "urn:xmpp:http:upload:0";
    private const string Stanzas = "urn:ietf:params:xml:ns:xmpp-stanzas";

    private static async Task<TestServer> StartAsync(string moduleOptions = "", string? dataDir = null, bool addUsers = true)
    {
        var server = await TestServer.StartAsync(
            o =>
            {
                if (dataDir is not null)
                {
                    o = o with { DataDirectory = dataDir, Storage = new StorageOptions { File = Path.Combine(dataDir, "xmpp.db") } };
                }

                var modules = new Dictionary<string, IReadOnlyDictionary<string, string>>(o.Modules);
                var upload = new Dictionary<string, string> { ["max-size"] = "1000", ["quota"] = "1500" };
                foreach (var pair in moduleOptions.Split(' ', StringSplitOptions.RemoveEmptyEntries))
                {
                    upload[pair.Split('=')[0]] = pair.Split('=')[1];
                }

                modules["upload"] = upload;
                return o with
                {
                    Listeners = [.. o.Listeners, new ListenerOptions(ListenerKind.Https, "127.0.0.1", 0)],
                    Modules = modules,
                    Http = new HttpOptions { CorsOrigins = ["https://web.example"] },
                };
            },
            addUsers ? ["alice@localhost:alice-pass", "bob@localhost:bob-pass"] : []);
        await server.Server.HttpReady;
        return server;
    }

    internal static HttpClient Http() => new(new HttpClientHandler { ServerCertificateCustomValidationCallback = (_, _, _, _) => true });

    internal static async Task<(string Put, string Get)> SlotAsync(RawXmppClient c, string name, int size, string type)
    {
        var r = await c.IqAsync($"<iq type='get' id='slot' to='localhost'><request xmlns='{Upload}' filename='{name}' size='{size}' content-type='{type}'/></iq>");
        Assert.That(r.GetAttribute("type"), Is.EqualTo("result"), r.ToString());
        var slot = r.Child("slot", Upload)!;
        return (slot.Child("put", Upload)!.GetAttribute("url")!, slot.Child("get", Upload)!.GetAttribute("url")!);
    }

    internal static ByteArrayContent Body(byte[] data, string type)
    {
        var content = new ByteArrayContent(data);
        content.Headers.ContentType = MediaTypeHeaderValue.Parse(type);
        return content;
    }

    [Test]
    public async Task A_slot_is_granted_the_file_put_and_fetched_with_ranges_and_refused_past_the_limits()
    {
        await using var server = await StartAsync();
        await using var alice = await RawXmppClient.ConnectAsync(server.C2sPort);
        await alice.LoginAsync("alice", "alice-pass");
        using var http = Http();

        // Advertised on the host, with the size limit (§3).
        var info = await alice.IqAsync("<iq type='get' id='d' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
        Assert.That(info.ToString(), Does.Contain(Upload).And.Contain("max-file-size").And.Contain("<value>1000</value>").And.Contain("category='store'"));

        var data = Enumerable.Range(0, 600).Select(i => (byte)i).ToArray();
        var (put, get) = await SlotAsync(alice, "../holiday photo.png", data.Length, "image/png");
        Assert.That(get, Does.StartWith($"https://localhost:{server.Server.PortOf(ListenerKind.Https)}/upload/").And.EndWith("/holiday%20photo.png"));

        // Nothing there before the PUT; a tampered URL or wrong size or type is refused.
        Assert.That((await http.GetAsync(get)).StatusCode, Is.EqualTo(HttpStatusCode.NotFound));
        Assert.That((await http.PutAsync(put.Replace("l=600", "l=700", StringComparison.Ordinal), Body(new byte[700], "image/png"))).StatusCode, Is.EqualTo(HttpStatusCode.Forbidden));
        Assert.That((await http.PutAsync(put, Body(new byte[599], "image/png"))).StatusCode, Is.EqualTo(HttpStatusCode.BadRequest));
        Assert.That((await http.PutAsync(put, Body(data, "text/html"))).StatusCode, Is.EqualTo(HttpStatusCode.BadRequest));
        var created = await http.PutAsync(put, Body(data, "image/png"));
        Assert.That(created.StatusCode, Is.EqualTo(HttpStatusCode.Created));
        Assert.That((await http.PutAsync(put, Body(data, "image/png"))).StatusCode, Is.EqualTo(HttpStatusCode.Conflict), "a slot is used once");

        var got = await http.GetAsync(get);
        Assert.That(got.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(got.Content.Headers.ContentType!.MediaType, Is.EqualTo("image/png"));
        Assert.That(got.Headers.GetValues("X-Content-Type-Options"), Does.Contain("nosniff"));
        Assert.That(await got.Content.ReadAsByteArrayAsync(), Is.EqualTo(data));
        var range = new HttpRequestMessage(HttpMethod.Get, get);
        range.Headers.Range = new RangeHeaderValue(100, 199);
        var partial = await http.SendAsync(range);
        Assert.That(partial.StatusCode, Is.EqualTo(HttpStatusCode.PartialContent));
        Assert.That(await partial.Content.ReadAsByteArrayAsync(), Is.EqualTo(data[100..200]));
        Assert.That((await http.GetAsync(get.Replace("holiday%20photo.png", "other.png", StringComparison.Ordinal))).StatusCode, Is.EqualTo(HttpStatusCode.NotFound));

        // CORS for web clients of the configured origin; other origins are refused.
        var preflight = new HttpRequestMessage(HttpMethod.Options, put);
        preflight.Headers.Add("Origin", "https://web.example");
        preflight.Headers.Add("Access-Control-Request-Method", "PUT");
        var pre = await http.SendAsync(preflight);
        Assert.That(pre.StatusCode, Is.EqualTo(HttpStatusCode.NoContent));
        Assert.That(pre.Headers.GetValues("Access-Control-Allow-Origin"), Is.EqualTo(new[] { "https://web.example" }));
        Assert.That(string.Join(",", pre.Headers.GetValues("Access-Control-Allow-Methods")), Does.Contain("PUT"));
        var foreign = new HttpRequestMessage(HttpMethod.Get, get);
        foreign.Headers.Add("Origin", "https://evil.example");
        Assert.That((await http.SendAsync(foreign)).StatusCode, Is.EqualTo(HttpStatusCode.Forbidden));

        // §4.3 too large, with the limit; the quota counts what is stored.
        var large = await alice.IqAsync($"<iq type='get' id='big' to='localhost'><request xmlns='{Upload}' filename='big.bin' size='1001'/></iq>");
        Assert.That(large.Child("error", "jabber:client")!.Child("not-acceptable", Stanzas), Is.Not.Null, large.ToString());
        Assert.That(large.Child("error", "jabber:client")!.Child("file-too-large", Upload)!.ChildText("max-size", Upload), Is.EqualTo("1000"));
        var quota = await alice.IqAsync($"<iq type='get' id='q' to='localhost'><request xmlns='{Upload}' filename='more.bin' size='901'/></iq>");
        Assert.That(quota.Child("error", "jabber:client")!.Child("resource-constraint", Stanzas), Is.Not.Null, quota.ToString());
        var fits = await alice.IqAsync($"<iq type='get' id='f' to='localhost'><request xmlns='{Upload}' filename='more.bin' size='900'/></iq>");
        Assert.That(fits.GetAttribute("type"), Is.EqualTo("result"));
    }

    [Test]
    public async Task Files_older_than_expire_days_are_deleted_and_free_the_quota()
    {
        var dataDir = Path.Combine(Path.GetTempPath(), "xmpp-upload-" + Guid.NewGuid().ToString("N"));
        try
        {
            string get;
            await using (var server = await StartAsync("expire-days=30", dataDir))
            {
                await using var alice = await RawXmppClient.ConnectAsync(server.C2sPort);
                await alice.LoginAsync("alice", "alice-pass");
                using var http = Http();
                (var put, get) = await SlotAsync(alice, "old.txt", 1000, "text/plain");
                Assert.That((await http.PutAsync(put, Body(new byte[1000], "text/plain"))).StatusCode, Is.EqualTo(HttpStatusCode.Created));
                var full = await alice.IqAsync($"<iq type='get' id='q' to='localhost'><request xmlns='{Upload}' filename='more.txt' size='600'/></iq>");
                Assert.That(full.Child("error", "jabber:client")!.Child("resource-constraint", Stanzas), Is.Not.Null, "1000 of 1500 bytes used");
            }

            // The file was stored 40 days ago, as far as its record says.
            var meta = Directory.GetFiles(Path.Combine(dataDir, "uploads"), "*.xml").Single();
            var old = DateTimeOffset.UtcNow.AddDays(-40).ToUnixTimeMilliseconds().ToString(System.Globalization.CultureInfo.InvariantCulture);
            File.WriteAllText(meta, System.Text.RegularExpressions.Regex.Replace(File.ReadAllText(meta), "at='[0-9]+'", $"at='{old}'"));

            await using (var server = await StartAsync("expire-days=30", dataDir, addUsers: false))
            {
                await using var alice = await RawXmppClient.ConnectAsync(server.C2sPort);
                await alice.LoginAsync("alice", "alice-pass");
                using var http = Http();
                var port = server.Server.PortOf(ListenerKind.Https);
                var path = new Uri(get).PathAndQuery;
                for (var i = 0; i < 50 && File.Exists(meta); i++)
                {
                    await Task.Delay(100);
                }

                Assert.That((await http.GetAsync($"https://localhost:{port}{path}")).StatusCode, Is.EqualTo(HttpStatusCode.NotFound));
                Assert.That(Directory.GetFiles(Path.Combine(dataDir, "uploads")), Is.Empty);
                var fits = await alice.IqAsync($"<iq type='get' id='f' to='localhost'><request xmlns='{Upload}' filename='new.txt' size='1000'/></iq>");
                Assert.That(fits.GetAttribute("type"), Is.EqualTo("result"), "the quota is free again: " + fits);
            }
        }
        finally
        {
            Directory.Delete(dataDir, recursive: true);
        }
    }

    [Test]
    public async Task Slots_expire_types_can_be_limited_and_other_servers_users_get_none()
    {
        await using var server = await StartAsync("slot-lifetime=10 types=image/*");
        await using var alice = await RawXmppClient.ConnectAsync(server.C2sPort);
        await alice.LoginAsync("alice", "alice-pass");
        using var http = Http();
        var refused = await alice.IqAsync($"<iq type='get' id='t' to='localhost'><request xmlns='{Upload}' filename='a.exe' size='10' content-type='application/x-msdownload'/></iq>");
        Assert.That(refused.Child("error", "jabber:client")!.Child("not-acceptable", Stanzas), Is.Not.Null, refused.ToString());
        var (put, _) = await SlotAsync(alice, "a.jpg", 10, "image/jpeg");

        // A URL whose expiry was moved on no longer matches its signature.
        var expires = long.Parse(System.Text.RegularExpressions.Regex.Match(put, "e=([0-9]+)").Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        var moved = put.Replace("e=" + expires, "e=" + (expires + 3600), StringComparison.Ordinal);
        Assert.That((await http.PutAsync(moved, Body(new byte[10], "image/jpeg"))).StatusCode, Is.EqualTo(HttpStatusCode.Forbidden));
        Assert.That((await http.PutAsync(put, Body(new byte[10], "image/jpeg"))).StatusCode, Is.EqualTo(HttpStatusCode.Created));

        // A user of another domain asking this host (as a remote server would pass it on) is refused.
        var fromAfar = await alice.IqAsync($"<iq type='get' id='r' to='conference.localhost'><request xmlns='{Upload}' filename='a.jpg' size='10'/></iq>");
        Assert.That(fromAfar.GetAttribute("type"), Is.EqualTo("error"));
    }
}
