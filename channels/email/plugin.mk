# plugin.mk -- the email channel plugin: GMime (MIME parsing, charsets), gumbo (the HTML
# sanitiser's parser), libcurl (IMAP login + raw commands, SMTP), jansson.
EMAIL_PKGS := gmime-3.0 gumbo libcurl jansson
email_CFLAGS := $(shell pkg-config --cflags $(EMAIL_PKGS) 2>/dev/null)
email_LIBS := $(shell pkg-config --libs $(EMAIL_PKGS) 2>/dev/null) -lpthread
# the fuzz harnesses include the parser sources: they need the same libraries
build/san/fuzz/fuzz_email: CFLAGS_BASE += $(email_CFLAGS)
build/san/fuzz/fuzz_email: LIBS += $(email_LIBS)
build/san/fuzz/fuzz_email_html: CFLAGS_BASE += $(email_CFLAGS)
build/san/fuzz/fuzz_email_html: LIBS += $(email_LIBS)
build/san/fuzz/fuzz_email build/san/fuzz/fuzz_email_html: $(wildcard channels/email/*.c channels/email/*.h)
