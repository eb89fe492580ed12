# plugin.mk -- the SMS channel plugin (Kannel, Twilio-compatible): jansson for JSON, libcrypto
# (OpenSSL) for the Twilio signature and digests (sig.c, shared with channels/whatsapp).
sms_CFLAGS := $(shell pkg-config --cflags jansson libcrypto)
sms_LIBS := $(shell pkg-config --libs jansson libcrypto)
