/* The text PostgreSQL 15 gives back for a JSON value stored as jsonb, computed in C from a
 * json-c tree, so that a digest taken here over what is sent equals one taken in SQL over
 * the stored column's ::text. The caller owns the tree and the returned text. */
#ifndef OG_JSONB_TEXT_H
#define OG_JSONB_TEXT_H

#include <json-c/json.h>
#include <stddef.h>

/* The text PostgreSQL 15 gives for j as jsonb (SELECT t::jsonb::text, t the JSON json-c
 * writes for j; a NULL j is JSON null): object keys ordered by length, then by their bytes;
 * ": " after a key and ", " between members and elements; strings escaped as jsonb writes
 * them; numbers as numeric writes them (plain digits, no exponent, the scale of the text
 * json-c writes). That text is also a fixed point: as jsonb, it gives itself back. A tree
 * PostgreSQL refuses as jsonb (a NaN or infinite double, a NUL or invalid UTF-8 in a string)
 * gives text it refuses too. json-c writes each number into that number's own print buffer,
 * as json_object_to_json_string does: a string that call returned for a number of j is gone.
 * Returns a malloc'd NUL-terminated string (caller frees) and sets *len, when len is not
 * NULL, to its length; NULL when out of memory. */
char *og_jsonb_text(json_object *j, size_t *len);

#endif
