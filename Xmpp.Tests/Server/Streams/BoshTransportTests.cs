using System.Net;
using System.Text;
using NLog;
using Xmpp.Core;
using Xmpp.Core.Stanzas;
using Xmpp.Core.Xml;
using Xmpp.Server.Streams;
using Xmpp.Server.Streams.Transports;

namespace Xmpp.Tests.Server.Streams;

/// <summary>The BOSH transport (XEP-0124/0206) without HTTP: bodies in, answers out, the connection's side in between.</summary>
public sealed class BoshTransportTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);

    private static BoshTransport NewSession(int wait = 5) =>
        new("sid1", "localhost", wait, 100, new IPEndPoint(IPAddress.Loopback, 1), LogManager.CreateNullLogger());

    private static Element Body(long rid, string inner = "", string attributes = "") =>
        XmppStreamReader.ForMessages().ParseMessage(Encoding.UTF8.GetBytes($"<body xmlns='{BoshTransport.Namespace}' xmlns:xmpp='{BoshTransport.XBosh}' rid='{rid}' sid='sid1' {attributes}>{inner}</body>"))!;

    private static Element Parse(byte[] answer) => XmppStreamReader.ForMessages().ParseMessage(answer)!;

    private static async Task<XmppStreamEvent> ReadAsync(BoshTransport t) => await t.ReadAsync(CancellationToken.None).AsTask().WaitAsync(Bound);

    private static Task WriteAsync(BoshTransport t, params OutputItem[] items) => t.WriteAsync(items, CancellationToken.None).AsTask();

    private static Element Features() => new Element("features", Ns.Stream).Add(new Element("mechanisms", Ns.Sasl));

    [Test]
    public async Task The_creation_answer_carries_the_session_and_the_features()
    {
        var t = NewSession();
        t.Open("en");
        var header = await ReadAsync(t);
        Assert.That(header.Header, Is.EqualTo(new StreamHeader("stream", Ns.Stream, Ns.Client, "localhost", null, "1.0", "en", null)));
        var answer = t.FirstAnswerAsync(CancellationToken.None);
        await WriteAsync(t, OutputItem.Open(new OutgoingHeader("localhost", null, "stream-1")), OutputItem.Nonza(Features()));
        var body = Parse(await answer.WaitAsync(Bound));
        Assert.That(body.GetAttribute("sid"), Is.EqualTo("sid1"));
        Assert.That(body.GetAttribute("authid"), Is.EqualTo("stream-1"), "XEP-0206 §4: the stream id");
        Assert.That(body.GetAttribute("restartlogic", BoshTransport.XBosh), Is.EqualTo("true"));
        Assert.That(body.Child("features", Ns.Stream)?.Child("mechanisms", Ns.Sasl), Is.Not.Null, body.ToString());
    }

    [Test]
    public async Task Requests_are_taken_in_rid_order_held_and_answered_again()
    {
        var t = NewSession();

        // rid 102 overtakes 101: it waits for it (§14.1), and its payload reaches the connection second.
        var second = t.RequestAsync(Body(102, "<message xmlns='jabber:client' id='b'/>"), 102, CancellationToken.None);
        var first = t.RequestAsync(Body(101, "<message xmlns='jabber:client' id='a'/>"), 101, CancellationToken.None);
        Assert.That((await ReadAsync(t)).Element!.GetAttribute("id"), Is.EqualTo("a"));
        Assert.That((await ReadAsync(t)).Element!.GetAttribute("id"), Is.EqualTo("b"));

        // hold=1 (§9.3): the newer request answers the older one at once, empty; the newer one is held for output.
        Assert.That(Parse(await first.WaitAsync(Bound)).Nodes, Is.Empty);
        Assert.That(second.IsCompleted, Is.False);
        var stanza = new Element("message", Ns.Client).SetAttribute("id", "out");
        await WriteAsync(t, OutputItem.Stanza(stanza));
        var answered = await second.WaitAsync(Bound);
        var body = Parse(answered);
        Assert.That(body.FirstElement()!.Is("message", Ns.Client), "XEP-0206: stanzas qualified by jabber:client");

        // §14.3: the same rid again gets the same answer.
        Assert.That(await t.RequestAsync(Body(102), 102, CancellationToken.None).WaitAsync(Bound), Is.EqualTo(answered));

        // §14.2: beyond the window, the session ends.
        var beyond = Parse(await t.RequestAsync(Body(110), 110, CancellationToken.None).WaitAsync(Bound));
        Assert.That(beyond.GetAttribute("type") + "/" + beyond.GetAttribute("condition"), Is.EqualTo("terminate/item-not-found"));
        Assert.That((await ReadAsync(t)).Kind, Is.EqualTo(XmppStreamEventKind.Eof));
    }

    [Test]
    public async Task A_restart_request_is_the_new_streams_header_and_terminate_its_end()
    {
        var t = NewSession();
        var restart = t.RequestAsync(Body(101, attributes: "xmpp:restart='true' xml:lang='fr'"), 101, CancellationToken.None);
        Assert.That((await ReadAsync(t)).Header!.Lang, Is.EqualTo("fr"));
        await WriteAsync(t, OutputItem.Open(new OutgoingHeader("localhost", null, "s2")), OutputItem.Nonza(Features()));
        Assert.That(Parse(await restart.WaitAsync(Bound)).Child("features", Ns.Stream), Is.Not.Null);

        var bye = Parse(await t.RequestAsync(Body(102, "<presence xmlns='jabber:client' type='unavailable'/>", "type='terminate'"), 102, CancellationToken.None).WaitAsync(Bound));
        Assert.That(bye.GetAttribute("type"), Is.EqualTo("terminate"));
        Assert.That((await ReadAsync(t)).Element!.Name, Is.EqualTo("presence"), "the body's payload first (§13)");
        Assert.That((await ReadAsync(t)).Kind, Is.EqualTo(XmppStreamEventKind.End));
        Assert.That((await ReadAsync(t)).Kind, Is.EqualTo(XmppStreamEventKind.Eof));
        var after = Parse(await t.RequestAsync(Body(103), 103, CancellationToken.None).WaitAsync(Bound));
        Assert.That(after.GetAttribute("condition"), Is.EqualTo("item-not-found"));
    }

    [Test]
    public async Task A_stream_error_ends_the_session_with_remote_stream_error()
    {
        var t = NewSession();
        var held = t.RequestAsync(Body(101), 101, CancellationToken.None);
        await WriteAsync(t, OutputItem.End(new StreamError(StreamErrorCondition.Conflict)));
        var body = Parse(await held.WaitAsync(Bound));
        Assert.That(body.GetAttribute("type") + "/" + body.GetAttribute("condition"), Is.EqualTo("terminate/remote-stream-error"));
        Assert.That(body.Child("error", Ns.Stream)?.Child("conflict", Ns.Streams), Is.Not.Null, body.ToString());
        Assert.That((await ReadAsync(t)).Kind, Is.EqualTo(XmppStreamEventKind.Eof));
        await t.DisposeAsync();
    }

    [Test]
    public async Task A_held_request_ends_empty_after_wait()
    {
        var t = NewSession(wait: 1);
        var body = Parse(await t.RequestAsync(Body(101), 101, CancellationToken.None).WaitAsync(Bound));
        Assert.That(body.Nodes, Is.Empty);
        Assert.That(body.GetAttribute("type"), Is.Null);
    }
}
