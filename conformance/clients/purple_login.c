/*
 * libpurple (the library Pidgin and Finch are built on) logging in to our server, headless.
 * Usage: purple_login USERDIR JID/RESOURCE PASSWORD HOST PORT [old_ssl|require_tls [PEER]]
 * With PEER, after signing on: add PEER as a buddy (which subscribes), authorize PEER's request as a
 * Pidgin user clicking "Authorize" would, send PEER a message once PEER is online, and wait for the
 * answer and then for PEER to sign off.
 * USERDIR is libpurple's ~/.purple: the server's certificate must be pre-seeded in
 * USERDIR/certificates/x509/tls_peers/HOST so that libpurple accepts it without a prompt.
 * Prints one line starting with OK or FAIL; exit code 0 on OK.
 */
#include <glib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <purple.h>

#define UI_ID "xmppserver-conformance"

static GMainLoop *loop;
static int status = 1;
static const char *peer;
static gboolean answered;

typedef struct {
	PurpleInputFunction function;
	guint result;
	gpointer data;
} IoClosure;

static gboolean io_invoke(GIOChannel *source, GIOCondition condition, gpointer data)
{
	IoClosure *closure = data;
	int cond = 0;
	if (condition & (G_IO_IN | G_IO_HUP | G_IO_ERR))
		cond |= PURPLE_INPUT_READ;
	if (condition & (G_IO_OUT | G_IO_HUP | G_IO_ERR | G_IO_NVAL))
		cond |= PURPLE_INPUT_WRITE;
	closure->function(closure->data, g_io_channel_unix_get_fd(source), cond);
	return TRUE;
}

static guint input_add(gint fd, PurpleInputCondition condition, PurpleInputFunction function, gpointer data)
{
	IoClosure *closure = g_new0(IoClosure, 1);
	GIOCondition cond = 0;
	closure->function = function;
	closure->data = data;
	if (condition & PURPLE_INPUT_READ)
		cond |= G_IO_IN | G_IO_HUP | G_IO_ERR;
	if (condition & PURPLE_INPUT_WRITE)
		cond |= G_IO_OUT | G_IO_HUP | G_IO_ERR | G_IO_NVAL;
	GIOChannel *channel = g_io_channel_unix_new(fd);
	closure->result = g_io_add_watch_full(channel, G_PRIORITY_DEFAULT, cond, io_invoke, closure, g_free);
	g_io_channel_unref(channel);
	return closure->result;
}

static PurpleEventLoopUiOps eventloop_ops = {
	g_timeout_add, g_source_remove, input_add, g_source_remove, NULL, g_timeout_add_seconds,
	NULL, NULL, NULL
};

static gboolean quit_loop(gpointer data)
{
	g_main_loop_quit(loop);
	return FALSE;
}

static void signed_on(PurpleConnection *gc, gpointer data)
{
	PurpleAccount *account = purple_connection_get_account(gc);
	if (peer) {
		printf("signed on as %s; adding buddy %s\n", purple_account_get_username(account), peer);
		fflush(stdout);
		PurpleBuddy *buddy = purple_buddy_new(account, peer, NULL);
		purple_blist_add_buddy(buddy, NULL, NULL, NULL);
		purple_account_add_buddy(account, buddy);
		return;
	}
	printf("OK signed on as %s\n", purple_account_get_username(account));
	fflush(stdout);
	status = 0;
	/* Not from inside libpurple's own callback: leave the loop first. */
	g_idle_add(quit_loop, NULL);
}

static gboolean is_peer(const char *jid)
{
	return jid && peer && strncmp(jid, peer, strlen(peer)) == 0 && (jid[strlen(peer)] == '\0' || jid[strlen(peer)] == '/');
}

/* The authorization prompt Pidgin shows on a subscription request: the user clicks "Authorize". */
static void *request_authorize(PurpleAccount *account, const char *remote_user, const char *id, const char *alias,
	const char *message, gboolean on_list, PurpleAccountRequestAuthorizationCb authorize_cb,
	PurpleAccountRequestAuthorizationCb deny_cb, void *user_data)
{
	printf("authorization request from %s: authorizing\n", remote_user);
	fflush(stdout);
	authorize_cb(user_data);
	return NULL;
}

