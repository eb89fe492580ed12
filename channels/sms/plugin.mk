# plugin.mk -- the SMS channel plugin (Kannel, Twilio-compatible): jansson for JSON, libcrypto
# (OpenSSL) for the Twilio signature and digests (sig.c, shared with channels/whatsapp, as are
# botstate.c, outbox.c and the config readers jcfg.c, which channels/webchat builds too), and the
# web chat's bot protocols for "bot first" (channels/webchat/bot.c, built in from there: one
# source for every channel with a bot).
sms_CFLAGS := $(shell pkg-config --cflags jansson libcrypto) -Ichannels/webchat
sms_LIBS := $(shell pkg-config --libs jansson libcrypto)
plugins/sms.so: channels/webchat/bot.c channels/webchat/bot.h
