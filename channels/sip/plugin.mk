# plugin.mk -- build flags of the SIP voice channel (libre 1.1.0 from Debian libre-dev, jansson).
# libre.pc lacks the ABI flags the library was built with: without HAVE_INET6 `struct sa` has the
# wrong size (20 bytes, not 32) and memory is corrupted silently (see the SIP recipe).
# -isystem: libre's headers are not -Wextra clean.
sip_CFLAGS := -DHAVE_INTTYPES_H -DHAVE_STDBOOL_H -DHAVE_INET6 -isystem /usr/include/re $(shell pkg-config --cflags jansson)
sip_LIBS := $(shell pkg-config --libs libre 2>/dev/null || echo -lre) $(shell pkg-config --libs jansson) -lpthread -lm
