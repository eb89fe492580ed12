# plugin.mk -- the web chat channel plugin: jansson, the shared handoff parser of channels/chatbot,
# the config readers of channels/sms (jcfg.c, built into sms, whatsapp and webchat: one source),
# and the widget (widget.js, widget.css, demo.html) embedded into webchat.so as byte arrays
# generated into build/gen/ (so the .so is self-contained: no asset folder to install).
.DEFAULT_GOAL := all
webchat_CFLAGS := $(shell pkg-config --cflags jansson) -Ichannels/chatbot -Ichannels/sms
webchat_LIBS := $(shell pkg-config --libs jansson)
WEBCHAT_ASSETS := channels/webchat/widget.js channels/webchat/widget.css channels/webchat/demo.html
build/gen/webchat_assets.c: $(WEBCHAT_ASSETS) channels/webchat/embed.sh
	@mkdir -p $(@D)
	sh channels/webchat/embed.sh $@ $(WEBCHAT_ASSETS)
plugins/webchat.so: build/gen/webchat_assets.c channels/chatbot/handoff.c channels/chatbot/handoff.h \
		channels/sms/jcfg.c channels/sms/jcfg.h