static PurpleAccountUiOps account_ops = {
	NULL, NULL, NULL, request_authorize, NULL, NULL, NULL, NULL, NULL
};

static void buddy_signed_on(PurpleBuddy *buddy, gpointer data)
{
	if (!is_peer(purple_buddy_get_name(buddy)))
		return;
	printf("buddy %s is online; sending a message\n", purple_buddy_get_name(buddy));
	fflush(stdout);
	PurpleAccount *account = purple_buddy_get_account(buddy);
	PurpleConversation *conv = purple_conversation_new(PURPLE_CONV_TYPE_IM, account, peer);
	purple_conv_im_send(PURPLE_CONV_IM(conv), "hello from pidgin");
}

static void received_im(PurpleAccount *account, char *sender, char *message, PurpleConversation *conv,
	PurpleMessageFlags flags, gpointer data)
{
	if (!is_peer(sender))
		return;
	printf("received from %s: %s\n", sender, message);
	fflush(stdout);
	answered = TRUE;
}

static void buddy_signed_off(PurpleBuddy *buddy, gpointer data)
{
	if (!is_peer(purple_buddy_get_name(buddy)) || !answered)
		return;
	printf("OK added %s, authorized it, chatted, and saw it sign off\n", purple_buddy_get_name(buddy));
	fflush(stdout);
	status = 0;
	g_idle_add(quit_loop, NULL);
}

static void connection_error(PurpleConnection *gc, PurpleConnectionError err, const gchar *desc, gpointer data)
{
	printf("FAIL connection error %d: %s\n", err, desc ? desc : "");
	g_main_loop_quit(loop);
}

static gboolean timeout(gpointer data)
{
	printf("FAIL timeout\n");
	g_main_loop_quit(loop);
	return FALSE;
}

int main(int argc, char **argv)
{
	static int handle;
	if (argc < 6) {
		fprintf(stderr, "usage: %s USERDIR JID PASSWORD HOST PORT [old_ssl]\n", argv[0]);
		return 2;
	}
	peer = argc > 7 ? argv[7] : NULL;
	loop = g_main_loop_new(NULL, FALSE);
	purple_util_set_user_dir(argv[1]);
	purple_debug_set_enabled(g_getenv("PURPLE_DEBUG") != NULL);
	purple_eventloop_set_ui_ops(&eventloop_ops);
	if (!purple_core_init(UI_ID)) {
		printf("FAIL libpurple initialisation\n");
		return 1;
	}
	purple_set_blist(purple_blist_new());
	purple_accounts_set_ui_ops(&account_ops);
	purple_prefs_load();
	purple_plugins_load_saved("/purple/" UI_ID "/plugins/saved");

	PurpleAccount *account = purple_account_new(argv[2], "prpl-jabber");
	purple_account_set_password(account, argv[3]);
	purple_account_set_string(account, "connect_server", argv[4]);
	purple_account_set_int(account, "port", atoi(argv[5]));
	purple_account_set_string(account, "connection_security",
		argc > 6 && strcmp(argv[6], "old_ssl") == 0 ? "old_ssl" : "require_tls");
	purple_accounts_add(account);

	purple_signal_connect(purple_connections_get_handle(), "signed-on", &handle, PURPLE_CALLBACK(signed_on), NULL);
	purple_signal_connect(purple_connections_get_handle(), "connection-error", &handle, PURPLE_CALLBACK(connection_error), NULL);
	if (peer) {
		purple_signal_connect(purple_blist_get_handle(), "buddy-signed-on", &handle, PURPLE_CALLBACK(buddy_signed_on), NULL);
		purple_signal_connect(purple_blist_get_handle(), "buddy-signed-off", &handle, PURPLE_CALLBACK(buddy_signed_off), NULL);
		purple_signal_connect(purple_conversations_get_handle(), "received-im-msg", &handle, PURPLE_CALLBACK(received_im), NULL);
	}
	g_timeout_add_seconds(peer ? 45 : 30, timeout, NULL);

	purple_account_set_enabled(account, UI_ID, TRUE);
	g_main_loop_run(loop);
	fflush(stdout);
	/* The process ends here; the server sees the TCP connection drop (a session end it must handle). */
	_exit(status);
}
