# plugin.mk -- the WhatsApp Business channel plugin: jansson, libcrypto (OpenSSL) for the
# X-Hub-Signature-256 check and media sha256, through channels/sms/sig.c (shared with the sms
# plugin: built into both .so files, one source).
whatsapp_CFLAGS := $(shell pkg-config --cflags jansson libcrypto) -Ichannels/sms
whatsapp_LIBS := $(shell pkg-config --libs jansson libcrypto)
plugins/whatsapp.so: channels/sms/sig.c channels/sms/sig.h
