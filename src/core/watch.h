/* Framing of a Kubernetes watch stream: a byte stream of JSON values (one event each, usually
 * newline-separated) cut into HTTP chunks at arbitrary places. The decoder finds where each
 * value ends without parsing it; the caller decodes the complete texts. No Lua here. */
#ifndef MS_WATCH_H
#define MS_WATCH_H

#include <stddef.h>

#define MS_WATCH_ENOMEM (-1)
#define MS_WATCH_ETOOBIG (-2) /* one event longer than max_event */
#define MS_WATCH_ESYNTAX (-3) /* bytes between values that cannot start a JSON object or array */

#define MS_WATCH_MAX_EVENT (64u << 20)

struct ms_watch_decoder;

/* Called with each complete value (borrowed; valid during the call). Returns 0 to go on, non-zero
 * to stop: ms_watch_feed then returns that value. */
typedef int (*ms_watch_event_fn)(void *ud, const char *json, size_t len);

/* max_event 0 means MS_WATCH_MAX_EVENT. Returns NULL when out of memory. */
struct ms_watch_decoder *ms_watch_decoder_new(size_t max_event);

/* Accepts NULL. */
void ms_watch_decoder_free(struct ms_watch_decoder *d);

/* Feeds bytes; calls fn for each value completed by them. Returns 0, a callback's non-zero
 * value, or a negative MS_WATCH_E* code (the decoder is then unusable). */
int ms_watch_feed(struct ms_watch_decoder *d, const char *data, size_t len, ms_watch_event_fn fn,
                  void *ud);

/* Bytes of an incomplete value held back, waiting for more input. */
size_t ms_watch_pending(const struct ms_watch_decoder *d);

#endif
