"""aioxmpp (Debian python3-aioxmpp), a second client library with its own XEP implementations.

Usage: aio.py SCENARIO HOST PORT PASSWORD_SUFFIX USER...
  basics   USER1 logs in (aioxmpp negotiates XEP-0198 stream management with resumption by itself),
           enables carbons (XEP-0280) and blocks and unblocks an address (XEP-0191) with aioxmpp's services.
  avatar   USER1 publishes an avatar with aioxmpp's XEP-0084 service, on PEP only (no vCard);
           USER2 reads USER1's avatar metadata from PEP and the same image from USER1's vCard,
           which only the server's XEP-0398 conversion can have put there.
Prints one line starting with OK or FAIL.
"""
import asyncio
import hashlib
import sys

import aioxmpp
import aioxmpp.avatar
import aioxmpp.blocking
import aioxmpp.carbons
import aioxmpp.vcard

scenario, host, port, suffix = sys.argv[1:5]
users = sys.argv[5:]
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c63f8cfc0f01f0005000201ffa65e4d0000000049454e44ae426082")


def client(jid):
    return aioxmpp.PresenceManagedClient(
        aioxmpp.JID.fromstr(jid),
        aioxmpp.make_security_layer(jid.split("@")[0] + suffix, no_verify=True),
        override_peer=[(host, int(port), aioxmpp.connector.STARTTLSConnector())])


async def basics():
    alice = client(users[0])
    # aioxmpp's services are summoned before connecting: the block list is fetched as the stream starts.
    blocking = alice.summon(aioxmpp.blocking.BlockingClient)
    carbons = alice.summon(aioxmpp.carbons.CarbonsClient)
    async with alice.connected():
        stream = alice.stream
        sm = f"sm enabled={stream.sm_enabled} resumable={stream.sm_resumable}"
        await carbons.enable()
        spam = aioxmpp.JID.fromstr("spammer@spam.example")
        await blocking.block_jids([spam])
        await asyncio.sleep(0.3)
        blocked = sorted(str(j) for j in blocking.blocklist)
        await blocking.unblock_jids([spam])
        await asyncio.sleep(0.3)
        after = sorted(str(j) for j in blocking.blocklist)
        ok = stream.sm_enabled and stream.sm_resumable and blocked == [str(spam)] and after == []
        return f"{'OK' if ok else 'FAIL'} {sm}; carbons enabled; block list {blocked} then {after}"


async def avatar():
    alice = client(users[0])
    bob = client(users[1])
    async with alice.connected(), bob.connected():
        service = alice.summon(aioxmpp.avatar.AvatarService)
        service.synchronize_vcard = False
        avatar_set = aioxmpp.avatar.AvatarSet()
        avatar_set.add_avatar_image("image/png", image_bytes=PNG)
        await service.publish_avatar_set(avatar_set)
        await asyncio.sleep(0.5)

        # Bob is no contact of Alice's, so PEP (presence access) keeps the metadata from him; the vCard is
        # public, and only the server can have put the image there.
        vcard = await bob.summon(aioxmpp.vcard.VCardService).get_vcard(alice.local_jid.bare())
        photo = vcard.get_photo_data()
        own = await alice.summon(aioxmpp.avatar.AvatarService).get_avatar_metadata(alice.local_jid.bare(), require_fresh=True)
        ids = [d.normalized_id for d in own]
        ok = photo == PNG and hashlib.sha1(PNG).hexdigest() in ids
        return f"{'OK' if ok else 'FAIL'} PEP metadata ids {ids}; vCard photo from the server's conversion equal: {photo == PNG}"


async def main():
    try:
        return await asyncio.wait_for(globals()[scenario](), timeout=45)
    except Exception as e:  # noqa: BLE001 - any failure is the scenario's result
        return f"FAIL {type(e).__name__}: {e}"


line = asyncio.run(main())
print(line, flush=True)
sys.exit(0 if line.startswith("OK") else 1)
