# plugin.mk -- the chatbot handoff channel plugin (jansson for its JSON bodies).
chatbot_CFLAGS := $(shell pkg-config --cflags jansson)
chatbot_LIBS := $(shell pkg-config --libs jansson)
