# plugin.mk -- build flags of the webhook channel plugin (jansson for its JSON bodies).
webhook_CFLAGS := $(shell pkg-config --cflags jansson)
webhook_LIBS := $(shell pkg-config --libs jansson) -lpthread
