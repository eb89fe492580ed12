# plugin.mk -- the WhatsApp Business channel plugin: jansson, libcrypto (OpenSSL) for the
# X-Hub-Signature-256 check and media sha256, through channels/sms/sig.c (shared with the sms
# plugin: built into both .so files, one source), the bot-first state and kv helpers
# (channels/sms/botstate.c, likewise), the pending-id list in kv and the retry backoff
# (channels/sms/outbox.c, likewise), the config readers (channels/sms/jcfg.c, likewise), and the
# web chat's bot protocols for "bot first" (channels/webchat/bot.c, built in from there).
whatsapp_CFLAGS := $(shell pkg-config --cflags jansson libcrypto) -Ichannels/sms -Ichannels/webchat
whatsapp_LIBS := $(shell pkg-config --libs jansson libcrypto)
plugins/whatsapp.so: channels/sms/sig.c channels/sms/sig.h channels/sms/botstate.c channels/sms/botstate.h \
		channels/sms/outbox.c channels/sms/outbox.h channels/sms/jcfg.c channels/sms/jcfg.h \
		channels/webchat/bot.c channels/webchat/bot.h
