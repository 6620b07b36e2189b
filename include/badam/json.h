/* Writing JSON text (Jansson trees): the one serializer for every JSON file and line badam writes,
 * the library's (src/io/json_write.c) and the CLI's. */
#ifndef BADAM_JSON_H
#define BADAM_JSON_H

#include <stddef.h>

#include <jansson.h>

/* Serializes root (any JSON value) into malloc'd, NUL-terminated text (*len_out, may be NULL,
 * gets its length); NULL when out of memory. Object keys come in the order they were inserted
 * (parsed files keep theirs). indent 0 gives one line with no spaces ({"a":1,"b":[1,2]}); indent
 * > 0 puts each object member on its own line, indented by `indent` spaces per level, with ": "
 * after keys, and arrays of scalars on one line ([1, 2]). Strings are written as UTF-8 with '"',
 * '\' and the control characters U+0000..U+001F escaped (U+0000 as \u0000: nothing is lost).
 * Integers are written exactly; each real with the fewest significant digits (15, 16 or 17) that
 * read back to the same double (1e-05, 0.30000000000000004, -0.0), always with a '.' or an
 * exponent so it reads back as a real. */
char *io_json_dump(const json_t *root, int indent, size_t *len_out);

/* A JSON number for v: a real when finite, null otherwise (JSON has no NaN or infinity). */
json_t *io_json_real(double v);

#endif
